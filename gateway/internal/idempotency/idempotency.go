// Package idempotency gives the connector API's Idempotency-Key Stripe's semantics across gateway
// replicas: the first request with a key claims it in a JetStream key-value bucket (an atomic create, so
// exactly one of two racing requests wins), together with a hash of its body; the same key with the same
// body then always gets the same answer, with another body 422, and while the first is still in flight 409.
// The gateway keeps no state of its own: the bucket is shared by every replica.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors of Claim; the gateway answers each with its own status.
var (
	// ErrMismatch means the key was used with another body (422).
	ErrMismatch = errors.New("idempotency key reused with a different body")
	// ErrInFlight means a request with the key and the same body is being processed (409).
	ErrInFlight = errors.New("a request with this idempotency key is in progress")
	// ErrUnavailable means the bucket could not be reached; nothing was claimed (503).
	ErrUnavailable = errors.New("idempotency store unavailable")
)

// The states of a claim.
const (
	stateInFlight = "in_flight"
	stateAccepted = "accepted"
	stateFailed   = "failed"
)

// record is what a key's entry holds. It is keyed by the post id, which is derived from the department and
// the key, so that the status endpoint can find it by id too.
type record struct {
	Department string    `json:"department"`
	BodyHash   string    `json:"body"`
	State      string    `json:"state"`
	ClaimedAt  time.Time `json:"claimed_at"`
}

// DefaultStaleAfter is how long a claim may stay in flight before another request may take it over: the
// gateway that claimed it crashed or lost NATS between claiming and recording the outcome. Well over the
// gateway's publish timeout, so that a live request is never taken over.
const DefaultStaleAfter = time.Minute

// Store claims keys in a key-value bucket.
type Store struct {
	kv    jetstream.KeyValue
	now   func() time.Time
	stale time.Duration
}

// New returns a Store over kv. now may be nil (time.Now); stale zero means DefaultStaleAfter.
func New(kv jetstream.KeyValue, now func() time.Time, stale time.Duration) (*Store, error) {
	if kv == nil {
		return nil, errors.New("idempotency: nil bucket")
	}
	if now == nil {
		now = time.Now
	}
	if stale <= 0 {
		stale = DefaultStaleAfter
	}
	return &Store{kv: kv, now: now, stale: stale}, nil
}

// BodyHash is the fingerprint of a request's body that a reused key is compared with: the decoded fields,
// so that the same post sent with other whitespace or field order counts as the same body.
func BodyHash(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		// Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Claim is a claim the caller holds on a key: it must end it with Accept or Fail.
type Claim struct {
	key string
	rec record
	rev uint64
}

// Claim claims key (a post id) for a request of department with body. It returns:
//   - a *Claim and replay false: the caller holds the key and makes the post;
//   - replay true: a request with this key and body was accepted before; answer as then;
//   - ErrMismatch, ErrInFlight or an error wrapping ErrUnavailable.
//
// A claim whose request failed (nothing queued) is taken over by the next request with the same body, as
// is one left in flight longer than the stale time.
func (s *Store) Claim(ctx context.Context, key, department, bodyHash string) (c *Claim, replay bool, err error) {
	rec := record{Department: department, BodyHash: bodyHash, State: stateInFlight, ClaimedAt: s.now().UTC()}
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, false, fmt.Errorf("idempotency: %w", err)
	}
	// Two rounds at most: the entry can vanish (expire) between a failed create and the read.
	for range 2 {
		rev, err := s.kv.Create(ctx, key, val)
		if err == nil {
			return &Claim{key: key, rec: rec, rev: rev}, false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, fmt.Errorf("%w: claim: %w", ErrUnavailable, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: read claim: %w", ErrUnavailable, err)
		}
		var old record
		if err := json.Unmarshal(e.Value(), &old); err != nil {
			return nil, false, fmt.Errorf("idempotency: entry %s: %w", key, err)
		}
		if old.Department != department || old.BodyHash != bodyHash {
			return nil, false, ErrMismatch
		}
		switch {
		case old.State == stateAccepted:
			return nil, true, nil
		case old.State == stateInFlight && s.now().Sub(old.ClaimedAt) < s.stale:
			return nil, false, ErrInFlight
		}
		// Failed, or abandoned in flight: take it over, unless another request just did.
		rev, err = s.kv.Update(ctx, key, val, e.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, ErrInFlight
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: take over claim: %w", ErrUnavailable, err)
		}
		return &Claim{key: key, rec: rec, rev: rev}, false, nil
	}
	return nil, false, ErrInFlight
}

// Accept records that the claimed request was accepted, so that its retries are answered the same way.
func (s *Store) Accept(ctx context.Context, c *Claim) error { return s.finish(ctx, c, stateAccepted) }

// Fail records that the claimed request failed with nothing queued: a retry with the same body may try
// again, while another body is still refused, since the key stays bound to the first body.
func (s *Store) Fail(ctx context.Context, c *Claim) error { return s.finish(ctx, c, stateFailed) }

func (s *Store) finish(ctx context.Context, c *Claim, state string) error {
	rec := c.rec
	rec.State = state
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("idempotency: %w", err)
	}
	if _, err := s.kv.Update(ctx, c.key, val, c.rev); err != nil {
		return fmt.Errorf("idempotency: record %s as %s: %w", c.key, state, err)
	}
	return nil
}

// Release gives the key up when the request was refused before anything was attempted (a 429, say): the
// key is then as unused as before.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	if err := s.kv.Delete(ctx, c.key, jetstream.LastRevision(c.rev)); err != nil {
		return fmt.Errorf("idempotency: release %s: %w", c.key, err)
	}
	return nil
}

// Accepted reports whether key (a post id) was accepted for department: the status endpoint answers
// "pending" for such a post even before the approval service recorded it.
func (s *Store) Accepted(ctx context.Context, key, department string) (bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: read claim: %w", ErrUnavailable, err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return false, fmt.Errorf("idempotency: entry %s: %w", key, err)
	}
	return rec.State == stateAccepted && rec.Department == department, nil
}
