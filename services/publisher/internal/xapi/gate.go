package xapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// RateState is what X last said about the account's POST /2/tweets window.
type RateState struct {
	// Limit and Remaining are -1 until X has answered once.
	Limit, Remaining int
	// Reset is when the window starts again (zero until known).
	Reset time.Time
	// InFlight is how many posts are being sent now.
	InFlight int
}

// Window is the account's POST /2/tweets rate-limit window as the gate keeps it.
type Window struct {
	// Limit and Remaining are -1 until X has answered once (Remaining again at each new window).
	// Remaining counts down as posts are let through, before X answers them.
	Limit, Remaining int
	// Reset is when the window starts again (zero until known).
	Reset time.Time
}

// WindowStore keeps the account's window. Update applies fn to the current window (the zero-valued
// unknown window, Limit and Remaining -1, when there is none) and stores its result atomically: two
// updates, from this process or another replica, never both start from the same window. Update may call
// fn more than once; fn must have no other effect.
type WindowStore interface {
	Update(ctx context.Context, fn func(Window) Window) (Window, error)
}

// WithSharedWindow keeps the rate window in store instead of in memory, so that every publisher replica
// posting for the account spends one window (see ratewindow for the JetStream one).
func WithSharedWindow(store WindowStore) Option {
	return func(s *settings) { s.window = store }
}

// UnknownWindow is the window before X has answered.
func UnknownWindow() Window { return Window{Limit: -1, Remaining: -1} }

// take lets one post through w at now if it may: the window is unknown, has calls left (one is
// reserved, so that concurrent posts, here or on other replicas, do not overshoot it), or has reset.
func take(w Window, now time.Time) (Window, bool) {
	if w.Remaining == 0 && now.Before(w.Reset) {
		return w, false
	}
	if w.Remaining == 0 {
		w.Remaining = -1 // a new window: unknown until X answers
	}
	if w.Remaining > 0 {
		w.Remaining--
	}
	return w, true
}

// answered is w after X's answer resp. Within the window w already knows, the lower count wins: X's
// count does not yet include posts other replicas let through meanwhile, and w's may not include
// posts X counted for other callers.
func answered(w Window, resp *http.Response) Window {
	h := resp.Header
	next := w
	if v, err := strconv.Atoi(h.Get("x-rate-limit-limit")); err == nil {
		next.Limit = v
	}
	if v, err := strconv.ParseInt(h.Get("x-rate-limit-reset"), 10, 64); err == nil {
		next.Reset = time.Unix(v, 0)
	}
	if v, err := strconv.Atoi(h.Get("x-rate-limit-remaining")); err == nil {
		next.Remaining = v
		if next.Reset.Equal(w.Reset) && w.Remaining >= 0 {
			next.Remaining = min(v, w.Remaining)
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		next.Remaining = 0
	}
	return next
}

// memoryWindow is the WindowStore of a single publisher: the window in this process.
type memoryWindow struct {
	mu sync.Mutex
	w  Window
}

func (m *memoryWindow) Update(_ context.Context, fn func(Window) Window) (Window, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.w = fn(m.w)
	return m.w, nil
}

// gate is the per-account rate gate for POST /2/tweets: it honours x-rate-limit-remaining and
// x-rate-limit-reset across posts, not only for the post that got a 429, and bounds how many posts are
// sent at once. Posts wait in arrival order (semaphore.Weighted is FIFO), so waiting posts go out in the
// order they were approved.
//
// The window is in a WindowStore: in memory for one publisher, shared (WithSharedWindow) when several
// replicas post for one account, so that together they never let more posts through than X's window.
// The concurrency bound stays per process.
type gate struct {
	sem     *semaphore.Weighted
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	maxWait time.Duration
	store   WindowStore

	mu       sync.Mutex
	last     Window // the window as last seen, for state
	inFlight int
}

func newGate(s settings) *gate {
	store := s.window
	if store == nil {
		store = &memoryWindow{w: UnknownWindow()}
	}
	return &gate{sem: semaphore.NewWeighted(int64(s.concurrency)), now: s.now, sleep: s.sleep, maxWait: s.maxWait, store: store, last: UnknownWindow()}
}

// acquire waits for a turn and a call left in the window. When the window is spent for longer than
// maxWait (or the caller's deadline), it answers a Retryable error with the time to the reset and makes
// no call. done must be called with X's answer (nil when there was none).
func (g *gate) acquire(ctx context.Context) (done func(*http.Response), err error) {
	if err := g.sem.Acquire(ctx, 1); err != nil {
		return nil, &ledger.ChannelError{Kind: ledger.Retryable, Message: "waiting for a turn to post: " + err.Error()}
	}
	for {
		now := g.now()
		var ok bool
		w, err := g.store.Update(ctx, func(w Window) Window {
			w, ok = take(w, now)
			return w
		})
		if err != nil {
			g.sem.Release(1)
			return nil, &ledger.ChannelError{Kind: ledger.Retryable, Message: "reading the shared X rate window: " + err.Error()}
		}
		g.mu.Lock()
		g.last = w
		if ok {
			g.inFlight++
		}
		g.mu.Unlock()
		if ok {
			return func(resp *http.Response) { g.update(resp); g.sem.Release(1) }, nil
		}
		wait := w.Reset.Sub(now)
		dl, hasDL := ctx.Deadline()
		if wait > g.maxWait || hasDL && time.Until(dl) < wait {
			g.sem.Release(1)
			return nil, &ledger.ChannelError{Kind: ledger.Retryable, RetryAfter: wait,
				Message: fmt.Sprintf("X rate limit: the window is spent until %s; not calling X before then", w.Reset.UTC().Format(time.RFC3339))}
		}
		if err := g.sleep(ctx, wait); err != nil {
			g.sem.Release(1)
			return nil, &ledger.ChannelError{Kind: ledger.Retryable, Message: "waiting for X's rate limit reset: " + err.Error()}
		}
	}
}

// update takes X's rate-limit headers from resp into the window. A failure to store them is not the
// post's failure: the window then stays as reserved, and X's next 429 corrects it.
func (g *gate) update(resp *http.Response) {
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	if resp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := g.store.Update(ctx, func(w Window) Window { return answered(w, resp) })
	if err != nil {
		return
	}
	g.mu.Lock()
	g.last = w
	g.mu.Unlock()
}

func (g *gate) state() RateState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return RateState{Limit: g.last.Limit, Remaining: g.last.Remaining, Reset: g.last.Reset, InFlight: g.inFlight}
}
