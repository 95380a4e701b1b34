// Package stack runs all of Herald in one process on real parts: an embedded NATS server with
// JetStream, SQLite (or PostgreSQL), the approval service, the publisher, the gateway, a local SMTP
// server with a mailbox page, and the X API sandbox. Each external part is replaced by a real one when
// its HERALD_* variable is set. deploy/local runs it for development; the end-to-end test runs it on free
// ports.
package stack

import (
	"cmp"
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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/gateway/gatewayd"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/approvald"
	"github.com/heraldhq/herald/services/approval/mailbox"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
	"github.com/heraldhq/herald/services/publisher/publisherd"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// Info is what the stack tells its user once it is ready.
type Info struct {
	GatewayURL string
	MailboxURL string // empty with a real SMTP server
	SandboxURL string // empty with the real X API
	// TeamsURL is the Teams stand-in's page; TeamsWebhookURL the URL a policy names to post cards to it.
	TeamsURL        string
	TeamsWebhookURL string
	SMTPAddr        string
	ApprovalAddr    string
	PublisherAddr   string
	// ApprovalOpsURL and PublisherOpsURL serve /healthz, /readyz and /metrics (the gateway serves its own).
	ApprovalOpsURL  string
	PublisherOpsURL string
	NATSURL         string
	// NATS and Database say which servers are in use, for people: passwords and tokens are redacted.
	NATS           string
	Database       string
	AdminToken     string
	DemoAPIKey     string
	DemoDepartment string
	DemoApprover   string
	// ServiceEnv are the variables (NAME=value) that point services run on their own at the stand-ins.
	ServiceEnv []string
	// ServiceEnvFor are the variables that differ per service (its own NATS user), by service name.
	ServiceEnvFor map[string][]string
	StartedIn     time.Duration
}

// DemoDepartment and DemoApprover are what the stack creates in a database that lacks them.
const (
	DemoDepartment = "HR"
	DemoApprover   = "comms@example.com"
)

// Stack is a running Herald.
type Stack struct {
	Info Info
	// Teams is the Teams stand-in: the cards posted to Info.TeamsWebhookURL.
	Teams *TeamsStandIn

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
	st, gctx, sec, err := begin(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	// Generated secrets stand in for the tokens whose variables are unset.
	for _, f := range []struct {
		dst *string
		val string
	}{
		{&cfg.Approval.AdminToken, sec.AdminToken}, {&cfg.Publisher.AdminToken, sec.AdminToken},
		{&cfg.Approval.GatewayToken, sec.GatewayToken}, {&cfg.Gateway.GatewayToken, sec.GatewayToken},
		{&cfg.Gateway.CSRFKey, sec.CSRFKey},
	} {
		if *f.dst == "" {
			*f.dst = f.val
		}
	}
	st.Info.AdminToken = cfg.Approval.AdminToken

	// Listeners first: with port 0 the real ports are known before anything needs them.
	lis := map[string]net.Listener{}
	for name, addr := range map[string]string{"gateway": cfg.Gateway.HTTPAddr, "approval": cfg.Approval.GRPCAddr, "publisher": cfg.Publisher.GRPCAddr, "approval ops": cfg.Approval.Ops.Addr(approvald.DefaultOpsAddr), "publisher ops": cfg.Publisher.Ops.Addr(publisherd.DefaultOpsAddr)} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			st.closeListeners(lis)
			return nil, fmt.Errorf("listen for the %s on %s: %w", name, addr, err)
		}
		lis[name] = l
	}
	st.closers = append(st.closers, func() { st.closeListeners(lis) })
	scheme := "http"
	if cfg.Gateway.ServerTLS.TLSEnabled() {
		scheme = "https"
	}
	st.Info.GatewayURL = fmt.Sprintf("%s://localhost:%d", scheme, lis["gateway"].Addr().(*net.TCPAddr).Port)
	st.Info.ApprovalAddr = localhost(lis["approval"].Addr())
	st.Info.PublisherAddr = localhost(lis["publisher"].Addr())
	st.Info.ApprovalOpsURL = "http://" + localhost(lis["approval ops"].Addr())
	st.Info.PublisherOpsURL = "http://" + localhost(lis["publisher ops"].Addr())
	if cfg.Approval.PublicURL == "" {
		cfg.Approval.PublicURL = st.Info.GatewayURL
	}
	if cfg.Gateway.PublicURL == "" {
		cfg.Gateway.PublicURL = st.Info.GatewayURL
	}
	if cfg.Gateway.ApprovalAddr == "" {
		cfg.Gateway.ApprovalAddr = st.Info.ApprovalAddr
	}

	// Seals: the approval service's and the publisher's keys, generated once into the data directory.
	keys, err := ensureSealKeys(cfg.DataDir())
	if err != nil {
		return nil, err
	}
	useSealKeys(&cfg, keys)

	// NATS with JetStream: the embedded server for every service that was given no URL. Each service
	// connects as its own user, allowed only its own subjects, as in production.
	natsURL := cmp.Or(cfg.Approval.NATSURL, cfg.Publisher.NATSURL, cfg.Gateway.NATSURL)
	if cfg.Approval.NATSURL == "" || cfg.Publisher.NATSURL == "" || cfg.Gateway.NATSURL == "" {
		accounts, err := natsAccounts(cfg, sec)
		if err != nil {
			return nil, err
		}
		users, err := natsServerUsers(cfg, accounts)
		if err != nil {
			return nil, err
		}
		if natsURL, err = st.startNATS(cfg.Local.NATSAddr, cfg.DataDir(), users); err != nil {
			return nil, err
		}
		for _, svc := range []struct {
			nats *svcconfig.NATS
			as   eventbus.Service
		}{{&cfg.Approval.NATS, eventbus.ServiceApproval}, {&cfg.Publisher.NATS, eventbus.ServicePublisher}, {&cfg.Gateway.NATS, eventbus.ServiceGateway}} {
			if svc.nats.NATSURL == "" {
				a := account(accounts, svc.as)
				svc.nats.NATSURL, svc.nats.NATSUser, svc.nats.NATSPassword, svc.nats.NATSPasswordFile, svc.nats.NATSCredsFile = natsURL, a.User, a.Password, "", ""
			}
		}
	}
	st.Info.NATSURL = natsURL
	st.Info.NATS = redactURL(natsURL)
	if st.nats != nil {
		st.Info.NATS += " (embedded, data in " + filepath.Join(cfg.DataDir(), "nats") + ")"
	}

	// Mail.
	if cfg.Approval.SMTPURL == "" {
		if cfg.Approval.SMTPURL, err = st.startMailbox(cfg.Local, cfg.DataDir()); err != nil {
			return nil, err
		}
	}

	// X: the sandbox accepts the generated credentials, which the publisher then uses.
	if cfg.Publisher.XAPIBase == "" {
		creds := sec.xCredentials()
		if cfg.Publisher.XAPIBase, err = st.startSandbox(cfg.Local.SandboxAddr, cfg.DataDir(), creds); err != nil {
			return nil, err
		}
		setXCredentials(&cfg.Publisher, creds)
		// The approval page shows the account posts go out as: the sandbox's, unless set.
		if cfg.Gateway.XAccount == "" {
			cfg.Gateway.XAccount = "@" + sandboxUsername
		}
	}
	st.Info.Database = describeDatabase(cfg)

	// Teams: a stand-in channel, for policies that name its webhook.
	st.Teams = &TeamsStandIn{}
	if st.Info.TeamsURL, err = st.serveHTTP("teams stand-in", cfg.Local.TeamsAddr, st.Teams.Handler()); err != nil {
		return nil, err
	}
	st.Info.TeamsWebhookURL = st.Info.TeamsURL + "/webhook"

	cfg.Approval.Listener, cfg.Approval.HTTPListener = lis["approval"], lis["approval ops"]
	approvalSvc, err := approvald.New(ctx, cfg.Approval, log.With("service", "approval"))
	if err != nil {
		return nil, fmt.Errorf("approval service: %w", err)
	}
	delete(lis, "approval")
	delete(lis, "approval ops")
	st.g.Go(func() error { return approvalSvc.Run(gctx) })

	cfg.Publisher.Listener, cfg.Publisher.HTTPListener = lis["publisher"], lis["publisher ops"]
	publisherSvc, err := publisherd.New(ctx, cfg.Publisher, log.With("service", "publisher"))
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	delete(lis, "publisher")
	delete(lis, "publisher ops")
	st.g.Go(func() error { return publisherSvc.Run(gctx) })

	cfg.Gateway.Listener = lis["gateway"]
	gatewaySvc, err := gatewayd.New(ctx, cfg.Gateway, log.With("service", "gateway"))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	delete(lis, "gateway")
	st.g.Go(func() error { return gatewaySvc.Run(gctx) })

	if st.Info.DemoAPIKey, err = st.seed(ctx, cfg.Approval, cfg.Gateway.ClientTLS, sec); err != nil {
		return nil, err
	}
	st.Info.DemoDepartment = DemoDepartment
	st.Info.DemoApprover = DemoApprover
	st.Info.StartedIn = time.Since(began)
	return st, nil
}

// StandIns names the stand-ins StartStandIns runs.
type StandIns struct {
	NATS, Mailbox, Sandbox bool
}

// StartStandIns runs only the chosen stand-ins, for the three services run as processes of their own.
// The sandbox accepts the publisher's HERALD_X_* credentials when all four are set (an environment file
// shared with the services), generated ones otherwise; Info.ServiceEnv says what to give the services.
func StartStandIns(ctx context.Context, cfg Config, which StandIns, log *slog.Logger) (_ *Stack, err error) {
	began := time.Now()
	st, gctx, sec, err := begin(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	// The services' seal keys, whatever runs: each service reads only its own variables, so one
	// environment file can hold them all.
	keys, err := ensureSealKeys(cfg.DataDir())
	if err != nil {
		return nil, err
	}
	st.Info.ServiceEnv = append(st.Info.ServiceEnv,
		"HERALD_APPROVAL_SEAL_KEY_FILE="+keys.ApprovalKey, "HERALD_PUBLISHER_PUBLIC_KEYS_FILE="+keys.PublisherPub,
		"HERALD_PUBLISHER_SEAL_KEY_FILE="+keys.PublisherKey, "HERALD_APPROVAL_PUBLIC_KEYS_FILE="+keys.ApprovalPub)
	if which.NATS {
		accounts, err := natsAccounts(cfg, sec)
		if err != nil {
			return nil, err
		}
		users, err := natsServerUsers(cfg, accounts)
		if err != nil {
			return nil, err
		}
		if st.Info.NATSURL, err = st.startNATS(cfg.Local.NATSAddr, cfg.DataDir(), users); err != nil {
			return nil, err
		}
		st.Info.NATS = st.Info.NATSURL
		st.Info.ServiceEnv = append(st.Info.ServiceEnv, "HERALD_NATS_URL="+st.Info.NATSURL)
		st.Info.ServiceEnvFor = map[string][]string{}
		for _, a := range accounts {
			st.Info.ServiceEnvFor[string(a.Service)] = []string{"HERALD_NATS_USER=" + a.User, "HERALD_NATS_PASSWORD=" + a.Password}
		}
	}
	if which.Mailbox {
		smtpURL, err := st.startMailbox(cfg.Local, cfg.DataDir())
		if err != nil {
			return nil, err
		}
		st.Info.ServiceEnv = append(st.Info.ServiceEnv, "HERALD_SMTP_URL="+smtpURL)
	}
	if which.Sandbox {
		p := cfg.Publisher
		creds := xCredentials{ConsumerKey: p.XConsumerKey, ConsumerSecret: p.XConsumerSecret, AccessToken: p.XAccessToken, AccessTokenSecret: p.XAccessSecret}
		if !creds.complete() {
			creds = sec.xCredentials()
		}
		url, err := st.startSandbox(cfg.Local.SandboxAddr, cfg.DataDir(), creds)
		if err != nil {
			return nil, err
		}
		st.Info.ServiceEnv = append(st.Info.ServiceEnv, "HERALD_X_API_BASE="+url,
			"HERALD_X_CONSUMER_KEY="+creds.ConsumerKey, "HERALD_X_CONSUMER_SECRET="+creds.ConsumerSecret,
			"HERALD_X_ACCESS_TOKEN="+creds.AccessToken, "HERALD_X_ACCESS_TOKEN_SECRET="+creds.AccessTokenSecret,
			"HERALD_X_ACCOUNT=@"+sandboxUsername)
	}
	// Nothing else runs: the group only waits for ctx, so that Wait returns when it ends.
	st.g.Go(func() error { <-gctx.Done(); return nil })
	st.Info.StartedIn = time.Since(began)
	return st, nil
}

// begin makes the data directory, loads (or makes) the local secrets and returns a Stack whose group
// runs in the returned context.
func begin(ctx context.Context, cfg Config, log *slog.Logger) (*Stack, context.Context, *secrets, error) {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	st := &Stack{log: log, cancel: cancel, g: g}
	// Everything in the data directory is private: databases, mail, the NATS store, the secrets. MkdirAll
	// leaves an existing directory's mode alone, hence the Chmod.
	if err := os.MkdirAll(cfg.DataDir(), 0o700); err != nil {
		st.Close()
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(cfg.DataDir(), 0o700); err != nil {
		st.Close()
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	sec, err := loadSecrets(cfg.DataDir())
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, gctx, sec, nil
}

func localhost(a net.Addr) string {
	return fmt.Sprintf("localhost:%d", a.(*net.TCPAddr).Port)
}

func (st *Stack) closeListeners(lis map[string]net.Listener) {
	for _, l := range lis {
		l.Close()
	}
}

// startNATS starts the embedded NATS server, which admits only users: anonymous connections are refused.
func (st *Stack) startNATS(addr, dataDir string, users []*server.User) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("HERALD_LOCAL_NATS_ADDR: %w", err)
	}
	p := server.RANDOM_PORT
	if port != "0" {
		if _, err := fmt.Sscan(port, &p); err != nil {
			return "", fmt.Errorf("HERALD_LOCAL_NATS_ADDR: bad port %q", port)
		}
	}
	// The server makes its files 0600 and directories 0700, but not the store directory it is given if
	// it exists already (an older stack may have left it open).
	storeDir := filepath.Join(dataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return "", fmt.Errorf("embedded nats store: %w", err)
	}
	if err := os.Chmod(storeDir, 0o700); err != nil {
		return "", fmt.Errorf("embedded nats store: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "herald-local", Host: host, Port: p, JetStream: true,
		StoreDir: storeDir, NoSigs: true, NoLog: true, Users: users,
	})
	if err != nil {
		return "", fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return "", fmt.Errorf("embedded nats did not start on %s (is the port taken?)", addr)
	}
	st.nats = ns
	return ns.ClientURL(), nil
}

// startMailbox starts the SMTP server and its page, and returns the URL the approval service sends to.
func (st *Stack) startMailbox(local Local, dataDir string) (string, error) {
	mb, err := mailbox.New(filepath.Join(dataDir, "mail"), st.log.With("service", "mailbox"))
	if err != nil {
		return "", err
	}
	sl, err := net.Listen("tcp", local.SMTPAddr)
	if err != nil {
		return "", fmt.Errorf("listen for smtp on %s: %w", local.SMTPAddr, err)
	}
	smtpSrv := mb.Serve(sl)
	st.closers = append(st.closers, func() { smtpSrv.Close() })
	url, err := st.serveHTTP("mailbox", local.MailboxAddr, mb.Handler())
	if err != nil {
		return "", err
	}
	st.Info.MailboxURL = url
	st.Info.SMTPAddr = localhost(sl.Addr())
	return "smtp+plain://" + sl.Addr().String(), nil
}

// sandboxUsername is the account the X API sandbox posts as (its GET /2/users/me).
const sandboxUsername = "contoso"

// startSandbox starts the X API sandbox accepting creds and returns its URL.
func (st *Stack) startSandbox(addr, dataDir string, creds xCredentials) (string, error) {
	sb, err := xsandbox.New(xsandbox.Config{
		ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		Username: sandboxUsername, DataFile: filepath.Join(dataDir, "x-sandbox.json"),
	}, st.log.With("service", "x-sandbox"))
	if err != nil {
		return "", err
	}
	url, err := st.serveHTTP("x sandbox", addr, sb.Handler())
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

// seed makes sure the database the approval service uses has the demo department, its approver and an
// API key that works, through AdminService like an operator would, and returns that key. The key is
// kept per database (see secrets.DemoAPIKeys): one saved for this database is checked with
// AuthenticateKey and replaced when it no longer works (the database was reset, or the key revoked). It
// reaches the approval service the way the gateway does (clientTLS), so that a stack run with TLS turned
// on seeds too.
func (st *Stack) seed(ctx context.Context, cfg approvald.Config, clientTLS svcconfig.ClientTLS, sec *secrets) (string, error) {
	creds, err := clientTLS.TransportCredentials()
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cfg.AdminToken)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	approvals := approvalv1.NewApprovalServiceClient(conn)
	admin := approvalv1.NewAdminServiceClient(conn)

	db := databaseFingerprint(cfg)
	// A key from before keys were kept per database is tried too, so that an existing data directory
	// keeps its key.
	for _, key := range []string{sec.DemoAPIKeys[db], sec.LegacyDemoAPIKey} {
		if key == "" {
			continue
		}
		_, err := approvals.AuthenticateKey(ctx, &approvalv1.AuthenticateKeyRequest{ApiKey: key}, grpc.WaitForReady(true))
		switch {
		case err == nil:
			if sec.DemoAPIKeys[db] != key {
				sec.DemoAPIKeys[db], sec.LegacyDemoAPIKey = key, ""
				return key, sec.save()
			}
			return key, nil
		case status.Code(err) != codes.NotFound:
			return "", fmt.Errorf("seed: check the saved demo API key: %w", err)
		}
	}

	deptID := ""
	dep, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: DemoDepartment}, grpc.WaitForReady(true))
	switch {
	case err == nil:
		deptID = dep.GetDepartment().GetId()
	case status.Code(err) == codes.AlreadyExists:
		list, err := admin.ListDepartments(ctx, &approvalv1.ListDepartmentsRequest{})
		if err != nil {
			return "", fmt.Errorf("seed: %w", err)
		}
		for _, d := range list.GetDepartments() {
			if strings.EqualFold(d.GetName(), DemoDepartment) {
				deptID = d.GetId()
			}
		}
	default:
		return "", fmt.Errorf("seed department: %w", err)
	}
	_, err = admin.CreateApprover(ctx, &approvalv1.CreateApproverRequest{Email: DemoApprover, Name: "Communications team"})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return "", fmt.Errorf("seed approver: %w", err)
	}
	key, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: deptID, Label: "demo (deploy/local)"})
	if err != nil {
		return "", fmt.Errorf("seed api key: %w", err)
	}
	st.log.Info("created the demo department's API key for this database", "database", st.Info.Database)
	sec.DemoAPIKeys[db] = key.GetSecret()
	return key.GetSecret(), sec.save()
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
