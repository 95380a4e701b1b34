// Package approvald assembles the approval service from its configuration: store, event bus, mailer,
// domain and gRPC server. Its own main (cmd/herald-approval) and the local stack (deploy/local) both run it.
package approvald

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/events"
	"github.com/heraldhq/herald/services/approval/internal/grpcapi"
	"github.com/heraldhq/herald/services/approval/internal/notify"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite"
	"github.com/heraldhq/herald/services/approval/internal/webhook"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/ops"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
)

// Config is the approval service's configuration, read from HERALD_* environment variables. The pieces
// every service shares (database, NATS, ops listener, admin token) come from svcconfig.
type Config struct {
	svcconfig.Database
	svcconfig.NATS
	svcconfig.Shutdown
	svcconfig.Admin
	// Ops serves /healthz, /readyz and /metrics on HERALD_APPROVAL_HTTP_ADDR (DefaultOpsAddr when unset).
	svcconfig.Ops `envPrefix:"HERALD_APPROVAL_"`
	// ServerTLS serves the gRPC API over TLS (HERALD_APPROVAL_TLS_CERT_FILE, _KEY_FILE), and mutual TLS
	// with HERALD_APPROVAL_TLS_CLIENT_CA_FILE.
	svcconfig.ServerTLS `envPrefix:"HERALD_APPROVAL_"`
	svcconfig.PlaintextTokens

	// GRPCAddr is where the gRPC API listens.
	GRPCAddr string `env:"HERALD_APPROVAL_GRPC_ADDR" envDefault:":9090"`
	// DatabaseSchema is the PostgreSQL schema that holds this service's tables.
	DatabaseSchema string `env:"HERALD_APPROVAL_DB_SCHEMA" envDefault:"herald_approval"`
	// SMTPURL is the mail server for approval emails (see notify.NewSMTP for the schemes).
	SMTPURL string `env:"HERALD_SMTP_URL" envDefault:"smtp+plain://127.0.0.1:1025"`
	// SMTPConnections is how many connections to the mail server are kept open and used at once.
	SMTPConnections int `env:"HERALD_SMTP_CONNECTIONS" envDefault:"4"`
	// OutboxConcurrency is how many outbox items (emails, announcements, cards) are delivered at once.
	OutboxConcurrency int `env:"HERALD_OUTBOX_CONCURRENCY" envDefault:"8"`
	// MailFrom is the sender of approval emails.
	MailFrom string `env:"HERALD_MAIL_FROM" envDefault:"Herald <herald@localhost>"`
	// PublicURL is the gateway's public base URL, for the links in approval emails.
	PublicURL string `env:"HERALD_PUBLIC_URL" envDefault:"http://localhost:8080"`
	// GatewayToken authorises the gateway on ApprovalService. Required (see Validate).
	GatewayToken string `env:"HERALD_GATEWAY_TOKEN,unset"`
	// ApprovalTTL is how long a post waits for a decision (the default of every department policy): then
	// it expires, and its links with it.
	ApprovalTTL time.Duration `env:"HERALD_APPROVAL_TTL" envDefault:"72h"`
	// Consumer is the durable JetStream consumer's name. Replicas share it; tests give each run its own.
	Consumer string `env:"HERALD_APPROVAL_CONSUMER" envDefault:"herald-approval"`
	// MaxDeliveries is how often a consumed event is delivered before it is given up: a post request still
	// failing then ends as a failed post the department can read (see eventbus.ConsumerConfig).
	MaxDeliveries int `env:"HERALD_APPROVAL_MAX_DELIVERIES" envDefault:"10"`
	// PostsPerMinute and MaxUndecided are the limits of departments that have none of their own
	// (AdminService.SetDepartmentLimits): how many posts one API key may request per minute, and how many
	// of a department's posts may wait for a decision at once. The gateway enforces both with 429.
	PostsPerMinute int `env:"HERALD_POSTS_PER_MINUTE" envDefault:"10"`
	MaxUndecided   int `env:"HERALD_MAX_UNDECIDED" envDefault:"20"`
	// SealKeyFile is the approval service's Ed25519 private key (PKCS#8 PEM, mode 0600), which seals every
	// PostApproved; the publisher posts nothing else. Required.
	SealKeyFile string `env:"HERALD_APPROVAL_SEAL_KEY_FILE"`
	// PublisherKeysFile holds the publisher's public keys (PEM, several during a rotation); outcome events
	// not sealed by one of them are refused. Required.
	PublisherKeysFile string `env:"HERALD_PUBLISHER_PUBLIC_KEYS_FILE"`

	// WebhookAllowHTTP lets webhook subscriptions use plain http notification URLs (https only
	// otherwise): for a receiver inside a network the operator trusts, never across the internet.
	WebhookAllowHTTP bool `env:"HERALD_WEBHOOK_ALLOW_HTTP" envDefault:"false"`
	// WebhookAllowLoopback lets webhook deliveries reach loopback addresses (the local stack's demo).
	// Private, link-local (the cloud metadata address) and the other non-public ranges stay refused.
	WebhookAllowLoopback bool `env:"HERALD_WEBHOOK_ALLOW_LOOPBACK" envDefault:"false"`
	// WebhookMaxAttempts is how often a webhook delivery is tried before it is given up and its
	// subscription marked failing.
	WebhookMaxAttempts int `env:"HERALD_WEBHOOK_MAX_ATTEMPTS" envDefault:"10"`

	// Listener, if set, is used instead of listening on GRPCAddr.
	// MediaRetention is how long the pictures of a finished post (published, failed, rejected, expired,
	// cancelled) are kept in the media bucket; see approval.Service.SweepMedia.
	MediaRetention time.Duration `env:"HERALD_MEDIA_RETENTION" envDefault:"720h"`

	Listener net.Listener `env:"-"`
}

// DefaultOpsAddr is where /healthz, /readyz and /metrics listen when HERALD_APPROVAL_HTTP_ADDR is unset.
const DefaultOpsAddr = ":9190"

// Validate reports the required settings that are missing. The tokens have no default on purpose: the
// local stack generates them, a deployment must choose them.
func (c Config) Validate() error {
	var errs []error
	if err := c.Admin.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MediaRetention < time.Hour {
		errs = append(errs, errors.New("HERALD_MEDIA_RETENTION must be at least 1h"))
	}
	if c.GatewayToken == "" {
		errs = append(errs, errors.New("HERALD_GATEWAY_TOKEN is required"))
	}
	if c.SealKeyFile == "" {
		errs = append(errs, errors.New("HERALD_APPROVAL_SEAL_KEY_FILE is required: approvals are sealed with it"))
	}
	if c.PublisherKeysFile == "" {
		errs = append(errs, errors.New("HERALD_PUBLISHER_PUBLIC_KEYS_FILE is required: the publisher's outcomes are checked against it"))
	}
	return errors.Join(errs...)
}

type closableStore interface {
	approval.Store
	io.Closer
	Ping(ctx context.Context) error
}

// Service is a running approval service.
type Service struct {
	cfg    Config
	log    *slog.Logger
	store  closableStore
	nc     *nats.Conn
	js     jetstream.JetStream
	domain *approval.Service
	events eventbus.Handler
	// requests stores post requests in batches.
	requests eventbus.BatchHandler
	mailer   *notify.SMTP
	giveUp   func(ctx context.Context, msg jetstream.Msg, cause error) error
	grpc     *grpc.Server
	health   *health.Server
	lis      net.Listener
	ops      *http.Server
	opsLis   net.Listener
	media    mediaBucket
	// drain turns /readyz false when a stop begins.
	drain ops.Drain
}

// mediaBucket adapts the media store to the domain's MediaBucket.
type mediaBucket struct{ store *media.Store }

func (b mediaBucket) List(ctx context.Context) ([]approval.StoredMedia, error) {
	objs, err := b.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]approval.StoredMedia, len(objs))
	for i, o := range objs {
		out[i] = approval.StoredMedia{Name: o.Name, PostID: o.PostID, StoredAt: time.UnixMicro(o.ModTime)}
	}
	return out, nil
}

func (b mediaBucket) Delete(ctx context.Context, name string) error { return b.store.Delete(ctx, name) }

// sweepMedia runs the media retention sweep at start and then hourly until ctx ends. A failed sweep is
// logged and tried again at the next hour: nothing is lost by keeping pictures a little longer.
func (s *Service) sweepMedia(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.domain.SweepMedia(ctx, s.media, s.cfg.MediaRetention)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "media retention sweep failed", "err", err, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// New builds the service and everything it depends on. Nothing runs until Run.
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
			st, err := sqlite.Open(ctx, filepath.Join(dir, "approval.db"))
			if err != nil {
				return nil, err
			}
			return st, nil
		}); err != nil {
		return nil, err
	}
	if s.nc, s.js, err = cfg.NATS.Connect(ctx, eventbus.ServiceApproval, "herald-approval", eventbus.WithLogger(log)); err != nil {
		return nil, err
	}
	pub, err := eventbus.NewPublisher(s.js, 5*time.Second, eventbus.WithStream(cfg.Stream))
	if err != nil {
		return nil, err
	}
	// Connect created the media bucket with the stream.
	pictures, err := media.Open(ctx, s.js, eventbus.MediaBucket(cfg.Stream))
	if err != nil {
		return nil, err
	}
	s.media = mediaBucket{pictures}
	mailer, err := notify.NewSMTPPool(cfg.SMTPURL, cfg.MailFrom, cfg.SMTPConnections)
	if err != nil {
		return nil, err
	}
	mailer.WithMedia(pictures)
	s.mailer = mailer
	signer, err := seal.LoadSigner(cfg.SealKeyFile)
	if err != nil {
		return nil, fmt.Errorf("HERALD_APPROVAL_SEAL_KEY_FILE: %w", err)
	}
	publisherKeys, err := seal.LoadKeyring(cfg.PublisherKeysFile)
	if err != nil {
		return nil, fmt.Errorf("HERALD_PUBLISHER_PUBLIC_KEYS_FILE: %w", err)
	}
	log.Info("event seals", "signing_key", signer.KeyID(), "trusted_publisher_keys", publisherKeys.KeyIDs())
	announcer, err := events.NewAnnouncer(pub, signer)
	if err != nil {
		return nil, err
	}
	revocations, err := events.NewRevocations(s.nc)
	if err != nil {
		return nil, err
	}
	reg := ops.NewRegistry()
	webhookResults := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_webhook_deliveries_total",
		Help: "Webhook delivery attempts by result: delivered (2xx), retry (failed, tried again later), gave_up (failed its last attempt; the subscription is marked failing).",
	}, []string{"result"})
	for _, r := range []approval.WebhookResult{approval.WebhookDelivered, approval.WebhookRetry, approval.WebhookGaveUp} {
		webhookResults.WithLabelValues(string(r))
	}
	reg.MustRegister(webhookResults)
	webhooks := &approval.WebhookConfig{
		Sender:      webhook.NewSender(webhook.Guard{AllowHTTP: cfg.WebhookAllowHTTP, AllowLoopback: cfg.WebhookAllowLoopback}),
		Payload:     webhook.Payload,
		MaxAttempts: cfg.WebhookMaxAttempts,
		Observe:     func(r approval.WebhookResult) { webhookResults.WithLabelValues(string(r)).Inc() },
	}
	if s.domain, err = approval.NewService(s.store, mailer, announcer, approval.Config{
		Webhooks:  webhooks,
		PublicURL: cfg.PublicURL, TokenTTL: cfg.ApprovalTTL, KeyRevocations: revocations, Teams: notify.NewTeamsWebhook(nil),
		OutboxConcurrency: cfg.OutboxConcurrency,
		DefaultLimits:     approval.Limits{PostsPerMinute: cfg.PostsPerMinute, MaxUndecided: cfg.MaxUndecided},
	}, log); err != nil {
		return nil, err
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_approval_refused_events_total",
		Help: "Events refused because their seal is missing, from an unknown key or does not verify, by subject and reason.",
	}, []string{"subject", "reason"})
	reg.MustRegister(refused)
	// Read at each scrape: the count lives in the database, shared by every replica, so each replica
	// reports the same number (alert on max, not sum).
	domain := s.domain
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_approval_posts_without_approver",
		Help: "Pending posts that wait for an approver to be added: their department's policy has nobody to ask.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := domain.CountWaiting(ctx)
		if err != nil {
			log.Warn("count posts waiting for an approver", "err", err)
			return math.NaN()
		}
		return float64(n)
	}))
	reg.MustRegister(&stateCollector{store: s.store, now: time.Now, log: log}, eventbus.NewLagCollector(s.js, cfg.Stream, cfg.Consumer, events.Subjects(), log))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_webhook_deliveries_pending",
		Help: "Webhook deliveries waiting to go out, retries included (every replica reports the same number).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := domain.CountWebhookDeliveries(ctx)
		if err != nil {
			log.Warn("count webhook deliveries", "err", err)
			return math.NaN()
		}
		return float64(n)
	}))
	if s.events, err = events.Handler(s.domain, publisherKeys, func(subject, reason string) { refused.WithLabelValues(subject, reason).Inc() }); err != nil {
		return nil, err
	}
	if s.requests, err = events.RequestBatchHandler(s.domain); err != nil {
		return nil, err
	}
	givenUp := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_approval_events_given_up_total",
		Help: "Consumed events given up without being applied (refused for good, or still failing on their last allowed delivery), by subject.",
	}, []string{"subject"})
	reg.MustRegister(givenUp)
	if s.giveUp, err = events.GiveUp(s.domain, func(subject string) { givenUp.WithLabelValues(subject).Inc() }); err != nil {
		return nil, err
	}
	grpcMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	reg.MustRegister(grpcMetrics)
	transport, err := cfg.ServerTLS.GRPCTransport(cfg.PlaintextTokens)
	if err != nil {
		return nil, fmt.Errorf("gRPC TLS (HERALD_APPROVAL_TLS_*): %w", err)
	}
	cfg.PlaintextTokens.Warn(log)
	log.Info("gRPC transport", "tls", cfg.TLSEnabled(), "client_certificates_required", cfg.TLSClientCAFile != "")
	if s.grpc, s.health, err = grpcapi.NewServer(s.domain, grpcapi.Tokens{Admin: cfg.AdminToken, Gateway: cfg.GatewayToken}, transport, log, grpcMetrics.UnaryServerInterceptor()); err != nil {
		return nil, err
	}
	grpcMetrics.InitializeMetrics(s.grpc)
	s.ops = &http.Server{Handler: ops.Handler(reg, s.drain.Ready(ops.Ready(s.nc, s.store.Ping))), ReadHeaderTimeout: 10 * time.Second}
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

// Run serves until ctx ends, then drains: health reports NOT_SERVING, the gRPC server finishes calls in
// flight, the consumer finishes messages in hand, and the outbox loop stops.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		servers := ops.GRPCService{GRPC: s.grpc, Health: s.health, GRPCListener: s.lis, HTTP: s.ops, HTTPListener: s.opsLis,
			Drain: &s.drain, Delay: s.cfg.ShutdownDelay}
		return servers.Serve(gctx, 10*time.Second)
	})
	// Post requests come in bursts and are stored in batches (one transaction each); the publisher's
	// outcomes trickle in and are applied one at a time.
	var requests, outcomes []string
	for _, subject := range events.Subjects() {
		if subject == eventbus.SubjectRequested {
			requests = append(requests, subject)
		} else {
			outcomes = append(outcomes, subject)
		}
	}
	g.Go(func() error {
		cfg := eventbus.ConsumerConfig{Durable: s.cfg.Consumer, Subjects: requests, Stream: s.cfg.Stream, MaxDeliveries: s.cfg.MaxDeliveries, GiveUp: s.giveUp}
		return eventbus.ConsumeBatches(gctx, s.js, cfg, requestBatch, s.requests, s.log)
	})
	g.Go(func() error {
		cfg := eventbus.ConsumerConfig{Durable: s.cfg.Consumer, Subjects: outcomes, Stream: s.cfg.Stream, MaxDeliveries: s.cfg.MaxDeliveries, GiveUp: s.giveUp}
		return eventbus.Consume(gctx, s.js, cfg, s.events, s.log)
	})
	g.Go(func() error { return s.domain.RunOutbox(gctx, time.Second) })
	g.Go(func() error { return s.domain.RunWebhooks(gctx, time.Second) })
	g.Go(func() error { return s.sweepMedia(gctx) })
	s.log.Info("approval service listening", "grpc", s.lis.Addr().String(), "ops_http", s.opsLis.Addr().String())
	return g.Wait()
}

// requestBatch is the most post requests stored in one transaction. Half the consumer's 256 unacknowledged
// messages: the next batch queues up while one is stored.
const requestBatch = 128

func (s *Service) close() {
	if s.mailer != nil {
		_ = s.mailer.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}
