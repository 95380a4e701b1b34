// Package gatewayd assembles the gateway from its configuration: JetStream intake, the approval service
// client, key authentication and the HTTP handler. Its own main (cmd/herald-gateway) and the local stack
// (deploy/local) both run it. The gateway keeps no state of its own.
package gatewayd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/gateway/internal/httpapi"
	"github.com/heraldhq/herald/gateway/internal/idempotency"
	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/ops"
	"github.com/heraldhq/herald/services/heraldshared/requestid"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
)

// Config is the gateway's configuration, read from HERALD_* environment variables. NATS comes from
// svcconfig, shared with the other services.
type Config struct {
	svcconfig.NATS
	svcconfig.Shutdown
	// ServerTLS serves HTTPS (HERALD_GATEWAY_TLS_CERT_FILE, _KEY_FILE), and requires client certificates
	// with HERALD_GATEWAY_TLS_CLIENT_CA_FILE (for a load balancer that presents one).
	svcconfig.ServerTLS `envPrefix:"HERALD_GATEWAY_"`
	// ClientTLS is TLS to the approval service (HERALD_APPROVAL_CA_FILE, and the gateway's client
	// certificate for mutual TLS).
	svcconfig.ClientTLS
	// PlaintextTokens lets the gateway send its token without TLS to an approval service that is not on
	// loopback.
	svcconfig.PlaintextTokens

	HTTPAddr string `env:"HERALD_GATEWAY_ADDR" envDefault:":8080"`
	// ApprovalAddr is the approval service's gRPC address.
	ApprovalAddr string `env:"HERALD_APPROVAL_ADDR" envDefault:"127.0.0.1:9090"`
	// GatewayToken is the bearer token the approval service expects from the gateway. Required (see
	// Validate).
	GatewayToken string `env:"HERALD_GATEWAY_TOKEN,unset"`
	// CSRFKey signs approval forms. Set the same value on every replica; if empty, a random key is made
	// at start and forms opened before a restart must be reloaded.
	CSRFKey string `env:"HERALD_CSRF_KEY,unset"`
	// MaxBodyBytes bounds a POST /v1/posts body. The default, 28 MiB, holds four 5 MB pictures in base64
	// (4 x 6.67 MiB) or one 15 MB GIF (20 MiB) with the JSON around them.
	MaxBodyBytes int64         `env:"HERALD_MAX_BODY_BYTES" envDefault:"29360128"`
	KeyCacheTTL  time.Duration `env:"HERALD_KEY_CACHE_TTL" envDefault:"30s"`
	// RetryAfter is the polling hint while a post is being published; RetryAfterPending while a person
	// has to decide.
	RetryAfter        time.Duration `env:"HERALD_RETRY_AFTER" envDefault:"5s"`
	RetryAfterPending time.Duration `env:"HERALD_RETRY_AFTER_PENDING" envDefault:"60s"`
	// Replicas is how many gateways run behind the load balancer: each enforces 1/Replicas of an API
	// key's rate limit, which it keeps in memory.
	Replicas int `env:"HERALD_GATEWAY_REPLICAS" envDefault:"1"`
	// PublicURL is the gateway as departments' platforms reach it, the same variable the approval service
	// reads for its links: the connector definition's host and basePath, and the base of the absolute
	// Location header the asynchronous pattern needs.
	PublicURL string `env:"HERALD_PUBLIC_URL" envDefault:"http://localhost:8080"`
	// TrustedProxies are the proxies (CIDRs or addresses) whose X-Forwarded-For names the client, for the
	// origin recorded with an approver's decision and the throttling of bad API keys. None by default: the
	// peer's address is the client's, and X-Forwarded-For is ignored.
	TrustedProxies []string `env:"HERALD_TRUSTED_PROXIES" envSeparator:","`
	// XAccount is the X account the approval page says a post will go out as ("@contoso"). Display only:
	// the gateway holds no X credentials and has no publisher client, so this is what ops say the
	// publisher posts as (its ListChannels shows the account it verified); empty shows no account.
	XAccount string `env:"HERALD_X_ACCOUNT"`

	// Listener, if set, is used instead of listening on HTTPAddr.
	Listener net.Listener `env:"-"`
}

// Validate reports the required settings that are missing.
func (c Config) Validate() error {
	if c.GatewayToken == "" {
		return errors.New("HERALD_GATEWAY_TOKEN is required")
	}
	if c.Replicas < 0 {
		return errors.New("HERALD_GATEWAY_REPLICAS must be at least 1 (the number of gateways sharing the load)")
	}
	if _, err := httpapi.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("HERALD_TRUSTED_PROXIES: %w", err)
	}
	// The token would be refused at every call (see bearer); saying so at start is kinder than 503s.
	if !c.ClientTLS.TLSEnabled() && !c.AllowPlaintextTokens && !loopbackTarget(c.ApprovalAddr) {
		return fmt.Errorf("HERALD_APPROVAL_ADDR %q is not a loopback address, and the gateway's token must not travel there in plaintext: "+
			"set HERALD_APPROVAL_CA_FILE for TLS (or HERALD_ALLOW_PLAINTEXT_TOKENS=true when a service mesh encrypts the connection)", c.ApprovalAddr)
	}
	return nil
}

// loopbackTarget reports whether a gRPC target names this machine: a Unix socket, localhost or a
// loopback IP address, with or without the dns:/// or passthrough:/// scheme. Other names might resolve
// to loopback, but only bearer's check on the dialled address can know; this one is for a clear error at
// start.
func loopbackTarget(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	for _, scheme := range []string{"dns:///", "passthrough:///"} {
		target = strings.TrimPrefix(target, scheme)
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// bearer attaches the gateway's token to every call to the approval service, but only over TLS or to a
// loopback address, unless allowPlaintext: the token lets its holder authenticate any department's API
// key and decide approvals.
type bearer struct {
	token string
	// tls is set when the connection uses TLS, which grpc then enforces too (RequireTransportSecurity).
	tls            bool
	allowPlaintext bool
}

// GetRequestMetadata checks the connection the call is about to use before handing over the token: a
// plaintext connection made by grpcauth.PlaintextCredentials knows the address it reached.
func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	if err := grpcauth.CheckTransport(ri.AuthInfo, b.allowPlaintext); err != nil {
		return nil, fmt.Errorf("%w: set HERALD_APPROVAL_CA_FILE for TLS to the approval service", err)
	}
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is true over TLS, so that grpc itself never lets the token onto a connection
// without it. Over plaintext it must be false (grpc would refuse loopback too); GetRequestMetadata
// decides then.
func (b bearer) RequireTransportSecurity() bool { return b.tls }

// forwardRequestID passes the HTTP request's id to the approval service, which logs it.
func forwardRequestID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if id := requestid.FromContext(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, requestid.MetadataKey, id)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// Service is a running gateway.
type Service struct {
	log  *slog.Logger
	nc   *nats.Conn
	conn *grpc.ClientConn
	http *http.Server
	lis  net.Listener
	// drain turns /readyz false when a stop begins; delay is how long the gateway then keeps serving.
	drain ops.Drain
	delay time.Duration
}

// New builds the gateway. Nothing is served until Run.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Service, err error) {
	s := &Service{log: log, delay: cfg.ShutdownDelay}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nc, js, err := cfg.NATS.Connect(ctx, eventbus.ServiceGateway, "herald-gateway", eventbus.WithLogger(log))
	if err != nil {
		return nil, err
	}
	s.nc = nc
	pub, err := eventbus.NewPublisher(js, 5*time.Second, eventbus.WithStream(cfg.Stream))
	if err != nil {
		return nil, err
	}
	// The approval service creates the media bucket before the stream, too.
	pictures, err := media.Open(ctx, js, eventbus.MediaBucket(cfg.Stream))
	if err != nil {
		return nil, err
	}
	in, err := intake.New(pub, pictures)
	if err != nil {
		return nil, err
	}
	// The approval service creates the bucket before the stream, which Connect waited for.
	kv, err := js.KeyValue(ctx, eventbus.IdempotencyBucket(cfg.Stream))
	if err != nil {
		return nil, fmt.Errorf("idempotency bucket %s: %w", eventbus.IdempotencyBucket(cfg.Stream), err)
	}
	idem, err := idempotency.New(kv, nil, 0)
	if err != nil {
		return nil, err
	}
	cfg.PlaintextTokens.Warn(log)
	creds, err := cfg.ClientTLS.TransportCredentials()
	if err != nil {
		return nil, err
	}
	tok := bearer{token: cfg.GatewayToken, tls: cfg.ClientTLS.TLSEnabled(), allowPlaintext: cfg.AllowPlaintextTokens}
	if s.conn, err = grpc.NewClient(cfg.ApprovalAddr, grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(tok), grpc.WithUnaryInterceptor(forwardRequestID)); err != nil {
		return nil, fmt.Errorf("approval client: %w", err)
	}
	approvals := approvalv1.NewApprovalServiceClient(s.conn)
	keys, err := keyauth.New(approvals, cfg.KeyCacheTTL)
	if err != nil {
		return nil, err
	}
	// Revocations evict keys from the cache at once; the subscription ends when nc closes.
	if _, err := keys.Listen(nc, log); err != nil {
		return nil, err
	}
	proxies, err := httpapi.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("HERALD_TRUSTED_PROXIES: %w", err)
	}
	csrf := []byte(cfg.CSRFKey)
	if len(csrf) == 0 {
		csrf = make([]byte, 32)
		_, _ = rand.Read(csrf)
		log.Warn("HERALD_CSRF_KEY is not set; using a random key, so approval forms opened before a restart must be reloaded")
	}
	reg := ops.NewRegistry()
	handler, err := httpapi.New(
		httpapi.Config{MaxBodyBytes: cfg.MaxBodyBytes, RetryAfter: cfg.RetryAfter, RetryAfterPending: cfg.RetryAfterPending,
			Replicas: cfg.Replicas, CSRFKey: csrf, PublicURL: cfg.PublicURL, TrustedProxies: proxies, XAccount: cfg.XAccount},
		httpapi.Deps{Intake: in, Keys: keys, Idempotency: idem, Approvals: approvals, Media: pictures, Log: log, Registry: reg, Ready: s.drain.Ready(ops.Ready(nc, nil))},
	)
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{Handler: s.drain.CloseConnections(handler), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	if s.http.TLSConfig, err = cfg.ServerTLS.TLSConfig(); err != nil {
		return nil, fmt.Errorf("HTTPS (HERALD_GATEWAY_TLS_*): %w", err)
	}
	s.lis = cfg.Listener
	if s.lis == nil {
		if s.lis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
		}
	}
	return s, nil
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx ends, then stops accepting requests and finishes the ones in flight.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	errc := make(chan error, 1)
	tls := s.http.TLSConfig != nil
	go func() {
		if tls {
			// The certificate is in TLSConfig already; ServeTLS adds HTTP/2 to it.
			errc <- s.http.ServeTLS(s.lis, "", "")
			return
		}
		errc <- s.http.Serve(s.lis)
	}()
	s.log.Info("gateway listening", "http", s.lis.Addr().String(), "tls", tls,
		"client_certificates_required", tls && s.http.TLSConfig.ClientCAs != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	// /readyz answers 503 from now on while requests are still served, until load balancers noticed.
	s.log.Info("stopping: not ready; serving until the shutdown delay has passed", "delay", s.delay)
	// From now on every response says "Connection: close" (drain.CloseConnections), so clients reconnect
	// through a balancer that no longer sends them here while this one still answers.
	s.drain.Wait(s.delay)
	// Then no new connections, and up to 15 seconds for the requests in flight to finish.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

func (s *Service) close() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
}
