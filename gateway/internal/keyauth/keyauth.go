// Package keyauth authenticates departments by API key through the approval service, keeping answers
// for a short while so that a busy flow does not cost a gRPC call per request. Valid keys are kept for the
// cache TTL, or until the approval service announces their revocation on NATS; unknown keys are kept for a
// few seconds; a client that keeps presenting bad keys is slowed down.
package keyauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// ErrInvalidKey means the key is unknown or revoked.
var ErrInvalidKey = errors.New("invalid API key")

// ErrThrottled means the client presented too many bad keys lately; a *ThrottledError says for how long.
var ErrThrottled = errors.New("too many invalid API keys from this client")

// ThrottledError is returned instead of checking a key when the client is being slowed down.
type ThrottledError struct {
	// RetryAfter is how long until the client may try again.
	RetryAfter time.Duration
}

// Error implements error.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v; retry in %v", ErrThrottled, e.RetryAfter)
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Department is who a valid key belongs to.
type Department struct {
	ID   string
	Name string
	// KeyID is the id of the API key that authenticated the request, for the audit trail.
	KeyID string
	// Limits are the department's limits as the approval service said when the key was checked: a change
	// reaches the gateway within the cache's time to live.
	Limits Limits
}

// Limits keep a runaway flow from flooding the approvers (see AdminService.SetDepartmentLimits).
type Limits struct {
	// PostsPerMinute is how many posts one API key may request per minute.
	PostsPerMinute int
	// MaxUndecided is how many of the department's posts may wait for a decision at once.
	MaxUndecided int
}

type entry struct {
	dept    Department
	expires time.Time
}

// Defaults of New; Options change them.
const (
	DefaultNegativeTTL   = 5 * time.Second
	DefaultMaxEntries    = 10000
	DefaultFailureBurst  = 10
	DefaultFailureWindow = time.Minute
	DefaultMaxClients    = 10000
)

// Authenticator checks keys with a cache. A revoked key stops working when the approval service's
// announcement arrives (see Listen), and at the latest after the TTL.
type Authenticator struct {
	client approvalv1.ApprovalServiceClient
	ttl    time.Duration
	negTTL time.Duration
	max    int
	now    func() time.Time
	fails  *failures

	mu    sync.Mutex
	cache map[[sha256.Size]byte]entry
	// byKey finds the cached hash of a key id, for evictions.
	byKey map[string][sha256.Size]byte
	// unknown holds the expiry of the cached refusal of each unknown or revoked key.
	unknown map[[sha256.Size]byte]time.Time
	// evictions counts Evict calls: an answer fetched while one happened is not cached, since it may
	// predate the revocation.
	evictions uint64
}

// Option changes how New builds an Authenticator.
type Option func(*Authenticator)

// WithClock makes the Authenticator read the time from now instead of time.Now, so that tests can move
// time past the TTL.
func WithClock(now func() time.Time) Option {
	return func(a *Authenticator) { a.now = now }
}

// WithNegativeTTL sets how long a refused key is refused without asking again (DefaultNegativeTTL); zero
// asks every time. Short, because a refused key never becomes valid but a flaky answer should not stick.
func WithNegativeTTL(d time.Duration) Option {
	return func(a *Authenticator) { a.negTTL = d }
}

// WithMaxEntries bounds each cache (valid keys, refused keys) to n entries (DefaultMaxEntries).
func WithMaxEntries(n int) Option {
	return func(a *Authenticator) { a.max = n }
}

// WithFailureLimit lets a client present burst bad keys within window before it is answered with
// ErrThrottled; it then regains one try every window/burst. At most maxClients clients are tracked, the
// least recently failing forgotten first, so that many addresses cannot grow memory without bound.
func WithFailureLimit(burst int, window time.Duration, maxClients int) Option {
	return func(a *Authenticator) { a.fails = newFailures(burst, window, maxClients) }
}

// New returns an Authenticator that caches valid keys for ttl. Only hashes of keys are kept.
func New(client approvalv1.ApprovalServiceClient, ttl time.Duration, opts ...Option) (*Authenticator, error) {
	if client == nil {
		return nil, errors.New("keyauth: nil client")
	}
	a := &Authenticator{
		client: client, ttl: ttl, negTTL: DefaultNegativeTTL, max: DefaultMaxEntries, now: time.Now,
		fails: newFailures(DefaultFailureBurst, DefaultFailureWindow, DefaultMaxClients),
		cache: map[[sha256.Size]byte]entry{}, byKey: map[string][sha256.Size]byte{}, unknown: map[[sha256.Size]byte]time.Time{},
	}
	for _, o := range opts {
		o(a)
	}
	switch {
	case a.now == nil:
		return nil, errors.New("keyauth: nil clock")
	case a.max <= 0:
		return nil, errors.New("keyauth: the cache bound must be positive")
	case a.fails == nil:
		return nil, errors.New("keyauth: the failure limit needs a positive burst, window and client bound")
	}
	return a, nil
}

// Authenticate returns the department of key, ErrInvalidKey, a *ThrottledError when client (the caller's
// address) presented too many bad keys lately, or an error when the approval service cannot answer. A key
// found valid in the cache is accepted even from a throttled client: a department's flow behind the same
// address as an attacker keeps working.
func (a *Authenticator) Authenticate(ctx context.Context, key, client string) (Department, error) {
	now := a.now()
	h := sha256.Sum256([]byte(key))
	a.mu.Lock()
	e, ok := a.cache[h]
	refusedUntil, refused := a.unknown[h]
	epoch := a.evictions
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.dept, nil
	}
	if wait, throttled := a.fails.blocked(client, now); throttled {
		return Department{}, &ThrottledError{RetryAfter: wait}
	}
	if key == "" || len(key) > 200 || (refused && now.Before(refusedUntil)) {
		a.fails.failed(client, now)
		return Department{}, ErrInvalidKey
	}
	resp, err := a.client.AuthenticateKey(ctx, &approvalv1.AuthenticateKeyRequest{ApiKey: key})
	if status.Code(err) == codes.NotFound {
		a.fails.failed(client, now)
		a.remember(h, now)
		return Department{}, ErrInvalidKey
	}
	if err != nil {
		return Department{}, fmt.Errorf("authenticate key: %w", err)
	}
	d := Department{ID: resp.GetDepartmentId(), Name: resp.GetDepartmentName(), KeyID: resp.GetKeyId(), Limits: Limits{
		PostsPerMinute: int(resp.GetLimits().GetPostsPerMinute()), MaxUndecided: int(resp.GetLimits().GetMaxUndecided()),
	}}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.evictions != epoch || a.ttl <= 0 {
		// A revocation arrived while we asked: this answer may predate it, so it is used once and not kept.
		return d, nil
	}
	if len(a.cache) >= a.max {
		// Crude but bounded; a full cache is refilled at one call per key.
		clear(a.cache)
		clear(a.byKey)
	}
	a.cache[h] = entry{dept: d, expires: now.Add(a.ttl)}
	if d.KeyID != "" {
		a.byKey[d.KeyID] = h
	}
	delete(a.unknown, h)
	return d, nil
}

// remember caches the refusal of the key hashed h.
func (a *Authenticator) remember(h [sha256.Size]byte, now time.Time) {
	if a.negTTL <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.unknown) >= a.max {
		for k, until := range a.unknown {
			if !now.Before(until) {
				delete(a.unknown, k)
			}
		}
		if len(a.unknown) >= a.max {
			clear(a.unknown)
		}
	}
	a.unknown[h] = now.Add(a.negTTL)
}

// Evict forgets the cached answer for the key with id keyID, so that its next use is checked with the
// approval service. It never makes a key valid: the worst a forged call can do is cost a check.
func (a *Authenticator) Evict(keyID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evictions++
	if h, ok := a.byKey[keyID]; ok {
		delete(a.cache, h)
		delete(a.byKey, keyID)
	}
}

// failures counts each client's bad keys with a token bucket per client, in a bounded LRU.
type failures struct {
	every time.Duration
	burst int

	mu      sync.Mutex
	clients *lru
}

func newFailures(burst int, window time.Duration, maxClients int) *failures {
	if burst <= 0 || window <= 0 || maxClients <= 0 {
		return nil
	}
	return &failures{every: window / time.Duration(burst), burst: burst, clients: newLRU(maxClients)}
}

// blocked reports whether client has no tries left at now, and when it has one again.
func (f *failures) blocked(client string, now time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients.get(clientKey(client))
	if !ok {
		return 0, false
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	wait := time.Duration(math.Ceil((1 - tokens) * float64(f.every)))
	return max(wait, time.Second), true
}

// failed spends one of client's tries.
func (f *failures) failed(client string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := clientKey(client)
	l, ok := f.clients.get(key)
	if !ok {
		l = newLimiter(f.every, f.burst)
		f.clients.add(key, l)
	}
	l.AllowN(now, 1)
}

// clientKey is what bad keys are counted by: the address, or for IPv6 its /64, since one end site holds a
// whole /64 and could otherwise try each key from a fresh address.
func clientKey(client string) string {
	addr, err := netip.ParseAddr(client)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return client
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return client
	}
	return p.String()
}
