package xapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// fakeClock is shared by the sandbox and the client's gate: sleeping advances it at once, and is counted.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	c.mu.Unlock()
	return ctx.Err()
}

func gateSetup(t *testing.T, perWindow int, opts ...xapi.Option) (*xsandbox.Sandbox, *xapi.Client, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)}
	sb, err := xsandbox.New(xsandbox.Config{
		ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		TweetsPerWindow: perWindow, Now: clk.Now,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	cl, err := xapi.New(srv.URL, creds, 5*time.Second, append([]xapi.Option{xapi.WithClock(clk.Now, clk.Sleep)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return sb, cl, clk
}

func TestGateWaitsForTheResetAcrossPosts(t *testing.T) {
	t.Parallel()
	sb, cl, clk := gateSetup(t, 2, xapi.WithMaxRateWait(time.Hour))
	ctx := context.Background()
	for _, text := range []string{"one", "two"} {
		if _, err := cl.Post(ctx, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	if rs := cl.RateState(); rs.Remaining != 0 || rs.Limit != 2 {
		t.Fatalf("after spending the window the gate says %+v", rs)
	}
	start := clk.Now()
	// The window is spent: the third post waits for the reset without calling X (a call would get 429),
	// then goes out.
	if _, err := cl.Post(ctx, "three", nil); err != nil {
		t.Fatalf("the post after the reset: %v", err)
	}
	if calls := sb.PostCalls(); calls != 3 {
		t.Errorf("X received %d calls for 3 posts; the gate called before the reset", calls)
	}
	if waited := clk.Now().Sub(start); waited < 14*time.Minute || waited > 15*time.Minute {
		t.Errorf("the gate waited %s, want until the window's reset (15 min)", waited)
	}
	if len(sb.Tweets()) != 3 {
		t.Errorf("%d tweets, want 3", len(sb.Tweets()))
	}
}

func TestGateAnswersRetryableWhenTheResetIsFar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, sb *xsandbox.Sandbox, cl *xapi.Client)
		want    time.Duration // about how long until the reset
	}{
		{name: "window spent by earlier posts", want: 15 * time.Minute, prepare: func(t *testing.T, _ *xsandbox.Sandbox, cl *xapi.Client) {
			if _, err := cl.Post(context.Background(), "only one", nil); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a 429 with a reset time", want: 90 * time.Second, prepare: func(t *testing.T, sb *xsandbox.Sandbox, cl *xapi.Client) {
			sb.InjectFault(xsandbox.Fault{Status: 429, RetryAfterSeconds: 90})
			_, err := cl.Post(context.Background(), "refused", nil)
			if ce := channelError(t, err); ce.Kind != ledger.Retryable || ce.RetryAfter != 90*time.Second {
				t.Fatalf("429: %+v", ce)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb, cl, clk := gateSetup(t, 1, xapi.WithMaxRateWait(0))
			tt.prepare(t, sb, cl)
			calls := sb.PostCalls()
			_, err := cl.Post(context.Background(), "waits", nil)
			ce := channelError(t, err)
			if ce.Kind != ledger.Retryable || ce.RetryAfter < tt.want-time.Second || ce.RetryAfter > tt.want {
				t.Errorf("error %+v; want Retryable after about %s", ce, tt.want)
			}
			if sb.PostCalls() != calls {
				t.Errorf("the gate called X %d times before the reset", sb.PostCalls()-calls)
			}
			_ = clk.Sleep(context.Background(), ce.RetryAfter)
			if _, err := cl.Post(context.Background(), "waits", nil); err != nil {
				t.Errorf("after the reset: %v", err)
			}
		})
	}
}

func TestGateBoundsConcurrency(t *testing.T) {
	t.Parallel()
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, most atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
			defer inFlight.Add(-1)
		}
		sb.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cl, err := xapi.New(srv.URL, creds, 5*time.Second, xapi.WithConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Go(func() {
			_, err := cl.Post(context.Background(), "parallel "+string(rune('a'+i)), nil)
			errs <- err
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < 2 || cl.RateState().InFlight < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("posts in flight: %d at X, %d in the gate; want 2", inFlight.Load(), cl.RateState().InFlight)
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d posts were at X at once, want at most 2", m)
	}
	if n := len(sb.Tweets()); n != 5 {
		t.Errorf("%d tweets, want 5", n)
	}
}
