package ops_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/heraldhq/herald/services/heraldshared/ops"
)

// TestServeTurnsUnreadyBeforeItStops stops a gRPC service with a shutdown delay: during the delay gRPC
// health says NOT_SERVING and /readyz 503 while both still answer; afterwards both listeners are closed.
func TestServeTurnsUnreadyBeforeItStops(t *testing.T) {
	t.Parallel()
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	drain := &ops.Drain{}
	svc := ops.GRPCService{GRPC: gs, Health: hs, GRPCListener: glis, HTTPListener: hlis,
		HTTP:  &http.Server{Handler: ops.Handler(ops.NewRegistry(), drain.Ready(nil))},
		Drain: drain, Delay: 2 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, 5*time.Second) }()

	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	state := func() (healthpb.HealthCheckResponse_ServingStatus, int, error) {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return 0, 0, err
		}
		resp, err := probe.Get("http://" + hlis.Addr().String() + "/readyz")
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return r.GetStatus(), resp.StatusCode, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, code, err := state()
		if err == nil && st == healthpb.HealthCheckResponse_SERVING && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving at start: %v %d %v", st, code, err)
		}
	}
	stop()
	for {
		st, code, err := state()
		if err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING && code == http.StatusServiceUnavailable {
			break // unready, and still answering
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("after the stop: health %v, /readyz %d, %v; want NOT_SERVING and 503 while still answering", st, code, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := probe.Get("http://" + hlis.Addr().String() + "/readyz"); err == nil {
		t.Error("the ops server still answers after Serve returned")
	}
	if c, err := net.DialTimeout("tcp", glis.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the gRPC listener still accepts after Serve returned")
	}
	if !errors.Is(drain.Ready(nil)(context.Background()), ops.ErrShuttingDown) {
		t.Error("readiness came back after the stop")
	}
}
