// Package stack runs all of Herald in one process on real parts: an embedded NATS server with
// JetStream, SQLite (or PostgreSQL), the approval service, the publisher, the gateway, a local SMTP
// server with a mailbox page, and the X API sandbox. Each external part is replaced by a real one when
// its HERALD_* variable is set. deploy/local runs it for development; the end-to-end test runs it on free
// ports.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/gateway/gatewayd"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/approvald"
	"github.com/heraldhq/herald/services/approval/mailbox"
	"github.com/heraldhq/herald/services/publisher/publisherd"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// Config is the local stack's configuration, read from the environment by deploy/local.
type Config struct {
	DataDir string `env:"HERALD_DATA_DIR" envDefault:".herald"`

	GatewayAddr   string `env:"HERALD_GATEWAY_ADDR" envDefault:"127.0.0.1:8080"`
	ApprovalAddr  string `env:"HERALD_APPROVAL_GRPC_ADDR" envDefault:"127.0.0.1:9090"`
	PublisherAddr string `env:"HERALD_PUBLISHER_GRPC_ADDR" envDefault:"127.0.0.1:9091"`
	ApprovalOps   string `env:"HERALD_APPROVAL_HTTP_ADDR" envDefault:"127.0.0.1:9190"`
	PublisherOps  string `env:"HERALD_PUBLISHER_HTTP_ADDR" envDefault:"127.0.0.1:9191"`
	SMTPAddr      string `env:"HERALD_LOCAL_SMTP_ADDR" envDefault:"127.0.0.1:1025"`
	MailboxAddr   string `env:"HERALD_LOCAL_MAILBOX_ADDR" envDefault:"127.0.0.1:8025"`
	SandboxAddr   string `env:"HERALD_LOCAL_SANDBOX_ADDR" envDefault:"127.0.0.1:8090"`
	// NATSAddr is the embedded NATS server's address: not 4222, which is often a system NATS already.
	NATSAddr string `env:"HERALD_LOCAL_NATS_ADDR" envDefault:"127.0.0.1:4223"`

	// Real parts: when set, the built-in stand-in is not started.
	NATSURL     string `env:"HERALD_NATS_URL"`
	DatabaseURL string `env:"HERALD_DATABASE_URL"`
	SMTPURL     string `env:"HERALD_SMTP_URL"`
	XAPIBase    string `env:"HERALD_X_API_BASE"`
	// PublicURL is the gateway's URL as approvers' browsers reach it; default http://localhost:<port>.
	PublicURL string `env:"HERALD_PUBLIC_URL"`

	// Consumer names, so that stacks sharing one NATS server (tests) do not take each other's messages.
	ConsumerPrefix string `env:"HERALD_CONSUMER_PREFIX" envDefault:"herald"`

	// With a real X API these are the account's credentials; with the sandbox they are generated.
	XConsumerKey    string `env:"HERALD_X_CONSUMER_KEY,unset"`
	XConsumerSecret string `env:"HERALD_X_CONSUMER_SECRET,unset"`
	XAccessToken    string `env:"HERALD_X_ACCESS_TOKEN,unset"`
	XAccessSecret   string `env:"HERALD_X_ACCESS_TOKEN_SECRET,unset"`
}

// Info is what the stack tells its user once it is ready.
type Info struct {
	GatewayURL    string
	MailboxURL    string // empty with a real SMTP server
	SandboxURL    string // empty with the real X API
	SMTPAddr      string
	ApprovalAddr  string
	PublisherAddr string
	// ApprovalOpsURL and PublisherOpsURL serve /healthz, /readyz and /metrics (the gateway serves its own).
	ApprovalOpsURL  string
	PublisherOpsURL string
	NATSURL         string
	AdminToken      string
	DemoAPIKey      string
	DemoDepartment  string
	DemoApprover    string
	StartedIn       time.Duration
}

// DemoApprover is the approver the stack creates on first start.
const DemoApprover = "comms@example.com"

// Stack is a running Herald.
type Stack struct {
	Info Info

	log     *slog.Logger
	nats    *server.Server
	g       *errgroup.Group
	cancel  context.CancelFunc
	closers []func()
}

// Start starts every part and returns once Herald accepts requests. Stop it by cancelling ctx and
// calling Wait, or with Close.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Stack, err error) {
	began := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	st := &Stack{log: log, cancel: cancel}
	g, gctx := errgroup.WithContext(ctx)
	st.g = g
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	sec, err := loadSecrets(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st.Info.AdminToken = sec.AdminToken

	// Listeners first: with port 0 the real ports are known before anything needs them.
	lis := map[string]net.Listener{}
	for name, addr := range map[string]string{"gateway": cfg.GatewayAddr, "approval": cfg.ApprovalAddr, "publisher": cfg.PublisherAddr, "approval ops": cfg.ApprovalOps, "publisher ops": cfg.PublisherOps} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			st.closeListeners(lis)
			return nil, fmt.Errorf("listen for the %s on %s: %w", name, addr, err)
		}
		lis[name] = l
	}
	st.closers = append(st.closers, func() { st.closeListeners(lis) })
	gatewayPort := lis["gateway"].Addr().(*net.TCPAddr).Port
	st.Info.GatewayURL = fmt.Sprintf("http://localhost:%d", gatewayPort)
	st.Info.ApprovalAddr = localhost(lis["approval"].Addr())
	st.Info.PublisherAddr = localhost(lis["publisher"].Addr())
	st.Info.ApprovalOpsURL = "http://" + localhost(lis["approval ops"].Addr())
	st.Info.PublisherOpsURL = "http://" + localhost(lis["publisher ops"].Addr())
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = st.Info.GatewayURL
	}

	// NATS with JetStream.
	natsURL := cfg.NATSURL
	if natsURL == "" {
		if natsURL, err = st.startNATS(cfg); err != nil {
			return nil, err
		}
	}
	st.Info.NATSURL = natsURL

	// Mail.
	smtpURL := cfg.SMTPURL
	if smtpURL == "" {
		if smtpURL, err = st.startMailbox(cfg); err != nil {
			return nil, err
		}
	}

	// X.
	xBase, creds := cfg.XAPIBase, sec
	if xBase == "" {
		if xBase, err = st.startSandbox(cfg, sec); err != nil {
			return nil, err
		}
	} else {
		creds = &secrets{XConsumerKey: cfg.XConsumerKey, XConsumerSecret: cfg.XConsumerSecret, XAccessToken: cfg.XAccessToken, XAccessSecret: cfg.XAccessSecret}
	}

	approvalSvc, err := approvald.New(ctx, approvald.Config{
		DatabaseURL: cfg.DatabaseURL, DatabaseSchema: "herald_approval", DataDir: cfg.DataDir, NATSURL: natsURL,
		SMTPURL: smtpURL, MailFrom: "Herald <herald@localhost>", PublicURL: publicURL,
		AdminToken: sec.AdminToken, GatewayToken: sec.GatewayToken, ApprovalTTL: 72 * time.Hour,
		Consumer: cfg.ConsumerPrefix + "-approval", Listener: lis["approval"], HTTPListener: lis["approval ops"],
	}, log.With("service", "approval"))
	if err != nil {
		return nil, fmt.Errorf("approval service: %w", err)
	}
	delete(lis, "approval")
	delete(lis, "approval ops")
	g.Go(func() error { return approvalSvc.Run(gctx) })

	publisherSvc, err := publisherd.New(ctx, publisherd.Config{
		DatabaseURL: cfg.DatabaseURL, DatabaseSchema: "herald_publisher", DataDir: cfg.DataDir, NATSURL: natsURL,
		AdminToken: sec.AdminToken, Consumer: cfg.ConsumerPrefix + "-publisher", XAPIBase: xBase,
		XConsumerKey: creds.XConsumerKey, XConsumerSecret: creds.XConsumerSecret, XAccessToken: creds.XAccessToken, XAccessSecret: creds.XAccessSecret,
		XTimeout: 30 * time.Second, Listener: lis["publisher"], HTTPListener: lis["publisher ops"],
	}, log.With("service", "publisher"))
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	delete(lis, "publisher")
	delete(lis, "publisher ops")
	g.Go(func() error { return publisherSvc.Run(gctx) })

	gatewaySvc, err := gatewayd.New(ctx, gatewayd.Config{
		NATSURL: natsURL, ApprovalAddr: st.Info.ApprovalAddr, GatewayToken: sec.GatewayToken, CSRFKey: sec.CSRFKey,
		MaxBodyBytes: 1 << 20, KeyCacheTTL: 30 * time.Second, RetryAfter: 5 * time.Second, Listener: lis["gateway"],
	}, log.With("service", "gateway"))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	delete(lis, "gateway")
	g.Go(func() error { return gatewaySvc.Run(gctx) })

	if err := st.seed(ctx, sec, cfg.DataDir); err != nil {
		return nil, err
	}
	st.Info.DemoAPIKey = sec.DemoAPIKey
	st.Info.DemoDepartment = "HR"
	st.Info.DemoApprover = DemoApprover
	st.Info.StartedIn = time.Since(began)
	return st, nil
}

func localhost(a net.Addr) string {
	return fmt.Sprintf("localhost:%d", a.(*net.TCPAddr).Port)
}

func (st *Stack) closeListeners(lis map[string]net.Listener) {
	for _, l := range lis {
		l.Close()
	}
}

func (st *Stack) startNATS(cfg Config) (string, error) {
	host, port, err := net.SplitHostPort(cfg.NATSAddr)
	if err != nil {
		return "", fmt.Errorf("HERALD_LOCAL_NATS_ADDR: %w", err)
	}
	p := server.RANDOM_PORT
	if port != "0" {
		if _, err := fmt.Sscan(port, &p); err != nil {
			return "", fmt.Errorf("HERALD_LOCAL_NATS_ADDR: bad port %q", port)
		}
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "herald-local", Host: host, Port: p, JetStream: true,
		StoreDir: filepath.Join(cfg.DataDir, "nats"), NoSigs: true, NoLog: true,
	})
	if err != nil {
		return "", fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return "", fmt.Errorf("embedded nats did not start on %s (is the port taken?)", cfg.NATSAddr)
	}
	st.nats = ns
	return ns.ClientURL(), nil
}

func (st *Stack) startMailbox(cfg Config) (string, error) {
	mb, err := mailbox.New(filepath.Join(cfg.DataDir, "mail"), st.log.With("service", "mailbox"))
	if err != nil {
		return "", err
	}
	sl, err := net.Listen("tcp", cfg.SMTPAddr)
	if err != nil {
		return "", fmt.Errorf("listen for smtp on %s: %w", cfg.SMTPAddr, err)
	}
	smtpSrv := mb.Serve(sl)
	st.closers = append(st.closers, func() { smtpSrv.Close() })
	url, err := st.serveHTTP("mailbox", cfg.MailboxAddr, mb.Handler())
	if err != nil {
		return "", err
	}
	st.Info.MailboxURL = url
	st.Info.SMTPAddr = localhost(sl.Addr())
	return "smtp+plain://" + sl.Addr().String(), nil
}

func (st *Stack) startSandbox(cfg Config, sec *secrets) (string, error) {
	sb, err := xsandbox.New(xsandbox.Config{
		ConsumerKey: sec.XConsumerKey, ConsumerSecret: sec.XConsumerSecret, AccessToken: sec.XAccessToken, AccessTokenSecret: sec.XAccessSecret,
		Username: "contoso", DataFile: filepath.Join(cfg.DataDir, "x-sandbox.json"),
	}, st.log.With("service", "x-sandbox"))
	if err != nil {
		return "", err
	}
	url, err := st.serveHTTP("x sandbox", cfg.SandboxAddr, sb.Handler())
	if err != nil {
		return "", err
	}
	st.Info.SandboxURL = url
	return url, nil
}

// serveHTTP serves h on addr until the stack closes and returns its URL.
func (st *Stack) serveHTTP(name, addr string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for the %s on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			st.log.Error("http server stopped", "server", name, "err", err)
		}
	}()
	st.closers = append(st.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port), nil
}

// seed creates the demo department, its API key and the demo approver on first start, through the
// approval service's AdminService like an operator would.
func (st *Stack) seed(ctx context.Context, sec *secrets, dataDir string) error {
	if sec.DemoAPIKey != "" {
		return nil
	}
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+sec.AdminToken)
	admin := approvalv1.NewAdminServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	deptID := ""
	dep, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "HR"}, grpc.WaitForReady(true))
	switch {
	case err == nil:
		deptID = dep.GetDepartment().GetId()
	case status.Code(err) == codes.AlreadyExists:
		list, err := admin.ListDepartments(ctx, &approvalv1.ListDepartmentsRequest{})
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		for _, d := range list.GetDepartments() {
			if strings.EqualFold(d.GetName(), "HR") {
				deptID = d.GetId()
			}
		}
	default:
		return fmt.Errorf("seed department: %w", err)
	}
	if _, err := admin.CreateApprover(ctx, &approvalv1.CreateApproverRequest{Email: DemoApprover, Name: "Communications team"}); err != nil {
		return fmt.Errorf("seed approver: %w", err)
	}
	key, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: deptID, Label: "demo (deploy/local)"})
	if err != nil {
		return fmt.Errorf("seed api key: %w", err)
	}
	sec.DemoAPIKey = key.GetSecret()
	return sec.save(dataDir)
}

// Wait blocks until every service has stopped, then stops the stand-ins, and returns the first error.
func (st *Stack) Wait() error {
	err := st.g.Wait()
	st.shutdown()
	return err
}

// Close stops everything and waits for it.
func (st *Stack) Close() error {
	st.cancel()
	return st.Wait()
}

func (st *Stack) shutdown() {
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
	if st.nats != nil {
		st.nats.Shutdown()
		st.nats.WaitForShutdown()
		st.nats = nil
	}
}

// StopNATS shuts the embedded NATS server down while the services keep running: tests use it to check
// that the gateway refuses requests it cannot queue.
func (st *Stack) StopNATS() {
	if st.nats != nil {
		st.nats.Shutdown()
		st.nats.WaitForShutdown()
	}
}
