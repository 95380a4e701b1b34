package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// herald is one in-process Herald started for a benchmark, on free ports in a data directory of its
// own, so that no benchmark inherits another's backlog.
type herald struct {
	st      *stack.Stack
	dataDir string
	// deptID is the demo department's id, which the gateway's posts belong to.
	deptID string
	conn   *grpc.ClientConn
	// pgSchemas are dropped by close: the fresh schemas a PostgreSQL run made.
	pgSchemas []string
	pgURL     string
}

// unlimited lifts the per-key rate limit and the cap on undecided posts, which exist to stop a runaway flow
// and would otherwise turn a load test into a test of the 429: the checks still run on every request, only
// their thresholds are out of reach.
func unlimited() []string {
	return []string{"HERALD_POSTS_PER_MINUTE=100000000", "HERALD_MAX_UNDECIDED=100000000"}
}

// startHerald starts Herald as deploy/e2e does (stack.ParseConfig and stack.Start on free ports), with
// extra variables (the database) on top. The stack logs warnings and errors only, to logOut: at
// thousands of requests a second, info lines would be a benchmark of the logger.
func startHerald(ctx context.Context, extra map[string]string, logOut io.Writer) (*herald, error) {
	dataDir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	environ := map[string]string{
		"HERALD_DATA_DIR": dataDir, "HERALD_GATEWAY_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_GRPC_ADDR": "127.0.0.1:0",
		"HERALD_PUBLISHER_GRPC_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_HTTP_ADDR": "127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_SMTP_ADDR": "127.0.0.1:0", "HERALD_LOCAL_MAILBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_SANDBOX_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_NATS_ADDR": "127.0.0.1:0", "HERALD_CONSUMER_PREFIX": "bench",
	}
	for _, kv := range unlimited() {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	for k, v := range extra {
		environ[k] = v
	}
	cfg, err := stack.ParseConfig(environ)
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("stack config: %w", err)
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := stack.Start(ctx, cfg, log)
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("start herald: %w", err)
	}
	h := &herald{st: st, dataDir: dataDir}
	if h.conn, err = grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		h.close()
		return nil, fmt.Errorf("approval client: %w", err)
	}
	list, err := approvalv1.NewAdminServiceClient(h.conn).ListDepartments(h.admin(ctx), &approvalv1.ListDepartmentsRequest{})
	if err != nil || len(list.GetDepartments()) != 1 {
		h.close()
		return nil, fmt.Errorf("demo department: %v, %w", list, err)
	}
	h.deptID = list.GetDepartments()[0].GetId()
	return h, nil
}

// admin returns ctx with the admin token, for AdminService and ListPosts across departments.
func (h *herald) admin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+h.st.Info.AdminToken)
}

// natsPassword reads a service's generated NATS password from secrets.json, as deploy/e2e does: the
// baseline publishes as the gateway's user, with the gateway's rights and nothing more.
func (h *herald) natsPassword(s eventbus.Service) (string, error) {
	var sec struct {
		NATSPasswords map[string]string `json:"nats_passwords"`
	}
	raw, err := os.ReadFile(filepath.Join(h.dataDir, "secrets.json"))
	if err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	if err := json.Unmarshal(raw, &sec); err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	p := sec.NATSPasswords[string(s)]
	if p == "" {
		return "", fmt.Errorf("no NATS password for %s in secrets.json", s)
	}
	return p, nil
}

// mailCount is how many messages the mailbox received: it keeps one .eml file per message, and reading
// the directory's names is far cheaper than fetching /api/messages (every message's text) while it grows.
// Not filepath.Glob: it also sorts and matches every name, which showed in the pipeline's profile as 5 %
// of the process's CPU, taken from the service being measured.
func (h *herald) mailCount() (int, error) {
	d, err := os.Open(filepath.Join(h.dataDir, "mail"))
	if err != nil {
		return 0, fmt.Errorf("mailbox dir: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("mailbox dir: %w", err)
	}
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".eml") {
			n++
		}
	}
	return n, nil
}

// close stops Herald, waits for it, drops the PostgreSQL schemas it used and removes its data directory.
func (h *herald) close() {
	if h.conn != nil {
		h.conn.Close()
	}
	if err := h.st.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "stop herald: %v\n", err)
	}
	if len(h.pgSchemas) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropSchemas(ctx, h.pgURL, h.pgSchemas); err != nil {
			fmt.Fprintf(os.Stderr, "drop schemas %v: %v\n", h.pgSchemas, err)
		}
	}
	os.RemoveAll(h.dataDir)
}

// randomSuffix names fresh PostgreSQL schemas and makes tweets unique across runs.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
