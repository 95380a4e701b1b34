package keyauth_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/heraldhq/herald/gateway/internal/keyauth"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// approvals answers AuthenticateKey over real gRPC the way the approval service does, counting calls.
type approvals struct {
	approvalv1.UnimplementedApprovalServiceServer
	calls   atomic.Int32
	revoked atomic.Bool
}

func (a *approvals) AuthenticateKey(_ context.Context, req *approvalv1.AuthenticateKeyRequest) (*approvalv1.AuthenticateKeyResponse, error) {
	a.calls.Add(1)
	switch {
	case req.GetApiKey() == "hk_misconfigured":
		return nil, status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	case req.GetApiKey() != "hk_good" || a.revoked.Load():
		return nil, status.Error(codes.NotFound, "no valid API key matches")
	}
	return &approvalv1.AuthenticateKeyResponse{DepartmentId: "d1", DepartmentName: "HR", KeyId: "k1"}, nil
}

// client is the address the requests of these tests come from.
const client = "192.0.2.1"

// clock is a settable time for the Authenticator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t *testing.T, ttl time.Duration, opts ...keyauth.Option) (*keyauth.Authenticator, *approvals) {
	t.Helper()
	srv := grpc.NewServer()
	fake := &approvals{}
	approvalv1.RegisterApprovalServiceServer(srv, fake)
	lis := bufconn.Listen(1 << 16)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a, err := keyauth.New(approvalv1.NewApprovalServiceClient(conn), ttl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a, fake
}

func TestValidKeysAreCached(t *testing.T) {
	a, fake := setup(t, time.Hour)
	for range 5 {
		d, err := a.Authenticate(context.Background(), "hk_good", client)
		if err != nil || d.ID != "d1" || d.Name != "HR" || d.KeyID != "k1" {
			t.Fatalf("Authenticate = %+v, %v", d, err)
		}
	}
	if n := fake.calls.Load(); n != 1 {
		t.Errorf("five checks of one key cost %d calls to the approval service, want 1", n)
	}
}

func TestRevocationTakesEffectAfterTheTTL(t *testing.T) {
	t.Parallel()
	const ttl = 30 * time.Second
	clk := &clock{now: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)}
	a, fake := setup(t, ttl, keyauth.WithClock(clk.Now))
	if _, err := a.Authenticate(context.Background(), "hk_good", client); err != nil {
		t.Fatal(err)
	}
	fake.revoked.Store(true)

	// Within the TTL the cached answer stands: the revoked key still works, without asking.
	clk.Advance(ttl - time.Second)
	if d, err := a.Authenticate(context.Background(), "hk_good", client); err != nil || d.ID != "d1" {
		t.Errorf("revoked key %v before the TTL: %+v, %v; want it still accepted from the cache", ttl-time.Second, d, err)
	}
	if n := fake.calls.Load(); n != 1 {
		t.Errorf("%d calls to the approval service before the TTL, want 1", n)
	}

	// Once the TTL is over the key is checked again and refused.
	clk.Advance(time.Second)
	if _, err := a.Authenticate(context.Background(), "hk_good", client); !errors.Is(err, keyauth.ErrInvalidKey) {
		t.Errorf("revoked key at the TTL: %v, want ErrInvalidKey", err)
	}
	if n := fake.calls.Load(); n != 2 {
		t.Errorf("%d calls to the approval service after the TTL, want 2", n)
	}
}

func TestWithoutCachingRevocationIsImmediate(t *testing.T) {
	t.Parallel()
	a, fake := setup(t, 0)
	if _, err := a.Authenticate(context.Background(), "hk_good", client); err != nil {
		t.Fatal(err)
	}
	fake.revoked.Store(true)
	if _, err := a.Authenticate(context.Background(), "hk_good", client); !errors.Is(err, keyauth.ErrInvalidKey) {
		t.Errorf("revoked key: %v, want ErrInvalidKey", err)
	}
}

func TestErrors(t *testing.T) {
	a, fake := setup(t, time.Hour)
	for _, k := range []string{"", "hk_unknown", string(make([]byte, 201))} {
		if _, err := a.Authenticate(context.Background(), k, client); !errors.Is(err, keyauth.ErrInvalidKey) {
			t.Errorf("key %.10q: %v, want ErrInvalidKey", k, err)
		}
	}
	// The gateway's own credentials being refused is not the department's fault: not a 401.
	if _, err := a.Authenticate(context.Background(), "hk_misconfigured", client); err == nil || errors.Is(err, keyauth.ErrInvalidKey) {
		t.Errorf("misconfigured gateway: %v, want an error other than ErrInvalidKey", err)
	}
	// Refused keys are cached too, briefly: asking again at once costs no call.
	if _, err := a.Authenticate(context.Background(), "hk_unknown", client); !errors.Is(err, keyauth.ErrInvalidKey) || fake.calls.Load() != 2 {
		t.Errorf("unknown key again: %v after %d calls, want ErrInvalidKey after 2", err, fake.calls.Load())
	}
}
