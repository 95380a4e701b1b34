package gatewayd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// slowApprovals holds every AuthenticateKey call until release is closed, so that requests are in
// flight in the gateway for as long as the test wants.
type slowApprovals struct {
	approvalv1.UnimplementedApprovalServiceServer
	entered chan struct{}
	release chan struct{}
}

func (f *slowApprovals) AuthenticateKey(ctx context.Context, _ *approvalv1.AuthenticateKeyRequest) (*approvalv1.AuthenticateKeyResponse, error) {
	f.entered <- struct{}{}
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &approvalv1.AuthenticateKeyResponse{}, nil
}

// TestStopFinishesRequestsInFlight stops a gateway (what SIGTERM does through main's
// signal.NotifyContext) while requests wait on the approval service: /readyz turns 503 at once while new
// requests are still answered during the delay, then the listener closes, and every request in flight
// still gets its answer.
func TestStopFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()
	url := natstest.Embedded(t)
	nc, _, err := eventbus.Connect(t.Context(), url, "test-setup")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	const inFlight = 5
	fake := &slowApprovals{entered: make(chan struct{}, inFlight), release: make(chan struct{})}
	gs := grpc.NewServer()
	approvalv1.RegisterApprovalServiceServer(gs, fake)
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(glis) }()
	t.Cleanup(gs.Stop)

	cfg := Config{ApprovalAddr: glis.Addr().String(), GatewayToken: gatewayToken, CSRFKey: "csrf-key-for-tests-0123456789abcdef",
		MaxBodyBytes: 1 << 20, KeyCacheTTL: time.Second, RetryAfter: time.Second}
	cfg.NATSURL = url
	cfg.ShutdownDelay = time.Second
	if cfg.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	svc, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	base := "http://" + svc.Addr().String()
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	readyz := func() (int, error) {
		resp, err := probe.Get(base + "/readyz")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if code, err := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before the stop: %d, %v", code, err)
	}

	// Requests in flight: each waits in the approval service for its key.
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, inFlight)
	var wg sync.WaitGroup
	for i := range inFlight {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/posts", strings.NewReader(`{"tweet":"hello","requestedby":"jo@example.com"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", fmt.Sprintf("hk_shutdown_test_key_%d", i))
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers <- answer{status: resp.StatusCode, body: string(b)}
		})
	}
	for range inFlight {
		select {
		case <-fake.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the requests did not reach the approval service")
		}
	}

	stop() // SIGTERM
	// Readiness turns false first, while the gateway still answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := readyz()
		if code == http.StatusServiceUnavailable {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("/readyz after the stop: %d, %v; want 503 while the gateway still serves", code, err)
		}
	}
	// Meanwhile responses tell clients to stop reusing their connections, so none is left holding one when
	// the listener closes.
	if resp, err := http.Get(base + "/readyz"); err != nil {
		t.Fatalf("a request during the shutdown delay: %v", err)
	} else {
		resp.Body.Close()
		if !resp.Close {
			t.Error("a response during the shutdown delay kept the connection alive; want Connection: close")
		}
	}
	// After the delay the listener closes, with the requests still in flight.
	for {
		c, err := net.DialTimeout("tcp", svc.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the gateway still accepts connections 10s after the stop")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with requests in flight", err)
	default:
	}
	close(fake.release)
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil || a.status == 0 || !strings.Contains(a.body, `"error"`) && a.status != http.StatusAccepted {
			t.Errorf("a request in flight at the stop got %d %q, %v; want the gateway's answer", a.status, a.body, a.err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
