// Package keyauth authenticates departments by API key through the approval service, keeping answers
// for a short while so that a busy flow does not cost a gRPC call per request.
package keyauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// ErrInvalidKey means the key is unknown or revoked.
var ErrInvalidKey = errors.New("invalid API key")

// Department is who a valid key belongs to.
type Department struct {
	ID   string
	Name string
}

type entry struct {
	dept    Department
	expires time.Time
}

// Authenticator checks keys with a cache. A revoked key stops working within TTL.
type Authenticator struct {
	client approvalv1.ApprovalServiceClient
	ttl    time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]entry
}

// Option changes how New builds an Authenticator.
type Option func(*Authenticator)

// WithClock makes the Authenticator read the time from now instead of time.Now, so that tests can move
// time past the TTL.
func WithClock(now func() time.Time) Option {
	return func(a *Authenticator) { a.now = now }
}

// New returns an Authenticator that caches valid keys for ttl. Only hashes of keys are kept.
func New(client approvalv1.ApprovalServiceClient, ttl time.Duration, opts ...Option) (*Authenticator, error) {
	if client == nil {
		return nil, errors.New("keyauth: nil client")
	}
	a := &Authenticator{client: client, ttl: ttl, max: 10000, now: time.Now, cache: map[[sha256.Size]byte]entry{}}
	for _, o := range opts {
		o(a)
	}
	if a.now == nil {
		return nil, errors.New("keyauth: nil clock")
	}
	return a, nil
}

// Authenticate returns the department of key, ErrInvalidKey, or an error when the approval service
// cannot answer.
func (a *Authenticator) Authenticate(ctx context.Context, key string) (Department, error) {
	if key == "" || len(key) > 200 {
		return Department{}, ErrInvalidKey
	}
	h := sha256.Sum256([]byte(key))
	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[h]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.dept, nil
	}
	resp, err := a.client.AuthenticateKey(ctx, &approvalv1.AuthenticateKeyRequest{ApiKey: key})
	if status.Code(err) == codes.NotFound {
		return Department{}, ErrInvalidKey
	}
	if err != nil {
		return Department{}, fmt.Errorf("authenticate key: %w", err)
	}
	d := Department{ID: resp.GetDepartmentId(), Name: resp.GetDepartmentName()}
	a.mu.Lock()
	if len(a.cache) >= a.max {
		clear(a.cache) // crude but bounded; a full cache is refilled at one call per key
	}
	a.cache[h] = entry{dept: d, expires: now.Add(a.ttl)}
	a.mu.Unlock()
	return d, nil
}
