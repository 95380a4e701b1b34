package gatewayd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
	"github.com/heraldhq/herald/services/heraldshared/testenv/certtest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

const gatewayToken = "gateway-token-0123456789"

func TestValidateApprovalAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr  string
		tls   bool
		allow bool
		ok    bool
	}{
		{"127.0.0.1:9090", false, false, true},
		{"localhost:9090", false, false, true},
		{"[::1]:9090", false, false, true},
		{"dns:///localhost:9090", false, false, true},
		{"passthrough:///127.0.0.1:9090", false, false, true},
		{"unix:///run/herald/approval.sock", false, false, true},
		{"10.0.0.5:9090", false, false, false},
		{"approval:9090", false, false, false},
		{"dns:///approval.internal:9090", false, false, false},
		{"0.0.0.0:9090", false, false, false},
		{"10.0.0.5:9090", true, false, true},
		{"approval:9090", false, true, true},
	}
	for _, tt := range tests {
		cfg := Config{ApprovalAddr: tt.addr, GatewayToken: gatewayToken}
		if tt.tls {
			cfg.ApprovalCAFile = "ca.pem"
		}
		cfg.AllowPlaintextTokens = tt.allow
		err := cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate with HERALD_APPROVAL_ADDR %q, TLS %v, plaintext allowed %v = %v; want ok %v", tt.addr, tt.tls, tt.allow, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "HERALD_APPROVAL_CA_FILE") {
			t.Errorf("the error does not say how to fix it: %v", err)
		}
	}
}

// fakeApprovals answers AuthenticateKey and records the authorization metadata it received.
type fakeApprovals struct {
	approvalv1.UnimplementedApprovalServiceServer
	got chan []string
}

func (f *fakeApprovals) AuthenticateKey(ctx context.Context, _ *approvalv1.AuthenticateKeyRequest) (*approvalv1.AuthenticateKeyResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.got <- md.Get("authorization")
	return &approvalv1.AuthenticateKeyResponse{}, nil
}

// serveApprovals runs a stand-in approval service, behind grpcauth as the real one is, with the TLS srv
// configures.
func serveApprovals(t *testing.T, srv svcconfig.ServerTLS) (string, *fakeApprovals) {
	t.Helper()
	transport, err := srv.GRPCTransport(svcconfig.PlaintextTokens{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := grpcauth.New(map[string]string{"gateway": gatewayToken},
		map[string][]string{approvalv1.ApprovalService_ServiceDesc.ServiceName: {"gateway"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append(transport.ServerOptions(), grpc.UnaryInterceptor(auth.Unary()))...)
	fake := &fakeApprovals{got: make(chan []string, 8)}
	approvalv1.RegisterApprovalServiceServer(gs, fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), fake
}

// start runs a gateway with cfg on a loopback port against an embedded NATS server whose stream exists,
// and returns its address. It stops when the test ends.
func start(t *testing.T, cfg Config) *Service {
	t.Helper()
	url := natstest.Embedded(t)
	// The gateway waits for the stream, which the approval service creates: create it here instead.
	nc, _, err := eventbus.Connect(t.Context(), url, "test-setup")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	cfg.NATSURL = url
	cfg.GatewayToken = gatewayToken
	cfg.MaxBodyBytes, cfg.KeyCacheTTL, cfg.RetryAfter = 1<<20, time.Second, time.Second
	cfg.CSRFKey = "csrf-key-for-tests-0123456789abcdef"
	if cfg.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		cfg.Listener.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return svc
}

// TestHTTPS serves the gateway over TLS and mutual TLS and calls /healthz as a department's flow would.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	pool := x509.NewCertPool()
	pool.AddCert(c.CA)
	clientCert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		server     svcconfig.ServerTLS
		clientCert bool
		ok         bool
	}{
		{"TLS", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile}, false, true},
		{"mutual TLS with a client certificate", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile, TLSClientCAFile: c.CAFile}, true, true},
		{"mutual TLS without a client certificate", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile, TLSClientCAFile: c.CAFile}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := start(t, Config{ServerTLS: tt.server, ApprovalAddr: "127.0.0.1:1"})
			base := "https://" + svc.Addr().String()
			tc := &tls.Config{RootCAs: pool}
			if tt.clientCert {
				tc.Certificates = []tls.Certificate{clientCert}
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
			resp, err := client.Get(base + "/healthz")
			if !tt.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET /healthz without a client certificate: %s, want a refused handshake", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 || resp.ProtoMajor != 2 {
				t.Errorf("GET /healthz: %s over %s, TLS %+v; want 200 over HTTP/2 and TLS 1.3", resp.Status, resp.Proto, resp.TLS != nil)
			}

			// Plain HTTP to the TLS port gets no answer from the API.
			plain, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + svc.Addr().String() + "/healthz")
			if err == nil {
				body, _ := io.ReadAll(plain.Body)
				plain.Body.Close()
				if plain.StatusCode == http.StatusOK {
					t.Errorf("plain HTTP to the HTTPS listener: %s %s", plain.Status, body)
				}
			}
		})
	}
}

// TestApprovalClient checks the gateway's client to the approval service as New builds it: over mutual
// TLS and over loopback plaintext the token arrives; plaintext towards an address that is not loopback
// is refused before the token leaves.
func TestApprovalClient(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	mtls := svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile, TLSClientCAFile: c.CAFile}
	tests := []struct {
		name   string
		server svcconfig.ServerTLS
		client svcconfig.ClientTLS
		ok     bool
	}{
		{"mutual TLS", mtls, svcconfig.ClientTLS{ApprovalCAFile: c.CAFile, ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile}, true},
		{"mutual TLS without the gateway's certificate", mtls, svcconfig.ClientTLS{ApprovalCAFile: c.CAFile}, false},
		{"plaintext on loopback", svcconfig.ServerTLS{}, svcconfig.ClientTLS{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, fake := serveApprovals(t, tt.server)
			svc := start(t, Config{ClientTLS: tt.client, ApprovalAddr: addr})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := approvalv1.NewApprovalServiceClient(svc.conn).AuthenticateKey(ctx, &approvalv1.AuthenticateKeyRequest{ApiKey: "hk_x"})
			if (err == nil) != tt.ok {
				t.Fatalf("AuthenticateKey = %v, want success %v", err, tt.ok)
			}
			if tt.ok {
				if got := <-fake.got; len(got) != 1 || got[0] != "Bearer "+gatewayToken {
					t.Errorf("the approval service received authorization %q", got)
				}
			}
		})
	}
}

// TestBearerRefusesRemotePlaintext dials a loopback server through a connection that reports 10.0.0.5,
// so the gateway's credentials see a remote address: the token is not sent unless plaintext is allowed.
func TestBearerRefusesRemotePlaintext(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		addr, fake := serveApprovals(t, svcconfig.ServerTLS{})
		dial := func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			return remoteConn{c}, err
		}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpcauth.PlaintextCredentials()), grpc.WithContextDialer(dial),
			grpc.WithPerRPCCredentials(bearer{token: gatewayToken, allowPlaintext: allow}))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = approvalv1.NewApprovalServiceClient(conn).AuthenticateKey(t.Context(), &approvalv1.AuthenticateKeyRequest{ApiKey: "hk_x"})
		if allow {
			if err != nil {
				t.Errorf("allowed: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "10.0.0.5") || !strings.Contains(err.Error(), "HERALD_APPROVAL_CA_FILE") {
			t.Errorf("plaintext to 10.0.0.5: %v; want a refusal naming the address and the fix", err)
		}
		select {
		case got := <-fake.got:
			t.Errorf("the server received a call with authorization %q", got)
		default:
		}
	}
}

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 9090} }
