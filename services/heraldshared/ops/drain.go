package ops

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

// ErrShuttingDown is the readiness answer of a service that has begun to stop.
var ErrShuttingDown = errors.New("shutting down")

// Drain is the first step of a graceful stop: from Begin on, readiness answers 503 while the service
// still serves, so that load balancers and Kubernetes take it out of rotation before it stops accepting
// anything. The zero value is ready.
type Drain struct {
	draining atomic.Bool
}

// Begin turns readiness false for good.
func (d *Drain) Begin() { d.draining.Store(true) }

// Ready wraps a readiness check: ErrShuttingDown once Begin was called, check's answer before.
func (d *Drain) Ready(check func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if d.draining.Load() {
			return ErrShuttingDown
		}
		if check == nil {
			return nil
		}
		return check(ctx)
	}
}

// Wait begins the drain and waits delay (HERALD_SHUTDOWN_DELAY): long enough for the load balancers'
// readiness probes to notice, during which requests that still arrive are served as usual.
func (d *Drain) Wait(delay time.Duration) {
	d.Begin()
	if delay <= 0 {
		return
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	<-t.C
}

// CloseConnections wraps h so that, once the drain began, every response says "Connection: close": clients
// then open their next request's connection through a balancer that no longer sends them here, instead of
// reusing one that Shutdown closes under it. Idle connections are left alone (closing them at once would
// race with a client just reusing one); Shutdown closes those that stayed idle through the delay.
func (d *Drain) CloseConnections(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
