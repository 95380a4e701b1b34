package keyauth

import (
	"container/list"
	"time"

	"golang.org/x/time/rate"
)

// lru maps clients to their failure limiters, holding at most max of them: adding one more forgets the
// client that failed least recently. An attacker rotating addresses thus only pushes out other entries,
// never grows memory; what it can do is have a forgotten client start again with full tries.
type lru struct {
	max   int
	order *list.List // of *lruEntry, most recently used first
	items map[string]*list.Element
}

type lruEntry struct {
	client  string
	limiter *rate.Limiter
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: make(map[string]*list.Element, min(max, 1024))}
}

func (c *lru) get(client string) (*rate.Limiter, bool) {
	el, ok := c.items[client]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry).limiter, true
}

func (c *lru) add(client string, l *rate.Limiter) {
	if c.order.Len() >= c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry).client)
	}
	c.items[client] = c.order.PushFront(&lruEntry{client: client, limiter: l})
}

func (c *lru) len() int { return c.order.Len() }

// newLimiter returns a bucket of burst tries that regains one every every.
func newLimiter(every time.Duration, burst int) *rate.Limiter {
	return rate.NewLimiter(rate.Every(every), burst)
}
