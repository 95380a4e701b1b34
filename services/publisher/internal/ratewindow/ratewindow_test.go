package ratewindow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/ratewindow"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

var creds = xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "42-at", AccessTokenSecret: "ats"}

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ctx := context.Background()
	nc, js, err := eventbus.Connect(ctx, natstest.Embedded(t), "ratewindow-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	kv, err := js.KeyValue(ctx, eventbus.RateBucket(""))
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// replica is one publisher replica's X client, its window in kv under the account's key.
func replica(t *testing.T, url string, kv jetstream.KeyValue) *xapi.Client {
	t.Helper()
	store, err := ratewindow.New(kv, ratewindow.AccountKey("x", creds.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := xapi.New(url, creds, 5*time.Second, xapi.WithSharedWindow(store), xapi.WithMaxRateWait(0), xapi.WithConcurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Two replicas, each posting many at once on one window of five, never call X more than five times:
// the rest are told to come back at the reset, and X never has to answer 429.
func TestTwoReplicasNeverOvershootTheWindow(t *testing.T) {
	t.Parallel()
	const perWindow = 5
	sb, err := xsandbox.New(xsandbox.Config{
		ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		TweetsPerWindow: perWindow,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	kv := bucket(t)
	a, b := replica(t, srv.URL, kv), replica(t, srv.URL, kv)

	// One post makes the window known (until X has answered once, nobody knows its size).
	if _, err := a.Post(context.Background(), "first", nil); err != nil {
		t.Fatal(err)
	}
	var posted, waited atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		cl := a
		if i%2 == 1 {
			cl = b
		}
		wg.Go(func() {
			_, err := cl.Post(context.Background(), fmt.Sprintf("post %d", i), nil)
			var ce *ledger.ChannelError
			switch {
			case err == nil:
				posted.Add(1)
			case errors.As(err, &ce) && ce.Kind == ledger.Retryable && ce.RetryAfter > 0:
				waited.Add(1)
			default:
				t.Errorf("post %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := sb.PostCalls(); got != perWindow {
		t.Errorf("X received %d calls in a window of %d", got, perWindow)
	}
	if posted.Load() != perWindow-1 || waited.Load() != 20-(perWindow-1) {
		t.Errorf("posted %d, told to wait %d; want %d and %d", posted.Load(), waited.Load(), perWindow-1, 20-(perWindow-1))
	}
	// Both replicas see the spent window.
	for name, cl := range map[string]*xapi.Client{"a": a, "b": b} {
		if rs := cl.RateState(); rs.Remaining != 0 || rs.Limit != perWindow {
			t.Errorf("replica %s sees %+v, want the window of %d spent", name, rs, perWindow)
		}
	}
}

// Concurrent updates on one key all count: none is lost to another replica's write.
func TestUpdateIsAtomicAcrossStores(t *testing.T) {
	t.Parallel()
	kv := bucket(t)
	key := ratewindow.AccountKey("x", "token")
	stores := make([]*ratewindow.KV, 4)
	for i := range stores {
		var err error
		if stores[i], err = ratewindow.New(kv, key); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			_, err := stores[i%len(stores)].Update(context.Background(), func(w xapi.Window) xapi.Window {
				w.Limit++
				return w
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	w, err := stores[0].Update(context.Background(), func(w xapi.Window) xapi.Window { return w })
	if err != nil {
		t.Fatal(err)
	}
	if w.Limit != -1+40 {
		t.Errorf("after 40 increments from -1 the limit is %d, want 39", w.Limit)
	}
}

func TestAccountKey(t *testing.T) {
	t.Parallel()
	k := ratewindow.AccountKey("x", "42-secret-token")
	if k != ratewindow.AccountKey("x", "42-secret-token") || k == ratewindow.AccountKey("x", "43-other") {
		t.Error("AccountKey is not one key per token")
	}
	if len(k) != len("x.")+32 || strings.Contains(k, "secret") {
		t.Errorf("AccountKey = %q: want the channel and a hash, nothing of the token", k)
	}
}
