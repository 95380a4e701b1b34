// Package publisherd assembles the publisher from its configuration: ledger store, X channel, event bus and
// gRPC server. Its own main (cmd/herald-publisher) and the local stack (deploy/local) both run it. The
// publisher is the only part of Herald that holds the X credentials.
package publisherd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/ops"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
	"github.com/heraldhq/herald/services/publisher/internal/events"
	"github.com/heraldhq/herald/services/publisher/internal/grpcapi"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/ratewindow"
	"github.com/heraldhq/herald/services/publisher/internal/store/postgres"
	"github.com/heraldhq/herald/services/publisher/internal/store/sqlite"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
)

// Config is the publisher's configuration, read from HERALD_* environment variables. The X credentials
// may be given as files (HERALD_X_*_FILE), the usual way to mount secrets.
type Config struct {
	svcconfig.Database
	svcconfig.NATS
	svcconfig.Shutdown
	svcconfig.Admin
	// Ops serves /healthz, /readyz and /metrics on HERALD_PUBLISHER_HTTP_ADDR (DefaultOpsAddr when unset).
	svcconfig.Ops `envPrefix:"HERALD_PUBLISHER_"`
	// ServerTLS serves the gRPC API over TLS (HERALD_PUBLISHER_TLS_CERT_FILE, _KEY_FILE), and mutual TLS
	// with HERALD_PUBLISHER_TLS_CLIENT_CA_FILE.
	svcconfig.ServerTLS `envPrefix:"HERALD_PUBLISHER_"`
	svcconfig.PlaintextTokens

	// GRPCAddr is where the gRPC ops API listens.
	GRPCAddr string `env:"HERALD_PUBLISHER_GRPC_ADDR" envDefault:":9091"`
	// DatabaseSchema is the PostgreSQL schema that holds the ledger.
	DatabaseSchema string `env:"HERALD_PUBLISHER_DB_SCHEMA" envDefault:"herald_publisher"`
	// Consumer is the durable JetStream consumer's name. Replicas share it; tests give each run its own.
	Consumer string `env:"HERALD_PUBLISHER_CONSUMER" envDefault:"herald-publisher"`
	// MaxDeliveries bounds how often one approval is delivered before the publisher gives up on it (it
	// then ends failed, or unknown when an attempt was open, for ops to retry): high, since waits for X's
	// rate-limit resets count too.
	MaxDeliveries int `env:"HERALD_PUBLISHER_MAX_DELIVERIES" envDefault:"50"`
	// ApprovalKeysFile holds the approval service's public keys (PEM, several during a rotation): an
	// approval not sealed by one of them is never posted. Required.
	ApprovalKeysFile string `env:"HERALD_APPROVAL_PUBLIC_KEYS_FILE"`
	// SealKeyFile is the publisher's Ed25519 private key (PKCS#8 PEM, mode 0600), which seals its outcome
	// events for the approval service. Required.
	SealKeyFile string `env:"HERALD_PUBLISHER_SEAL_KEY_FILE"`

	// XAPIBase is the X API's base URL.
	XAPIBase            string        `env:"HERALD_X_API_BASE" envDefault:"https://api.x.com"`
	XConsumerKey        string        `env:"HERALD_X_CONSUMER_KEY,unset"`
	XConsumerSecret     string        `env:"HERALD_X_CONSUMER_SECRET,unset"`
	XAccessToken        string        `env:"HERALD_X_ACCESS_TOKEN,unset"`
	XAccessSecret       string        `env:"HERALD_X_ACCESS_TOKEN_SECRET,unset"`
	XConsumerKeyFile    string        `env:"HERALD_X_CONSUMER_KEY_FILE"`
	XConsumerSecretFile string        `env:"HERALD_X_CONSUMER_SECRET_FILE"`
	XAccessTokenFile    string        `env:"HERALD_X_ACCESS_TOKEN_FILE"`
	XAccessSecretFile   string        `env:"HERALD_X_ACCESS_TOKEN_SECRET_FILE"`
	XTimeout            time.Duration `env:"HERALD_X_TIMEOUT" envDefault:"30s"`
	// XChannel selects the X API: v2 (POST /2/tweets, our own client) or v1.1 (statuses/update through
	// go-twitter, for enterprise accounts and v1.1-compatible services).
	XChannel string `env:"HERALD_X_CHANNEL" envDefault:"v2"`

	// Listener, if set, is used instead of listening on GRPCAddr.
	Listener net.Listener `env:"-"`
	// CrashHook, if set, is called at the ledger's crash points (ledger.WithHook). Only the crash tests
	// set it.
	CrashHook func(point string) `env:"-"`
}

// DefaultOpsAddr is where /healthz, /readyz and /metrics listen when HERALD_PUBLISHER_HTTP_ADDR is unset.
const DefaultOpsAddr = ":9191"

// Validate reports the required settings that are missing; the X credentials are checked when New
// resolves them, since they may come from files.
func (c Config) Validate() error {
	var errs []error
	if err := c.Admin.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ApprovalKeysFile == "" {
		errs = append(errs, errors.New("HERALD_APPROVAL_PUBLIC_KEYS_FILE is required: only approvals sealed by the approval service are posted"))
	}
	if c.SealKeyFile == "" {
		errs = append(errs, errors.New("HERALD_PUBLISHER_SEAL_KEY_FILE is required: outcomes are sealed with it"))
	}
	if c.XChannel != "" && c.XChannel != "v2" && c.XChannel != "v1.1" {
		errs = append(errs, fmt.Errorf("HERALD_X_CHANNEL is %q; want v2 or v1.1", c.XChannel))
	}
	return errors.Join(errs...)
}

// credentials resolves each X secret from its variable or its file.
func (c Config) credentials() (xapi.Credentials, error) {
	var errs []error
	get := func(name, val, file string) string {
		if val != "" || file == "" {
			if val == "" {
				errs = append(errs, fmt.Errorf("%s (or %s_FILE) is required", name, name))
			}
			return val
		}
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
		}
		return strings.TrimSpace(string(b))
	}
	creds := xapi.Credentials{
		ConsumerKey:       get("HERALD_X_CONSUMER_KEY", c.XConsumerKey, c.XConsumerKeyFile),
		ConsumerSecret:    get("HERALD_X_CONSUMER_SECRET", c.XConsumerSecret, c.XConsumerSecretFile),
		AccessToken:       get("HERALD_X_ACCESS_TOKEN", c.XAccessToken, c.XAccessTokenFile),
		AccessTokenSecret: get("HERALD_X_ACCESS_TOKEN_SECRET", c.XAccessSecret, c.XAccessSecretFile),
	}
	return creds, errors.Join(errs...)
}

// xChannel is what the publisher needs of an X client, v2 or v1.1.
type xChannel interface {
	ledger.Channel
	Me(ctx context.Context) (xapi.User, error)
	RateState() xapi.RateState
}

type closableStore interface {
	ledger.Store
	io.Closer
}

// Service is a running publisher.
type Service struct {
	cfg    Config
	log    *slog.Logger
	store  closableStore
	nc     *nats.Conn
	js     jetstream.JetStream
	ledger *ledger.Service
	events eventbus.Handler
	giveUp func(ctx context.Context, msg jetstream.Msg, cause error) error
	grpc   *grpc.Server
	health *health.Server
	lis    net.Listener
	ops    *http.Server
	opsLis net.Listener
	// drain turns /readyz false when a stop begins.
	drain ops.Drain
}

// New builds the publisher and checks the X credentials against the API. Nothing runs until Run.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Service, err error) {
	s := &Service{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds, err := cfg.credentials()
	if err != nil {
		return nil, err
	}
	signer, err := seal.LoadSigner(cfg.SealKeyFile)
	if err != nil {
		return nil, fmt.Errorf("HERALD_PUBLISHER_SEAL_KEY_FILE: %w", err)
	}
	approvalKeys, err := seal.LoadKeyring(cfg.ApprovalKeysFile)
	if err != nil {
		return nil, fmt.Errorf("HERALD_APPROVAL_PUBLIC_KEYS_FILE: %w", err)
	}
	log.Info("event seals", "signing_key", signer.KeyID(), "trusted_approval_keys", approvalKeys.KeyIDs())
	if s.nc, s.js, err = cfg.NATS.Connect(ctx, eventbus.ServicePublisher, "herald-publisher", eventbus.WithLogger(log)); err != nil {
		return nil, err
	}
	// Every replica posting for the account spends one rate-limit window, kept in JetStream.
	rateKV, err := s.js.KeyValue(ctx, eventbus.RateBucket(cfg.Stream))
	if err != nil {
		return nil, fmt.Errorf("rate-limit bucket %s (the approval service creates it): %w", eventbus.RateBucket(cfg.Stream), err)
	}
	window, err := ratewindow.New(rateKV, ratewindow.AccountKey("x", creds.AccessToken))
	if err != nil {
		return nil, err
	}
	var client xChannel
	if cfg.XChannel == "v1.1" {
		client, err = xapi.NewV1(cfg.XAPIBase, creds, cfg.XTimeout, xapi.WithSharedWindow(window))
	} else {
		client, err = xapi.New(cfg.XAPIBase, creds, cfg.XTimeout, xapi.WithSharedWindow(window))
	}
	if err != nil {
		return nil, err
	}
	me, meErr := client.Me(ctx)
	if meErr != nil {
		// Not fatal: X may be down now and fine later; the ledger copes. The log and ListChannels say why
		// posts will fail.
		log.Warn("could not verify the X credentials", "err", meErr)
	} else {
		log.Info("posting to X as", "username", me.Username, "api", cfg.XAPIBase, "channel", cmp.Or(cfg.XChannel, "v2"))
	}
	channels := func() []grpcapi.ChannelInfo {
		info := grpcapi.ChannelInfo{Name: client.Name(), Username: me.Username, AccountID: me.ID}
		if meErr != nil {
			info.VerifyError = meErr.Error()
		}
		rs := client.RateState()
		info.Rate = grpcapi.RateLimit{Limit: rs.Limit, Remaining: rs.Remaining, Reset: rs.Reset, InFlight: rs.InFlight}
		return []grpcapi.ChannelInfo{info}
	}
	if s.store, err = svcconfig.OpenStore(ctx, cfg.Database,
		// A failed Open's nil *Store must not become a non-nil closableStore: close() would call its
		// Close and panic, hiding the error (seen when two replicas first started on one schema).
		func(ctx context.Context, url string) (closableStore, error) {
			st, err := postgres.Open(ctx, url, cfg.DatabaseSchema)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
		func(ctx context.Context, dir string) (closableStore, error) {
			st, err := sqlite.Open(ctx, filepath.Join(dir, "publisher.db"))
			if err != nil {
				return nil, err
			}
			return st, nil
		}); err != nil {
		return nil, err
	}
	pub, err := eventbus.NewPublisher(s.js, 5*time.Second, eventbus.WithStream(cfg.Stream))
	if err != nil {
		return nil, err
	}
	reg := ops.NewRegistry()
	reg.MustRegister(rateCollector{state: client.RateState}, eventbus.NewLagCollector(s.js, cfg.Stream, cfg.Consumer, events.Subjects(), log))
	channel, err := newCountingChannel(client, reg)
	if err != nil {
		return nil, err
	}
	announcer, err := events.NewAnnouncer(pub, signer)
	if err != nil {
		return nil, err
	}
	// The approval service created the media bucket with the stream, which Connect waited for.
	pictures, err := media.Open(ctx, s.js, eventbus.MediaBucket(cfg.Stream))
	if err != nil {
		return nil, err
	}
	ledgerOpts := []ledger.Option{ledger.WithMedia(mediaSource{pictures})}
	if cfg.CrashHook != nil {
		ledgerOpts = append(ledgerOpts, ledger.WithHook(cfg.CrashHook))
	}
	if s.ledger, err = ledger.NewService(s.store, channel, announcer, log, ledgerOpts...); err != nil {
		return nil, err
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_publisher_refused_approvals_total",
		Help: "Approvals refused and never posted because their seal is missing, from an unknown key, does not verify or covers other text, by reason.",
	}, []string{"reason"})
	reg.MustRegister(refused)
	if s.events, err = events.Handler(s.ledger, approvalKeys, func(reason string) { refused.WithLabelValues(reason).Inc() }); err != nil {
		return nil, err
	}
	if s.giveUp, err = events.GiveUp(s.ledger, approvalKeys); err != nil {
		return nil, err
	}
	grpcMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	reg.MustRegister(grpcMetrics)
	transport, err := cfg.ServerTLS.GRPCTransport(cfg.PlaintextTokens)
	if err != nil {
		return nil, fmt.Errorf("gRPC TLS (HERALD_PUBLISHER_TLS_*): %w", err)
	}
	cfg.PlaintextTokens.Warn(log)
	log.Info("gRPC transport", "tls", cfg.TLSEnabled(), "client_certificates_required", cfg.TLSClientCAFile != "")
	if s.grpc, s.health, err = grpcapi.NewServer(grpcapi.Deps{Store: s.store, Ops: s.ledger, Channels: channels}, cfg.AdminToken, transport, log, grpcMetrics.UnaryServerInterceptor()); err != nil {
		return nil, err
	}
	grpcMetrics.InitializeMetrics(s.grpc)
	// The ledger has no Ping: listing one row shows that it answers.
	ping := func(ctx context.Context) error { _, err := s.store.List(ctx, 1); return err }
	s.ops = &http.Server{Handler: ops.Handler(reg, s.drain.Ready(ops.Ready(s.nc, ping))), ReadHeaderTimeout: 10 * time.Second}
	if s.lis, err = ops.Listen(cfg.Listener, cfg.GRPCAddr); err != nil {
		return nil, err
	}
	if s.opsLis, err = cfg.Ops.Listen(DefaultOpsAddr); err != nil {
		return nil, err
	}
	return s, nil
}

// OpsAddr is the address of /healthz, /readyz and /metrics.
func (s *Service) OpsAddr() net.Addr { return s.opsLis.Addr() }

// Addr is the address the gRPC API listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx ends, then drains like the approval service.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		servers := ops.GRPCService{GRPC: s.grpc, Health: s.health, GRPCListener: s.lis, HTTP: s.ops, HTTPListener: s.opsLis,
			Drain: &s.drain, Delay: s.cfg.ShutdownDelay}
		return servers.Serve(gctx, 10*time.Second)
	})
	g.Go(func() error {
		cfg := eventbus.ConsumerConfig{Durable: s.cfg.Consumer, Subjects: events.Subjects(), Stream: s.cfg.Stream, HandlerTimeout: s.cfg.XTimeout + 15*time.Second,
			MaxDeliveries: s.cfg.MaxDeliveries, GiveUp: s.giveUp}
		return eventbus.Consume(gctx, s.js, cfg, s.events, s.log)
	})
	s.log.Info("publisher listening", "grpc", s.lis.Addr().String(), "ops_http", s.opsLis.Addr().String())
	return g.Wait()
}

func (s *Service) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

// mediaSource reads approved pictures from the media bucket for the ledger, whose ErrMediaUnusable stands
// for a picture that is gone or does not match the sealed hash.
type mediaSource struct{ store *media.Store }

func (m mediaSource) Get(ctx context.Context, pic ledger.Media) ([]byte, error) {
	data, err := m.store.Get(ctx, media.Ref{Name: pic.Name, SHA256: pic.SHA256, ContentType: pic.ContentType, Size: pic.Size})
	if errors.Is(err, media.ErrTampered) || errors.Is(err, media.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", ledger.ErrMediaUnusable, err)
	}
	return data, err
}
