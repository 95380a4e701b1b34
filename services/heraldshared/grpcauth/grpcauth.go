// Package grpcauth is the one bearer-token check of Herald's gRPC services. An Authorizer knows a set of
// named tokens and, per gRPC service, which of those names may call it; health checks and server
// reflection stay open so that probes and grpcurl's "list" work without credentials. It also keeps
// tokens off the network in plaintext, on both sides of a call: the server refuses a token that came
// over plaintext from a peer that is not local, and CheckTransport lets a client's per-RPC credentials
// refuse to send one (see transport.go).
package grpcauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// MinTokenLength is the shortest token New accepts: anything shorter is guessable.
const MinTokenLength = 16

// Message is the message of every refusal. It says what is expected and nothing about what was sent.
const Message = "missing or wrong bearer token in the authorization metadata"

// openPrefixes are the methods anyone may call: health checks (load balancers, orchestrators) and server
// reflection (grpcurl's "list" and "describe"), neither of which reveals or changes data.
var openPrefixes = []string{"/grpc.health.v1.", "/grpc.reflection."}

// Authorizer checks the bearer token of every call against the tokens allowed for the called service.
// Only SHA-256 hashes of the tokens are kept.
type Authorizer struct {
	// allowed maps a gRPC service's full name to the tokens that may call it, in the order access named
	// them.
	allowed map[string][]namedHash
	log     *slog.Logger
	// allowPlaintext accepts tokens over plaintext from any peer (see AllowPlaintextTokens).
	allowPlaintext bool
}

// Option changes how an Authorizer checks calls.
type Option func(*Authorizer)

// AllowPlaintextTokens(true) accepts bearer tokens over plaintext connections from peers that are not
// local. Only for deployments where something else encrypts every hop (a service mesh adding mutual
// TLS); without it such calls are refused with PlaintextMessage.
func AllowPlaintextTokens(allow bool) Option {
	return func(a *Authorizer) { a.allowPlaintext = allow }
}

// namedHash is the hash of a token with the name it was configured under.
type namedHash struct {
	name string
	hash [sha256.Size]byte
}

type callerKey struct{}

// Caller returns the name of the token that authenticated the call whose context is ctx ("admin",
// "gateway"), or "" when no token did (health checks, reflection, or a context the interceptors did not
// see). Handlers use it to narrow what a less trusted caller may see.
func Caller(ctx context.Context) string {
	name, _ := ctx.Value(callerKey{}).(string)
	return name
}

// WithCaller returns ctx carrying name as the call's authenticated caller, as the interceptors do; tests of
// handlers use it to call them as one caller or another.
func WithCaller(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callerKey{}, name)
}

// New returns an Authorizer. tokens maps a name (say "admin") to its token; access maps a gRPC service's
// full name (say "herald.approval.v1.AdminService", as in its ServiceDesc.ServiceName) to the names of
// the tokens that may call it. Services missing from access can be called by nobody except for health and
// reflection. Tokens shorter than MinTokenLength, and names in access that tokens lacks, are refused.
// Refused calls are logged on log at Info level with their method, never with the token (at Warn level
// when the token came over plaintext, a misconfiguration); log may be nil when another interceptor
// already logs failed calls.
func New(tokens map[string]string, access map[string][]string, log *slog.Logger, opts ...Option) (*Authorizer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hashes := make(map[string][sha256.Size]byte, len(tokens))
	for _, name := range slices.Sorted(maps.Keys(tokens)) {
		if len(tokens[name]) < MinTokenLength {
			return nil, fmt.Errorf("grpcauth: the %s token must be at least %d characters", name, MinTokenLength)
		}
		hashes[name] = sha256.Sum256([]byte(tokens[name]))
	}
	a := &Authorizer{allowed: make(map[string][]namedHash, len(access)), log: log}
	for _, opt := range opts {
		opt(a)
	}
	for _, service := range slices.Sorted(maps.Keys(access)) {
		if service == "" || strings.Contains(service, "/") {
			return nil, fmt.Errorf("grpcauth: %q is not a gRPC service name (package.Service)", service)
		}
		for _, name := range access[service] {
			h, ok := hashes[name]
			if !ok {
				return nil, fmt.Errorf("grpcauth: service %s allows the token %q, which is not configured", service, name)
			}
			a.allowed[service] = append(a.allowed[service], namedHash{name: name, hash: h})
		}
	}
	return a, nil
}

// Authorize returns nil when a call to fullMethod ("/package.Service/Method") with the incoming metadata
// of ctx may proceed, and an Unauthenticated status otherwise. A call carrying an authorization value
// over plaintext from a peer that is not local is refused whatever the method and the token, with
// PlaintextMessage: the token has crossed the network in the clear already, and refusing it is what makes
// the client's operator notice and turn on TLS before real tokens keep flowing that way.
func (a *Authorizer) Authorize(ctx context.Context, fullMethod string) error {
	_, err := a.authorize(ctx, fullMethod)
	return err
}

// authorize is Authorize that also returns the name of the token that authenticated the call ("" for the
// open methods).
func (a *Authorizer) authorize(ctx context.Context, fullMethod string) (string, error) {
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) > 0 && !a.allowPlaintext {
		if p, ok := peer.FromContext(ctx); !ok || !(secure(p.AuthInfo) || IsLocal(p.Addr)) {
			a.log.WarnContext(ctx, "grpc call refused: bearer token over plaintext from a peer that is not local", "method", fullMethod, "peer", peerAddr(p))
			return "", status.Error(codes.Unauthenticated, PlaintextMessage)
		}
	}
	for _, p := range openPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return "", nil
		}
	}
	service, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if name, ok := a.carriesOneOf(ctx, a.allowed[service]); ok {
		return name, nil
	}
	a.log.InfoContext(ctx, "grpc call refused: no valid bearer token for this service", "method", fullMethod)
	return "", status.Error(codes.Unauthenticated, Message)
}

// carriesOneOf reports whether one of the call's authorization values is "Bearer <token>" with a token
// whose hash is in want, and names it. When the call carries several allowed tokens, the one named first
// in want wins, so the answer does not depend on the order the client sent them in. Comparing fixed-size
// hashes keeps the comparison constant-time whatever the length of the presented token. The scheme is
// case-insensitive (RFC 9110, section 11.1).
func (a *Authorizer) carriesOneOf(ctx context.Context, want []namedHash) (string, bool) {
	if len(want) == 0 {
		return "", false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	best := len(want)
	for _, v := range md.Get("authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			continue
		}
		got := sha256.Sum256([]byte(tok))
		for i, w := range want {
			if subtle.ConstantTimeCompare(got[:], w.hash[:]) == 1 && i < best {
				best = i
			}
		}
	}
	if best == len(want) {
		return "", false
	}
	return want[best].name, true
}

// Unary returns the interceptor checking unary calls. The handler finds the caller's token name with
// Caller.
func (a *Authorizer) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		name, err := a.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if name != "" {
			ctx = WithCaller(ctx, name)
		}
		return handler(ctx, req)
	}
}

// Stream returns the interceptor checking streaming calls (server reflection is one, and stays open).
func (a *Authorizer) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.Authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
