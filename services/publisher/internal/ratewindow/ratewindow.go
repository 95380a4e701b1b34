// Package ratewindow keeps a channel account's rate-limit window in a JetStream key-value bucket
// (eventbus.RateBucket), so that every publisher replica posting for the account spends the same window.
// Each change is a compare-and-swap on the key's revision: two replicas never both take the last call of
// a window.
package ratewindow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/publisher/internal/xapi"
)

// KV is an xapi.WindowStore on one key of a JetStream key-value bucket.
type KV struct {
	kv  jetstream.KeyValue
	key string
}

var _ xapi.WindowStore = (*KV)(nil)

// New keeps the window of the account under key in kv.
func New(kv jetstream.KeyValue, key string) (*KV, error) {
	if kv == nil {
		return nil, errors.New("ratewindow: nil bucket")
	}
	if key == "" {
		return nil, errors.New("ratewindow: empty key")
	}
	return &KV{kv: kv, key: key}, nil
}

// AccountKey names an account's window by channel and a hash of its access token: the same for every
// replica holding the same credentials, different for another account, and showing nothing of the token
// to whoever can read the bucket.
func AccountKey(channel, accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return channel + "." + hex.EncodeToString(sum[:16])
}

// stored is the window's form in the bucket.
type stored struct {
	Limit     int   `json:"limit"`
	Remaining int   `json:"remaining"`
	Reset     int64 `json:"reset_unix,omitempty"`
}

func decode(b []byte) (xapi.Window, error) {
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return xapi.Window{}, fmt.Errorf("decode rate window: %w", err)
	}
	w := xapi.Window{Limit: s.Limit, Remaining: s.Remaining}
	if s.Reset != 0 {
		w.Reset = time.Unix(s.Reset, 0)
	}
	return w, nil
}

func encode(w xapi.Window) ([]byte, error) {
	s := stored{Limit: w.Limit, Remaining: w.Remaining}
	if !w.Reset.IsZero() {
		s.Reset = w.Reset.Unix()
	}
	return json.Marshal(s)
}

// maxAttempts bounds the compare-and-swap loop: with a handful of replicas each posting a few at a
// time, losing this many races in a row means something is wrong rather than busy.
const maxAttempts = 50

// Update implements xapi.WindowStore: it reads the window, applies fn and writes the result only if
// nobody wrote the key since it was read, and tries again otherwise.
func (s *KV) Update(ctx context.Context, fn func(xapi.Window) xapi.Window) (xapi.Window, error) {
	for range maxAttempts {
		cur, rev := xapi.UnknownWindow(), uint64(0)
		entry, err := s.kv.Get(ctx, s.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return xapi.Window{}, fmt.Errorf("read rate window: %w", err)
		default:
			if cur, err = decode(entry.Value()); err != nil {
				return xapi.Window{}, err
			}
			rev = entry.Revision()
		}
		next := fn(cur)
		if next == cur {
			return cur, nil
		}
		data, err := encode(next)
		if err != nil {
			return xapi.Window{}, err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, s.key, data)
		} else {
			_, err = s.kv.Update(ctx, s.key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another replica changed it first: start again from its window
		}
		if err != nil {
			return xapi.Window{}, fmt.Errorf("write rate window: %w", err)
		}
		return next, nil
	}
	return xapi.Window{}, fmt.Errorf("write rate window: lost the race %d times in a row", maxAttempts)
}
