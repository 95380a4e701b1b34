package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimits holds a token bucket per API key, in this replica's memory. With N replicas behind a load
// balancer each enforces 1/N of the department's rate (Config.Replicas), so the limit holds overall without
// a shared counter: a shared one (the NATS key-value bucket) would cost a round trip and a compare-and-set
// per request for a limit that only has to stop runaway loops. The cap on undecided posts, counted in the
// approval service's database, is the global bound on what reaches the approvers.
type rateLimits struct {
	replicas int
	max      int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

func newRateLimits(replicas int) *rateLimits {
	return &rateLimits{replicas: max(replicas, 1), max: 10000, keys: map[string]*rate.Limiter{}}
}

// reserve takes one request of keyID from its bucket of perMinute requests a minute (this replica's share),
// or says how long until one is available. perMinute zero or less means no limit.
func (l *rateLimits) reserve(keyID string, perMinute int, now time.Time) (time.Duration, bool) {
	if perMinute <= 0 {
		return 0, true
	}
	share := max(perMinute/l.replicas, 1)
	limit := rate.Limit(float64(share) / 60)
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys[keyID]
	if !ok {
		if len(l.keys) >= l.max {
			// Bounded; forgetting every bucket only forgives the keys' recent requests.
			clear(l.keys)
		}
		lim = rate.NewLimiter(limit, share)
		l.keys[keyID] = lim
	}
	if lim.Limit() != limit || lim.Burst() != share {
		// The department's limits changed (they come with the key check).
		lim.SetLimitAt(now, limit)
		lim.SetBurstAt(now, share)
	}
	if lim.AllowN(now, 1) {
		return 0, true
	}
	wait := time.Duration(math.Ceil((1 - lim.TokensAt(now)) / float64(limit) * float64(time.Second)))
	return max(wait, time.Second), false
}

// undecidedCounts keeps each department's count of undecided posts for a moment, so that the cap does not
// cost a round trip to the approval service (and a COUNT in its database) on every request: under load
// that round trip was most of a POST's time. Posts this replica accepts meanwhile are added locally, so a
// burst through one replica cannot pass the cap; posts other replicas accept within the moment are missed,
// as are posts still on their way through JetStream, which the per-key rate bounds. Decisions and
// cancellations through this replica drop the count, so room they make shows at once; expiry and ops'
// actions show within the second.
type undecidedCounts struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	depts map[string]undecided
}

type undecided struct {
	count   int
	fetched time.Time
}

func newUndecidedCounts(ttl time.Duration) *undecidedCounts {
	return &undecidedCounts{ttl: ttl, max: 10000, depts: map[string]undecided{}}
}

// get returns the department's count if it was fetched less than ttl ago.
func (u *undecidedCounts) get(dept string, now time.Time) (int, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, ok := u.depts[dept]
	if !ok || now.Sub(c.fetched) >= u.ttl {
		return 0, false
	}
	return c.count, true
}

// set records a count just fetched.
func (u *undecidedCounts) set(dept string, count int, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.depts[dept]; !ok && len(u.depts) >= u.max {
		clear(u.depts) // departments are few; a flood of made-up ones only costs fresh counts
	}
	u.depts[dept] = undecided{count: count, fetched: now}
}

// forget drops the department's count, so the next request asks for it: after a decision or a
// cancellation through this replica, which may have made room.
func (u *undecidedCounts) forget(dept string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.depts, dept)
}

// accepted counts a post this replica just accepted for the department.
func (u *undecidedCounts) accepted(dept string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c, ok := u.depts[dept]; ok {
		c.count++
		u.depts[dept] = c
	}
}
