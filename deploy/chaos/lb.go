package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// backend is one replica behind a balancer: where it listens and the URL that says it is ready.
type backend struct {
	addr     string
	readyURL string
	ready    atomic.Bool
}

// balancer is a TCP load balancer that, as a Kubernetes Service does, sends each new connection to a
// replica whose readiness probe (/readyz) last answered 200, round robin. Connections already open stay
// where they are: a replica shutting down must finish them itself.
type balancer struct {
	l        net.Listener
	backends []*backend
	next     atomic.Uint64
	wg       sync.WaitGroup
	// refused counts connections closed at once because no replica was ready.
	refused atomic.Int64
}

// newBalancer listens on a free loopback port and probes the backends every 100 ms until ctx ends.
func newBalancer(ctx context.Context, backends []*backend) (*balancer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{l: l, backends: backends}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	for _, be := range backends {
		b.wg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				be.ready.Store(probe(ctx, client, be.readyURL))
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	b.wg.Go(func() { b.serve(ctx) })
	go func() { <-ctx.Done(); l.Close() }()
	return b, nil
}

func (b *balancer) addr() string { return b.l.Addr().String() }

func probe(ctx context.Context, c *http.Client, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (b *balancer) serve(ctx context.Context) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := b.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			continue
		}
		conns.Go(func() { b.forward(ctx, c) })
	}
}

// pick returns a ready backend, round robin, or nil.
func (b *balancer) pick() *backend {
	n := uint64(len(b.backends))
	start := b.next.Add(1)
	for i := range n {
		if be := b.backends[(start+i)%n]; be.ready.Load() {
			return be
		}
	}
	return nil
}

func (b *balancer) forward(ctx context.Context, c net.Conn) {
	defer c.Close()
	be := b.pick()
	if be == nil {
		b.refused.Add(1)
		return
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	up, err := d.DialContext(ctx, "tcp", be.addr)
	if err != nil {
		b.refused.Add(1)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
