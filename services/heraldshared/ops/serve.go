package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Listen returns l if it is set (tests and the local stack pass listeners on free ports), or listens on addr.
func Listen(l net.Listener, addr string) (net.Listener, error) {
	if l != nil {
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// GRPCService is a gRPC service's servers: its API with health checking, and its ops HTTP endpoints.
type GRPCService struct {
	GRPC         *grpc.Server
	Health       *health.Server
	GRPCListener net.Listener
	HTTP         *http.Server
	HTTPListener net.Listener
	// Drain turns the ops server's /readyz false at the start of a stop (nil: no readiness to turn); the
	// HTTP handler's readiness check must be wrapped by Drain.Ready.
	Drain *Drain
	// Delay is how long the service keeps serving, unready, before it stops accepting calls
	// (HERALD_SHUTDOWN_DELAY).
	Delay time.Duration
}

// Serve serves both servers until ctx ends, then drains in the order load balancers need: gRPC health
// turns NOT_SERVING and /readyz 503, both keep serving for Delay so that probes notice, then the gRPC
// server stops accepting calls and waits up to drain for the calls in flight, and the ops server closes.
func (s GRPCService) Serve(ctx context.Context, drain time.Duration) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.GRPC.Serve(s.GRPCListener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("grpc serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := s.HTTP.Serve(s.HTTPListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ops http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.Health.Shutdown()
		drainer := s.Drain
		if drainer == nil {
			drainer = &Drain{}
		}
		drainer.Wait(s.Delay)
		stopped := make(chan struct{})
		go func() { s.GRPC.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(drain):
			s.GRPC.Stop()
		}
		_ = s.HTTP.Close()
		return nil
	})
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	return g.Wait()
}
