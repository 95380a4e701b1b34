package grpcauth_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
)

const (
	adminToken   = "admin-token-0123456789"
	gatewayToken = "gateway-token-0123456789"

	approvals = "herald.approval.v1.ApprovalService"
	admin     = "herald.approval.v1.AdminService"
)

// setup returns an Authorizer configured as the approval service's: the admin token everywhere, the
// gateway's on ApprovalService only, and the buffer its log goes to.
func setup(t *testing.T) (*grpcauth.Authorizer, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	a, err := grpcauth.New(
		map[string]string{"admin": adminToken, "gateway": gatewayToken},
		map[string][]string{approvals: {"admin", "gateway"}, admin: {"admin"}},
		slog.New(slog.NewTextHandler(&logs, nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return a, &logs
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		method        string
		authorization []string // nil: no metadata at all
		want          codes.Code
	}{
		{"no metadata", "/" + admin + "/ListDepartments", nil, codes.Unauthenticated},
		{"empty authorization", "/" + admin + "/ListDepartments", []string{""}, codes.Unauthenticated},
		{"basic scheme", "/" + admin + "/ListDepartments", []string{"Basic " + adminToken}, codes.Unauthenticated},
		{"token without a scheme", "/" + admin + "/ListDepartments", []string{adminToken}, codes.Unauthenticated},
		{"bearer without a token", "/" + admin + "/ListDepartments", []string{"Bearer "}, codes.Unauthenticated},
		{"wrong token", "/" + admin + "/ListDepartments", []string{"Bearer " + adminToken + "x"}, codes.Unauthenticated},
		{"token prefix", "/" + admin + "/ListDepartments", []string{"Bearer " + adminToken[:16]}, codes.Unauthenticated},
		{"gateway token on the admin service", "/" + admin + "/ListDepartments", []string{"Bearer " + gatewayToken}, codes.Unauthenticated},
		{"gateway token on the approval service", "/" + approvals + "/GetPost", []string{"Bearer " + gatewayToken}, codes.OK},
		{"admin token on the admin service", "/" + admin + "/ListDepartments", []string{"Bearer " + adminToken}, codes.OK},
		{"admin token on the approval service", "/" + approvals + "/GetPost", []string{"Bearer " + adminToken}, codes.OK},
		{"lower-case scheme", "/" + admin + "/ListDepartments", []string{"bearer " + adminToken}, codes.OK},
		{"right token after a wrong one", "/" + admin + "/ListDepartments", []string{"Bearer nope-nope-nope-nope", "Bearer " + adminToken}, codes.OK},
		{"right token after a gateway one", "/" + admin + "/ListDepartments", []string{"Bearer " + gatewayToken, "Bearer " + adminToken}, codes.OK},
		{"admin token on a service nobody configured", "/herald.other.v1.Other/Do", []string{"Bearer " + adminToken}, codes.Unauthenticated},
		{"admin token on a service name prefix", "/" + admin + "Extra/Do", []string{"Bearer " + adminToken}, codes.Unauthenticated},
		{"health without a token", "/grpc.health.v1.Health/Check", nil, codes.OK},
		{"health watch with a wrong token", "/grpc.health.v1.Health/Watch", []string{"Bearer wrong"}, codes.OK},
		{"reflection v1 without a token", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", nil, codes.OK},
		{"reflection v1alpha without a token", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", nil, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, logs := setup(t)
			// A local peer, as every call of the local stack is: the transport check passes.
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}})
			if tt.authorization != nil {
				md := metadata.MD{}
				for _, v := range tt.authorization {
					md.Append("authorization", v)
				}
				ctx = metadata.NewIncomingContext(ctx, md)
			}

			called := false
			_, err := a.Unary()(ctx, "req", &grpc.UnaryServerInfo{FullMethod: tt.method}, func(context.Context, any) (any, error) {
				called = true
				return "resp", nil
			})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("unary: code %v (%v), want %v", got, err, tt.want)
			}
			if called != (tt.want == codes.OK) {
				t.Errorf("unary: handler called = %v with code %v", called, tt.want)
			}
			if tt.want != codes.OK && status.Convert(err).Message() != grpcauth.Message {
				t.Errorf("message %q, want %q", status.Convert(err).Message(), grpcauth.Message)
			}

			// The stream interceptor makes the same decision.
			called = false
			err = a.Stream()(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: tt.method}, func(any, grpc.ServerStream) error {
				called = true
				return nil
			})
			if got := status.Code(err); got != tt.want || called != (tt.want == codes.OK) {
				t.Errorf("stream: code %v, handler called %v; want %v", got, called, tt.want)
			}

			for _, secret := range []string{adminToken, gatewayToken, adminToken[:16]} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the log holds a token: %s", logs)
				}
			}
			if tt.want != codes.OK && !strings.Contains(logs.String(), tt.method) {
				t.Errorf("a refusal is not logged with its method: %q", logs)
			}
		})
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestNewRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		tokens  map[string]string
		access  map[string][]string
		wantErr string
	}{
		{"short token", map[string]string{"admin": "too-short"}, map[string][]string{admin: {"admin"}}, "at least 16"},
		{"empty token", map[string]string{"admin": ""}, nil, "at least 16"},
		{"unknown token name", map[string]string{"admin": adminToken}, map[string][]string{admin: {"gateway"}}, `"gateway"`},
		{"method instead of service", map[string]string{"admin": adminToken}, map[string][]string{"/" + admin + "/X": {"admin"}}, "not a gRPC service name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := grpcauth.New(tt.tokens, tt.access, log)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
			for _, tok := range tt.tokens {
				if tok != "" && strings.Contains(err.Error(), tok) {
					t.Errorf("the error reveals the token: %v", err)
				}
			}
		})
	}
}

func TestUnaryTellsTheHandlerWhichTokenAuthenticated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		method        string
		authorization []string
		want          string
	}{
		{"gateway token", "/" + approvals + "/GetPost", []string{"Bearer " + gatewayToken}, "gateway"},
		{"admin token", "/" + approvals + "/GetPost", []string{"Bearer " + adminToken}, "admin"},
		// Both tokens: the name listed first for the service wins, whatever order the client sent them in.
		{"gateway then admin", "/" + approvals + "/GetPost", []string{"Bearer " + gatewayToken, "Bearer " + adminToken}, "admin"},
		{"admin then gateway", "/" + approvals + "/GetPost", []string{"Bearer " + adminToken, "Bearer " + gatewayToken}, "admin"},
		{"health, open to all", "/grpc.health.v1.Health/Check", []string{"Bearer " + adminToken}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, _ := setup(t)
			md := metadata.MD{}
			for _, v := range tt.authorization {
				md.Append("authorization", v)
			}
			// From a loopback peer: tokens from elsewhere need TLS (tested apart).
			local := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}})
			ctx := metadata.NewIncomingContext(local, md)
			got := "not called"
			_, err := a.Unary()(ctx, "req", &grpc.UnaryServerInfo{FullMethod: tt.method}, func(ctx context.Context, _ any) (any, error) {
				got = grpcauth.Caller(ctx)
				return nil, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Caller = %q, want %q", got, tt.want)
			}
		})
	}
}
