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

// gate is the per-account rate gate for POST /2/tweets: it honours x-rate-limit-remaining and
// x-rate-limit-reset across posts, not only for the post that got a 429, and bounds how many posts are
// sent at once. Posts wait in arrival order (semaphore.Weighted is FIFO), so waiting posts go out in the
// order they were approved.
//
// The state is in memory, per process: one publisher replica per account is what this is right for.
// Several replicas posting for one account each keep their own view and can together overshoot the
// window until X answers 429; moving the state to shared storage is a separate issue.
type gate struct {
	sem     *semaphore.Weighted
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	maxWait time.Duration

	mu       sync.Mutex
	limit    int
	left     int
	reset    time.Time
	inFlight int
}

func newGate(concurrency int, maxWait time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error) *gate {
	return &gate{sem: semaphore.NewWeighted(int64(concurrency)), now: now, sleep: sleep, maxWait: maxWait, limit: -1, left: -1}
}

// acquire waits for a turn and a call left in the window. When the window is spent for longer than
// maxWait (or the caller's deadline), it answers a Retryable error with the time to the reset and makes
// no call. done must be called with X's answer (nil when there was none).
func (g *gate) acquire(ctx context.Context) (done func(*http.Response), err error) {
	if err := g.sem.Acquire(ctx, 1); err != nil {
		return nil, &ledger.ChannelError{Kind: ledger.Retryable, Message: "waiting for a turn to post: " + err.Error()}
	}
	for {
		g.mu.Lock()
		now := g.now()
		if g.left == 0 && now.Before(g.reset) {
			wait := g.reset.Sub(now)
			g.mu.Unlock()
			dl, hasDL := ctx.Deadline()
			if wait > g.maxWait || hasDL && time.Until(dl) < wait {
				g.sem.Release(1)
				return nil, &ledger.ChannelError{Kind: ledger.Retryable, RetryAfter: wait,
					Message: fmt.Sprintf("X rate limit: the window is spent until %s; not calling X before then", g.reset.UTC().Format(time.RFC3339))}
			}
			if err := g.sleep(ctx, wait); err != nil {
				g.sem.Release(1)
				return nil, &ledger.ChannelError{Kind: ledger.Retryable, Message: "waiting for X's rate limit reset: " + err.Error()}
			}
			continue
		}
		if !now.Before(g.reset) && g.left == 0 {
			g.left = -1 // a new window: unknown until X answers
		}
		if g.left > 0 {
			g.left-- // reserve this call, so that concurrent posts do not overshoot the window
		}
		g.inFlight++
		g.mu.Unlock()
		return func(resp *http.Response) { g.update(resp); g.sem.Release(1) }, nil
	}
}

// update takes X's rate-limit headers from resp.
func (g *gate) update(resp *http.Response) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	if resp == nil {
		return
	}
	h := resp.Header
	if v, err := strconv.Atoi(h.Get("x-rate-limit-limit")); err == nil {
		g.limit = v
	}
	if v, err := strconv.Atoi(h.Get("x-rate-limit-remaining")); err == nil {
		g.left = v
	}
	if v, err := strconv.ParseInt(h.Get("x-rate-limit-reset"), 10, 64); err == nil {
		g.reset = time.Unix(v, 0)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		g.left = 0
	}
}

func (g *gate) state() RateState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return RateState{Limit: g.limit, Remaining: g.left, Reset: g.reset, InFlight: g.inFlight}
}
