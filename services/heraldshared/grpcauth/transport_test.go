package grpcauth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
)

func tcp(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 50000} }

// otherAddr is a net.Addr of a type IsLocal does not know, parsed from its string.
type otherAddr struct{ network, s string }

func (a otherAddr) Network() string { return a.network }
func (a otherAddr) String() string  { return a.s }

func TestIsLocal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{tcp("127.0.0.1"), true},
		{tcp("127.1.2.3"), true},
		{tcp("::1"), true},
		{tcp("::ffff:127.0.0.1"), true},
		{&net.UDPAddr{IP: net.ParseIP("127.0.0.1")}, true},
		{&net.UnixAddr{Name: "/run/herald.sock", Net: "unix"}, true},
		{otherAddr{"bufconn", "bufconn"}, true},
		{otherAddr{"pipe", "pipe"}, true},
		{otherAddr{"tcp", "127.0.0.1:9090"}, true},
		{otherAddr{"tcp", "[::1]:9090"}, true},
		{tcp("10.0.0.5"), false},
		{tcp("0.0.0.0"), false},
		{tcp("192.168.1.2"), false},
		{tcp("2001:db8::1"), false},
		{otherAddr{"tcp", "10.0.0.5:9090"}, false},
		{otherAddr{"tcp", "localhost:9090"}, false}, // a name could resolve anywhere
		{otherAddr{"custom", "whatever"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := grpcauth.IsLocal(tt.addr); got != tt.want {
			t.Errorf("IsLocal(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestPlaintextTokens unit-tests the server's transport check: peers are simulated with a peer.Peer in the
// call's context, as grpc puts it there.
func TestPlaintextTokens(t *testing.T) {
	t.Parallel()
	tlsInfo := credentials.TLSInfo{State: tls.ConnectionState{HandshakeComplete: true}, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	remote := tcp("10.0.0.5")
	tests := []struct {
		name          string
		peer          *peer.Peer // nil: no peer in the context
		authorization string     // "": no metadata
		method        string
		allow         bool
		want          codes.Code
		plaintext     bool // the refusal is the plaintext one
	}{
		{"remote plaintext with the right token", &peer.Peer{Addr: remote}, "Bearer " + adminToken, "/" + admin + "/ListDepartments", false, codes.Unauthenticated, true},
		{"remote plaintext with a wrong token", &peer.Peer{Addr: remote}, "Bearer nope-nope-nope-nope", "/" + admin + "/ListDepartments", false, codes.Unauthenticated, true},
		{"remote plaintext health with a token", &peer.Peer{Addr: remote}, "Bearer " + adminToken, "/grpc.health.v1.Health/Check", false, codes.Unauthenticated, true},
		{"remote plaintext with insecure AuthInfo", &peer.Peer{Addr: remote, AuthInfo: insecureInfo{}}, "Bearer " + adminToken, "/" + admin + "/ListDepartments", false, codes.Unauthenticated, true},
		{"no peer at all", nil, "Bearer " + adminToken, "/" + admin + "/ListDepartments", false, codes.Unauthenticated, true},
		{"remote plaintext without a token", &peer.Peer{Addr: remote}, "", "/grpc.health.v1.Health/Check", false, codes.OK, false},
		{"remote plaintext without a token on the API", &peer.Peer{Addr: remote}, "", "/" + admin + "/ListDepartments", false, codes.Unauthenticated, false},
		{"remote plaintext allowed", &peer.Peer{Addr: remote}, "Bearer " + adminToken, "/" + admin + "/ListDepartments", true, codes.OK, false},
		{"remote plaintext allowed, wrong token", &peer.Peer{Addr: remote}, "Bearer nope-nope-nope-nope", "/" + admin + "/ListDepartments", true, codes.Unauthenticated, false},
		{"remote TLS", &peer.Peer{Addr: remote, AuthInfo: tlsInfo}, "Bearer " + adminToken, "/" + admin + "/ListDepartments", false, codes.OK, false},
		{"loopback plaintext", &peer.Peer{Addr: tcp("127.0.0.1")}, "Bearer " + adminToken, "/" + admin + "/ListDepartments", false, codes.OK, false},
		{"unix socket plaintext", &peer.Peer{Addr: &net.UnixAddr{Name: "/run/h.sock", Net: "unix"}}, "Bearer " + adminToken, "/" + admin + "/ListDepartments", false, codes.OK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			a, err := grpcauth.New(map[string]string{"admin": adminToken}, map[string][]string{admin: {"admin"}},
				slog.New(slog.NewTextHandler(&logs, nil)), grpcauth.AllowPlaintextTokens(tt.allow))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.peer != nil {
				ctx = peer.NewContext(ctx, tt.peer)
			}
			if tt.authorization != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", tt.authorization))
			}
			called := false
			_, err = a.Unary()(ctx, "req", &grpc.UnaryServerInfo{FullMethod: tt.method}, func(context.Context, any) (any, error) {
				called = true
				return "resp", nil
			})
			if got := status.Code(err); got != tt.want || called != (tt.want == codes.OK) {
				t.Fatalf("code %v (%v), handler called %v; want %v", got, err, called, tt.want)
			}
			if got := status.Convert(err).Message() == grpcauth.PlaintextMessage; got != tt.plaintext {
				t.Errorf("message %q; plaintext refusal %v, want %v", status.Convert(err).Message(), got, tt.plaintext)
			}
			if tt.plaintext && !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("a plaintext refusal is not logged as a warning: %q", logs.String())
			}
			if strings.Contains(logs.String(), adminToken) {
				t.Errorf("the log holds the token: %s", logs.String())
			}
		})
	}
}

type insecureInfo struct{}

func (insecureInfo) AuthType() string { return "insecure" }

func TestCheckTransport(t *testing.T) {
	t.Parallel()
	plain := func(ip string) credentials.AuthInfo {
		return grpcauth.PlaintextInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}, Remote: tcp(ip)}
	}
	tests := []struct {
		name  string
		info  credentials.AuthInfo
		allow bool
		ok    bool
	}{
		{"TLS", credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, false, true},
		{"plaintext to loopback", plain("127.0.0.1"), false, true},
		{"plaintext to IPv6 loopback", plain("::1"), false, true},
		{"plaintext to a remote address", plain("10.0.0.5"), false, false},
		{"plaintext to a remote address, allowed", plain("10.0.0.5"), true, true},
		{"grpc's insecure credentials: address unknown", insecureInfo{}, false, false},
		{"no AuthInfo", nil, false, false},
		{"no AuthInfo, allowed", nil, true, true},
	}
	for _, tt := range tests {
		err := grpcauth.CheckTransport(tt.info, tt.allow)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckTransport = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && tt.info != nil && strings.Contains(tt.name, "remote") && !strings.Contains(err.Error(), "10.0.0.5") {
			t.Errorf("%s: the error does not name the address: %v", tt.name, err)
		}
	}
}

// remoteConn reports a non-loopback remote address for a connection that is really on loopback, so that
// tests see both ends of "plaintext to or from another machine" without another machine.
type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return tcp("10.0.0.5") }

type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

// TestPlaintextOverTheWire runs the server check through a real gRPC server whose listener reports
// every caller at 10.0.0.5, and the client check through PlaintextCredentials dialling an address that
// reports itself as 10.0.0.5.
func TestPlaintextOverTheWire(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		remote     bool // the server sees the caller at 10.0.0.5 (and the client the server)
		allow      bool
		wantServer codes.Code
	}{
		{"loopback", false, false, codes.OK},
		{"remote", true, false, codes.Unauthenticated},
		{"remote, allowed", true, true, codes.OK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := grpcauth.New(map[string]string{"admin": adminToken}, map[string][]string{"grpc.testing.TestService": {"admin"}}, nil, grpcauth.AllowPlaintextTokens(tt.allow))
			if err != nil {
				t.Fatal(err)
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var served net.Listener = lis
			if tt.remote {
				served = remoteListener{lis}
			}
			srv := grpc.NewServer(grpc.UnaryInterceptor(a.Unary()))
			srv.RegisterService(&emptyServiceDesc, struct{}{})
			go func() { _ = srv.Serve(served) }()
			t.Cleanup(srv.Stop)

			// Server side: a plain client sends the token as metadata, whatever the address.
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminToken)
			err = conn.Invoke(ctx, "/grpc.testing.TestService/EmptyCall", &emptypb.Empty{}, &emptypb.Empty{})
			if got := status.Code(err); got != tt.wantServer {
				t.Errorf("server: code %v (%v), want %v", got, err, tt.wantServer)
			}

			// Client side: per-RPC credentials that check the transport refuse to send the token to a
			// remote address over plaintext, and the server never sees the call.
			dial := func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil || !tt.remote {
					return c, err
				}
				return remoteConn{c}, nil
			}
			checked, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(grpcauth.PlaintextCredentials()),
				grpc.WithContextDialer(dial), grpc.WithPerRPCCredentials(checkedBearer{allow: tt.allow}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { checked.Close() })
			err = checked.Invoke(t.Context(), "/grpc.testing.TestService/EmptyCall", &emptypb.Empty{}, &emptypb.Empty{})
			wantClient := codes.OK
			if tt.remote && !tt.allow {
				wantClient = codes.Unauthenticated
			}
			if got := status.Code(err); got != wantClient {
				t.Errorf("client: code %v (%v), want %v", got, err, wantClient)
			}
			if wantClient != codes.OK && !strings.Contains(err.Error(), "not sending a bearer token in plaintext to 10.0.0.5") {
				t.Errorf("client: the error does not say why: %v", err)
			}
		})
	}
}

// checkedBearer is per-RPC credentials as a Herald client writes them: the transport is checked first.
type checkedBearer struct{ allow bool }

func (b checkedBearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	if err := grpcauth.CheckTransport(ri.AuthInfo, b.allow); err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + adminToken}, nil
}

func (checkedBearer) RequireTransportSecurity() bool { return false }

// emptyServiceDesc is a one-method service answering an empty message, so that the tests need no
// generated code: grpc.testing.TestService/EmptyCall.
var emptyServiceDesc = grpc.ServiceDesc{
	ServiceName: "grpc.testing.TestService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "EmptyCall",
		Handler: func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return &emptypb.Empty{}, nil }
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}, h)
		},
	}},
}
