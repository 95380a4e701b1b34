package svcconfig_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
	"github.com/heraldhq/herald/services/heraldshared/testenv/certtest"
)

const token = "admin-token-0123456789"

func TestServerTLSConfig(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     svcconfig.ServerTLS
		wantNil bool   // TLS off
		wantErr string // "": no error
		mutual  bool
	}{
		{"off", svcconfig.ServerTLS{}, true, "", false},
		{"TLS", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile}, false, "", false},
		{"mutual TLS", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile, TLSClientCAFile: c.CAFile}, false, "", true},
		{"certificate without key", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile}, false, "both required", false},
		{"key without certificate", svcconfig.ServerTLS{TLSKeyFile: c.ServerKeyFile}, false, "both required", false},
		{"client CA alone", svcconfig.ServerTLS{TLSClientCAFile: c.CAFile}, false, "both required", false},
		{"key of another certificate", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ClientKeyFile}, false, "TLS_CERT_FILE", false},
		{"missing file", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile + ".gone", TLSKeyFile: c.ServerKeyFile}, false, "TLS_CERT_FILE", false},
		{"client CA not PEM", svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile, TLSClientCAFile: junk}, false, "no PEM certificate", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := tt.tls.TLSConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TLSConfig = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg == nil) != tt.wantNil {
				t.Fatalf("TLSConfig = %v, want nil %v", cfg, tt.wantNil)
			}
			if cfg == nil {
				return
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion %x, want TLS 1.2", cfg.MinVersion)
			}
			if got := cfg.ClientAuth == tls.RequireAndVerifyClientCert; got != tt.mutual {
				t.Errorf("client certificates required: %v, want %v", got, tt.mutual)
			}
		})
	}
}

func TestClientTLSCredentials(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	tests := []struct {
		name     string
		tls      svcconfig.ClientTLS
		wantType string // AuthType of the credentials' protocol
		wantErr  string
	}{
		{"plaintext", svcconfig.ClientTLS{}, "insecure", ""},
		{"TLS", svcconfig.ClientTLS{ApprovalCAFile: c.CAFile}, "tls", ""},
		{"mutual TLS", svcconfig.ClientTLS{ApprovalCAFile: c.CAFile, ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile}, "tls", ""},
		{"certificate without key", svcconfig.ClientTLS{ApprovalCAFile: c.CAFile, ClientCertFile: c.ClientCertFile}, "", "go together"},
		{"client certificate without TLS", svcconfig.ClientTLS{ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile}, "", "needs HERALD_APPROVAL_CA_FILE"},
		{"missing CA", svcconfig.ClientTLS{ApprovalCAFile: c.CAFile + ".gone"}, "", "HERALD_APPROVAL_CA_FILE"},
	}
	for _, tt := range tests {
		creds, err := tt.tls.TransportCredentials()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: TransportCredentials = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := creds.Info().SecurityProtocol; got != tt.wantType {
			t.Errorf("%s: security protocol %q, want %q", tt.name, got, tt.wantType)
		}
	}
}

// bearer is the per-RPC credentials of a Herald client: the token, sent only where CheckTransport allows.
type bearer struct{}

func (bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	if err := grpcauth.CheckTransport(ri.AuthInfo, false); err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// serveGRPC serves a one-method service behind grpcauth on a loopback port, with the transport srvTLS
// configures, and returns its address and the TLS version of the last call it answered.
func serveGRPC(t *testing.T, srvTLS svcconfig.ServerTLS) (addr string, version func() uint16) {
	t.Helper()
	transport, err := srvTLS.GRPCTransport(svcconfig.PlaintextTokens{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := grpcauth.New(map[string]string{"admin": token}, map[string][]string{"grpc.testing.TestService": {"admin"}}, nil,
		grpcauth.AllowPlaintextTokens(transport.AllowPlaintextTokens))
	if err != nil {
		t.Fatal(err)
	}
	versions := make(chan uint16, 16)
	srv := grpc.NewServer(append(transport.ServerOptions(), grpc.UnaryInterceptor(auth.Unary()))...)
	srv.RegisterService(&emptyServiceDesc, func(ctx context.Context) {
		var v uint16
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				v = info.State.Version
			}
		}
		versions <- v
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), func() uint16 {
		select {
		case v := <-versions:
			return v
		default:
			return 0
		}
	}
}

// TestGRPCOverTLS calls a token-protected method with the server and client configured from the
// variables' structs, over TLS, mutual TLS and loopback plaintext.
func TestGRPCOverTLS(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	other := certtest.New(t) // another CA: its certificates are strangers to c's
	srvTLS := svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile}
	srvMTLS := svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile, TLSClientCAFile: c.CAFile}
	cliTLS := svcconfig.ClientTLS{ApprovalCAFile: c.CAFile}
	cliMTLS := svcconfig.ClientTLS{ApprovalCAFile: c.CAFile, ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile}
	tests := []struct {
		name        string
		server      svcconfig.ServerTLS
		client      svcconfig.ClientTLS
		host        string // dialled host; the port is the server's
		want        codes.Code
		wantVersion uint16
	}{
		{"TLS with a token", srvTLS, cliTLS, "127.0.0.1", codes.OK, tls.VersionTLS13},
		{"TLS by name", srvTLS, cliTLS, "localhost", codes.OK, tls.VersionTLS13},
		{"mutual TLS with a client certificate", srvMTLS, cliMTLS, "127.0.0.1", codes.OK, tls.VersionTLS13},
		{"mutual TLS without a client certificate", srvMTLS, cliTLS, "127.0.0.1", codes.Unavailable, 0},
		{"mutual TLS with a stranger's client certificate", srvMTLS, svcconfig.ClientTLS{ApprovalCAFile: c.CAFile, ClientCertFile: other.ClientCertFile, ClientKeyFile: other.ClientKeyFile}, "127.0.0.1", codes.Unavailable, 0},
		{"server certificate from another CA", srvTLS, svcconfig.ClientTLS{ApprovalCAFile: other.CAFile}, "127.0.0.1", codes.Unavailable, 0},
		{"TLS client, plaintext server", svcconfig.ServerTLS{}, cliTLS, "127.0.0.1", codes.Unavailable, 0},
		{"plaintext client, TLS server", srvTLS, svcconfig.ClientTLS{}, "127.0.0.1", codes.Unavailable, 0},
		{"plaintext on loopback", svcconfig.ServerTLS{}, svcconfig.ClientTLS{}, "127.0.0.1", codes.OK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, version := serveGRPC(t, tt.server)
			_, port, _ := net.SplitHostPort(addr)
			creds, err := tt.client.TransportCredentials()
			if err != nil {
				t.Fatal(err)
			}
			conn, err := grpc.NewClient(net.JoinHostPort(tt.host, port), grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer{}))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err = conn.Invoke(ctx, "/grpc.testing.TestService/EmptyCall", &emptypb.Empty{}, &emptypb.Empty{})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v (%v), want %v", got, err, tt.want)
			}
			if got := version(); tt.want == codes.OK && got != tt.wantVersion {
				t.Errorf("TLS version %x, want %x", got, tt.wantVersion)
			}
		})
	}
}

// TestServerRefusesOldTLS checks the floor: a client that speaks at most TLS 1.1 gets no connection.
func TestServerRefusesOldTLS(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	addr, _ := serveGRPC(t, svcconfig.ServerTLS{TLSCertFile: c.ServerCertFile, TLSKeyFile: c.ServerKeyFile})
	pool := x509.NewCertPool()
	pool.AddCert(c.CA)
	for _, tt := range []struct {
		max uint16
		ok  bool
	}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tt.max, NextProtos: []string{"h2"}})
		if (err == nil) != tt.ok {
			t.Errorf("TLS up to %x: handshake error %v, want success %v", tt.max, err, tt.ok)
		}
		if err == nil {
			conn.Close()
		}
	}
}

func TestPlaintextTokensWarn(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		var logs bytes.Buffer
		svcconfig.PlaintextTokens{AllowPlaintextTokens: allow}.Warn(slog.New(slog.NewTextHandler(&logs, nil)))
		if got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "HERALD_ALLOW_PLAINTEXT_TOKENS"); got != allow {
			t.Errorf("allowed %v: warning logged %v: %q", allow, got, logs.String())
		}
	}
}

// natsTLSServer starts an embedded NATS server with JetStream that speaks only TLS, requiring client
// certificates when verify is set, and returns its URL.
func natsTLSServer(t *testing.T, c certtest.Files, verify bool) string {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.ServerCertFile, KeyFile: c.ServerKeyFile, CaFile: c.CAFile, Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		TLSConfig: tc, TLSVerify: verify, TLSTimeout: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// TestNATSConnectTLS connects through svcconfig.NATS.Connect, as the services do, to an embedded NATS
// server that requires TLS (and, in some cases, client certificates).
func TestNATSConnectTLS(t *testing.T) {
	t.Parallel()
	c := certtest.New(t)
	other := certtest.New(t)
	tests := []struct {
		name   string
		verify bool // the server requires client certificates
		cfg    svcconfig.NATS
		ok     bool
	}{
		{"TLS", false, svcconfig.NATS{NATSCAFile: c.CAFile}, true},
		{"mutual TLS", true, svcconfig.NATS{NATSCAFile: c.CAFile, NATSCertFile: c.ClientCertFile, NATSKeyFile: c.ClientKeyFile}, true},
		{"mutual TLS without a client certificate", true, svcconfig.NATS{NATSCAFile: c.CAFile}, false},
		{"server certificate from another CA", false, svcconfig.NATS{NATSCAFile: other.CAFile}, false},
		{"no TLS configured", false, svcconfig.NATS{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.NATSURL = natsTLSServer(t, c, tt.verify)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			nc, js, err := tt.cfg.Connect(ctx, eventbus.ServiceApproval, "tls-test")
			if (err == nil) != tt.ok {
				t.Fatalf("Connect = %v, want success %v", err, tt.ok)
			}
			if err != nil {
				return
			}
			defer nc.Close()
			if !nc.TLSRequired() {
				t.Error("the connection does not use TLS")
			}
			if _, err := js.Stream(ctx, eventbus.Stream); err != nil {
				t.Errorf("the stream over TLS: %v", err)
			}
		})
	}
}

// emptyServiceDesc is a one-method service, grpc.testing.TestService/EmptyCall, so that the tests need no
// generated code. Its handler (a func(context.Context)) sees every call's context.
var emptyServiceDesc = grpc.ServiceDesc{
	ServiceName: "grpc.testing.TestService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "EmptyCall",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				srv.(func(context.Context))(ctx)
				return &emptypb.Empty{}, nil
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/grpc.testing.TestService/EmptyCall"}, h)
		},
	}},
}
