package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/mailbox"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// Binaries are the paths of the programs a run starts.
type Binaries struct {
	Gateway, Approval, Publisher, NATSServer string
}

// Build builds the three services from their cmd/ mains and nats-server from the
// github.com/nats-io/nats-server/v2 module in the deploy module's go.sum, into dir. It runs go in
// workspace dir root (the repository), so that the services are built from this checkout.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	b := Binaries{
		Gateway: filepath.Join(dir, "herald-gateway"), Approval: filepath.Join(dir, "herald-approval"),
		Publisher: filepath.Join(dir, "herald-publisher"), NATSServer: filepath.Join(dir, "nats-server"),
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator),
		"./gateway/cmd/herald-gateway", "./services/approval/cmd/herald-approval",
		"./services/publisher/cmd/herald-publisher", "github.com/nats-io/nats-server/v2")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return b, nil
}

// Harness secrets: development-only values that exist for the length of a run, on loopback.
const (
	adminToken = "chaos-admin-token-0123456789abcdef"
	xConsumer  = "chaos-consumer-key"
	xAccount   = "contoso"
)

// service names a Herald service in the run.
type service string

const (
	svcGateway   service = "gateway"
	svcApproval  service = "approval"
	svcPublisher service = "publisher"
)

// replica is one process of a service, with its addresses.
type replica struct {
	svc   service
	proc  *proc
	addr  string // the gateway's HTTP or the service's gRPC address
	ops   string // base URL of /readyz
	index int
}

// topology is everything a run starts: NATS nodes, service replicas, the balancers in front of them,
// and the mail sink and X sandbox in this process.
type topology struct {
	cfg      Config
	dir      string
	logs     *os.File
	nats     []*natsNode
	natsProc []*proc
	replicas []*replica
	gwLB     *balancer
	apLB     *balancer
	mailbox  *mailbox.Mailbox
	sandbox  *xsandbox.Sandbox
	closers  []func()

	pgURL     string
	appName   string
	pgSchemas []string
	apiKey    string
	deptID    string
}

// gatewayURL is the public URL: the balancer in front of the gateways.
func (t *topology) gatewayURL() string { return "http://" + t.gwLB.addr() }

// replicasOf returns the replicas of s.
func (t *topology) replicasOf(s service) []*replica {
	var out []*replica
	for _, r := range t.replicas {
		if r.svc == s {
			out = append(out, r)
		}
	}
	return out
}

// start brings everything up, seeds a department with its approvers and an API key, and returns once
// the gateway behind its balancer is ready.
func start(ctx context.Context, cfg Config, bins Binaries, dir string) (_ *topology, err error) {
	t := &topology{cfg: cfg, dir: dir}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.logs, err = os.Create(filepath.Join(dir, "processes.log")); err != nil {
		return nil, err
	}
	t.closers = append(t.closers, func() { t.logs.Close() })
	logw := &lockedWriter{w: t.logs}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The mail sink and the X sandbox, in this process: they are the outside world, never killed.
	if t.mailbox, err = mailbox.New("", quiet); err != nil {
		return nil, err
	}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	smtpSrv := t.mailbox.Serve(sl)
	t.closers = append(t.closers, func() { smtpSrv.Close() })
	xSecret, xToken, xTokenSecret := randomString(), "1850000000000000001-"+randomString()[:20], randomString()
	if t.sandbox, err = xsandbox.New(xsandbox.Config{
		ConsumerKey: xConsumer, ConsumerSecret: xSecret, AccessToken: xToken, AccessTokenSecret: xTokenSecret,
		Username: xAccount, TweetsPerWindow: 1 << 30,
	}, quiet); err != nil {
		return nil, err
	}
	sandboxURL, err := serve(t, t.sandbox.Handler())
	if err != nil {
		return nil, err
	}

	// Seal keys for the approval service and the publisher.
	keys := filepath.Join(dir, "keys")
	for _, name := range []string{"approval", "publisher"} {
		if _, err := seal.WriteKeyPair(keys, name); err != nil {
			return nil, err
		}
	}

	// NATS of the run's own.
	users, err := newNATSUsers()
	if err != nil {
		return nil, err
	}
	nodes, err := writeNATSConfigs(dir, cfg.NATSNodes)
	if err != nil {
		return nil, err
	}
	natsEnv := append(os.Environ(), users.hashEnv...)
	for i := range nodes {
		nd := &nodes[i]
		t.nats = append(t.nats, nd)
		p := newProc(nd.name, bins.NATSServer, []string{"-c", nd.confFile}, natsEnv, logw)
		t.natsProc = append(t.natsProc, p)
		t.closers = append(t.closers, func() { _ = p.kill() })
		if err := p.start(ctx); err != nil {
			return nil, err
		}
	}
	for _, nd := range t.nats {
		if err := waitReady(ctx, nd.opsURL+"/healthz?js-enabled-only=true", 60*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", nd.name, err)
		}
	}

	// PostgreSQL: fresh schemas, connections named for the run so that they can be terminated.
	suffix := randomSuffix()
	t.appName = "herald-chaos-" + suffix
	t.pgSchemas = []string{"chaos_" + suffix + "_approval", "chaos_" + suffix + "_publisher"}
	t.pgURL = cfg.PostgresURL
	dbURL, err := withParam(cfg.PostgresURL, "application_name", t.appName)
	if err != nil {
		return nil, err
	}

	// Balancers before the replicas: the gateways' public URL and approval address are the balancers'.
	for range cfg.Replicas {
		for _, s := range []service{svcApproval, svcPublisher, svcGateway} {
			r := &replica{svc: s}
			if r.addr, err = freeAddr(); err != nil {
				return nil, err
			}
			r.ops = "http://" + r.addr
			if s != svcGateway {
				ops, err := freeAddr()
				if err != nil {
					return nil, err
				}
				r.ops = "http://" + ops
			}
			t.replicas = append(t.replicas, r)
		}
	}
	lbCtx, cancelLB := context.WithCancel(context.Background())
	t.closers = append(t.closers, cancelLB)
	var gwBackends, apBackends []*backend
	for _, r := range t.replicas {
		be := &backend{addr: r.addr, readyURL: r.ops + "/readyz"}
		switch r.svc {
		case svcGateway:
			gwBackends = append(gwBackends, be)
		case svcApproval:
			apBackends = append(apBackends, be)
		}
	}
	if t.gwLB, err = newBalancer(lbCtx, gwBackends); err != nil {
		return nil, err
	}
	if t.apLB, err = newBalancer(lbCtx, apBackends); err != nil {
		return nil, err
	}

	common := append(cleanEnv(),
		"HERALD_ADMIN_TOKEN="+adminToken, "HERALD_GATEWAY_TOKEN=chaos-gateway-token-"+randomString(),
		"HERALD_CSRF_KEY=chaos-csrf-key-"+randomString(),
		"HERALD_X_CONSUMER_KEY="+xConsumer, "HERALD_X_CONSUMER_SECRET="+xSecret,
		"HERALD_X_ACCESS_TOKEN="+xToken, "HERALD_X_ACCESS_TOKEN_SECRET="+xTokenSecret,
		"HERALD_X_API_BASE="+sandboxURL, "HERALD_X_ACCOUNT=@"+xAccount,
		"HERALD_SMTP_URL=smtp+plain://"+sl.Addr().String(),
		"HERALD_PUBLIC_URL="+t.gatewayURL(), "HERALD_APPROVAL_ADDR="+t.apLB.addr(),
		"HERALD_NATS_URL="+natsURL(nodes),
		"HERALD_DATABASE_URL="+dbURL, "HERALD_APPROVAL_DB_SCHEMA="+t.pgSchemas[0], "HERALD_PUBLISHER_DB_SCHEMA="+t.pgSchemas[1],
		"HERALD_APPROVAL_SEAL_KEY_FILE="+filepath.Join(keys, "approval.key"), "HERALD_PUBLISHER_PUBLIC_KEYS_FILE="+filepath.Join(keys, "publisher.pub"),
		"HERALD_PUBLISHER_SEAL_KEY_FILE="+filepath.Join(keys, "publisher.key"), "HERALD_APPROVAL_PUBLIC_KEYS_FILE="+filepath.Join(keys, "approval.pub"),
		// A load test, not a test of the runaway-flow limits: their checks still run.
		"HERALD_POSTS_PER_MINUTE=100000000", "HERALD_MAX_UNDECIDED=100000000",
		"HERALD_GATEWAY_REPLICAS="+strconv.Itoa(cfg.Replicas),
		"HERALD_STREAM_REPLICAS="+strconv.Itoa(cfg.NATSNodes),
	)
	common = append(common, cfg.ExtraEnv...)
	bin := map[service]string{svcGateway: bins.Gateway, svcApproval: bins.Approval, svcPublisher: bins.Publisher}
	count := map[service]int{}
	for _, r := range t.replicas {
		count[r.svc]++
		r.index = count[r.svc]
		data := filepath.Join(dir, fmt.Sprintf("%s-%d", r.svc, r.index))
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, err
		}
		env := append(append([]string(nil), common...), "HERALD_DATA_DIR="+data)
		env = append(env, users.serviceEnv(eventbus.Service(r.svc))...)
		switch r.svc {
		case svcGateway:
			env = append(env, "HERALD_GATEWAY_ADDR="+r.addr)
		case svcApproval:
			env = append(env, "HERALD_APPROVAL_GRPC_ADDR="+r.addr, "HERALD_APPROVAL_HTTP_ADDR="+strings.TrimPrefix(r.ops, "http://"))
		case svcPublisher:
			env = append(env, "HERALD_PUBLISHER_GRPC_ADDR="+r.addr, "HERALD_PUBLISHER_HTTP_ADDR="+strings.TrimPrefix(r.ops, "http://"))
		}
		r.proc = newProc(fmt.Sprintf("%s-%d", r.svc, r.index), bin[r.svc], nil, env, logw)
		p := r.proc
		t.closers = append(t.closers, func() { _ = p.kill() })
	}
	// The approval service first: it creates the stream the others wait for.
	for _, s := range []service{svcApproval, svcPublisher, svcGateway} {
		for _, r := range t.replicasOf(s) {
			if err := r.proc.start(ctx); err != nil {
				return nil, err
			}
		}
		for _, r := range t.replicasOf(s) {
			if err := waitReady(ctx, r.ops+"/readyz", 90*time.Second); err != nil {
				return nil, fmt.Errorf("%s: %w (see %s)", r.proc.name, err, t.logs.Name())
			}
		}
	}
	if t.apiKey, err = t.seed(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// seed creates the department, its approvers and an API key through AdminService, as an operator would.
func (t *topology) seed(ctx context.Context) (string, error) {
	conn, err := grpc.NewClient(t.apLB.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	admin := approvalv1.NewAdminServiceClient(conn)
	dep, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "Chaos"}, grpc.WaitForReady(true))
	if err != nil {
		return "", fmt.Errorf("seed department: %w", err)
	}
	for i := range t.cfg.Approvers {
		if _, err := admin.CreateApprover(ctx, &approvalv1.CreateApproverRequest{Email: approverEmail(i), Name: fmt.Sprintf("Approver %d", i+1)}); err != nil {
			return "", fmt.Errorf("seed approver: %w", err)
		}
	}
	t.deptID = dep.GetDepartment().GetId()
	key, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: dep.GetDepartment().GetId(), Label: "chaos"})
	if err != nil {
		return "", fmt.Errorf("seed key: %w", err)
	}
	return key.GetSecret(), nil
}

func approverEmail(i int) string { return fmt.Sprintf("approver%d@example.com", i+1) }

// close stops every process and drops the run's schemas.
func (t *topology) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
	if len(t.pgSchemas) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropSchemas(ctx, t.pgURL, t.pgSchemas); err != nil {
			fmt.Fprintf(os.Stderr, "drop schemas %v: %v\n", t.pgSchemas, err)
		}
	}
}

// terminatePostgres ends every PostgreSQL connection of the run's services with pg_terminate_backend:
// the shared server cannot be killed, so the services see what a PostgreSQL crash does to them (every
// connection gone at once, mid-transaction), though not the server's own recovery.
func (t *topology) terminatePostgres(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, t.pgURL)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, t.appName).Scan(&n)
	return n, err
}

// outboxLeft describes the approval service's outbox rows left at the end (a diagnostic: the harness
// otherwise only uses the public API): by kind, how many, and how many a replica holds under a lease.
func (t *topology) outboxLeft(ctx context.Context) []string {
	conn, err := pgx.Connect(ctx, t.pgURL)
	if err != nil {
		return []string{err.Error()}
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT kind, count(*), count(*) FILTER (WHERE lease_until > next_attempt_at) FROM "+
		pgx.Identifier{t.pgSchemas[0], "outbox"}.Sanitize()+" GROUP BY kind ORDER BY kind")
	if err != nil {
		return []string{err.Error()}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind string
		var n, leased int
		if err := rows.Scan(&kind, &n, &leased); err != nil {
			return append(out, err.Error())
		}
		out = append(out, fmt.Sprintf("%s: %d, %d leased", kind, n, leased))
	}
	return out
}

// streamReplicas asks the NATS nodes' monitoring endpoint for the replicas of every stream (the posts
// stream and the buckets' streams), by name: the cluster run wants 3 everywhere.
func (t *topology) streamReplicas(ctx context.Context) (map[string]int, error) {
	// Each node reports the streams it holds a replica of: the union is every stream.
	var lastErr error
	out := map[string]int{}
	for _, nd := range t.nats {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, nd.opsURL+"/jsz?accounts=true&streams=true&config=true", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name   string `json:"name"`
					Config struct {
						Replicas int `json:"num_replicas"`
					} `json:"config"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				out[st.Name] = st.Config.Replicas
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no node reports a stream")
	}
	return nil, fmt.Errorf("stream replicas: %w", lastErr)
}

// serve serves h on a free loopback port until the topology closes and returns its URL.
func serve(t *topology, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.closers = append(t.closers, func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), nil
}

// waitReady polls u until it answers 200.
func waitReady(ctx context.Context, u string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		if probe(ctx, c, u) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s", u, limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago: processes take their addresses
// from the environment and keep them across restarts.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cleanEnv is this process's environment without HERALD_* variables: the run configures the services.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			env = append(env, kv)
		}
	}
	return env
}

// dropSchemas drops the run's schemas with everything in them.
func dropSchemas(ctx context.Context, url string, schemas []string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var errs []error
	for _, s := range schemas {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}
