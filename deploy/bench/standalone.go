package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// standaloneSecrets are development-only secrets for the services run as processes, as
// deploy/local/herald.env.example has them: they exist only for the length of the run, on loopback.
func standaloneSecrets() []string {
	return []string{
		"HERALD_ADMIN_TOKEN=bench-admin-token-0123456789", "HERALD_GATEWAY_TOKEN=bench-gateway-token-0123456789",
		"HERALD_CSRF_KEY=bench-csrf-key-0123456789abcdef-0123456789",
		"HERALD_X_CONSUMER_KEY=bench-consumer-key", "HERALD_X_CONSUMER_SECRET=bench-consumer-secret",
		"HERALD_X_ACCESS_TOKEN=1850000000000000001-bench-access-token", "HERALD_X_ACCESS_TOKEN_SECRET=bench-access-token-secret",
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago: the services take their
// addresses from the environment, so the port must be known before they start.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// standaloneFootprint runs the three services as processes of their own (built from their cmd/ mains),
// against stand-ins (NATS, mailbox, sandbox) running in this process, and reads each one's RSS idle
// and under the same load as the one-process stack.
func standaloneFootprint(ctx context.Context, o options, binDir string, clients int) ([]processFootprint, error) {
	bins := map[string]string{}
	for name, pkg := range map[string]string{
		"approval": "./services/approval/cmd/herald-approval", "publisher": "./services/publisher/cmd/herald-publisher",
		"gateway": "./gateway/cmd/herald-gateway",
	} {
		bin, err := goBuild(ctx, binDir, pkg)
		if err != nil {
			return nil, err
		}
		bins[name] = bin
	}
	data, err := os.MkdirTemp("", "herald-bench-standalone-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)

	addrs := map[string]string{}
	for _, name := range []string{"gateway", "approval grpc", "approval http", "publisher grpc", "publisher http"} {
		if addrs[name], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	environ := map[string]string{
		"HERALD_DATA_DIR": data, "HERALD_LOCAL_SMTP_ADDR": "127.0.0.1:0", "HERALD_LOCAL_MAILBOX_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_SANDBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_NATS_ADDR": "127.0.0.1:0",
	}
	for _, kv := range standaloneSecrets() {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	cfg, err := stack.ParseConfig(environ)
	if err != nil {
		return nil, fmt.Errorf("stand-ins: %w", err)
	}
	standIns, err := stack.StartStandIns(ctx, cfg, stack.StandIns{NATS: true, Mailbox: true, Sandbox: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, fmt.Errorf("stand-ins: %w", err)
	}
	defer standIns.Close()

	gatewayURL := "http://" + addrs["gateway"]
	common := append(cleanEnv(standaloneSecrets()...), standIns.Info.ServiceEnv...)
	common = append(common, unlimited()...)
	common = append(common, "HERALD_DATA_DIR="+data, "HERALD_PUBLIC_URL="+gatewayURL,
		"HERALD_GATEWAY_ADDR="+addrs["gateway"], "HERALD_APPROVAL_ADDR="+addrs["approval grpc"],
		"HERALD_APPROVAL_GRPC_ADDR="+addrs["approval grpc"], "HERALD_APPROVAL_HTTP_ADDR="+addrs["approval http"],
		"HERALD_PUBLISHER_GRPC_ADDR="+addrs["publisher grpc"], "HERALD_PUBLISHER_HTTP_ADDR="+addrs["publisher http"])
	procs := map[string]*child{}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	// The approval service first: it creates the stream the others wait for.
	for _, name := range []string{"approval", "publisher", "gateway"} {
		logFile, err := os.Create(filepath.Join(data, name+".log"))
		if err != nil {
			return nil, err
		}
		defer logFile.Close()
		p, err := startChild(ctx, bins[name], append(common, standIns.Info.ServiceEnvFor[name]...), logFile)
		if err != nil {
			return nil, err
		}
		procs[name] = p
	}
	for name, u := range map[string]string{"approval": "http://" + addrs["approval http"], "publisher": "http://" + addrs["publisher http"], "gateway": gatewayURL} {
		if err := waitFor(ctx, 60*time.Second, name+" ready", func() (bool, error) { return ready(ctx, u+"/readyz"), nil }); err != nil {
			logged, _ := os.ReadFile(filepath.Join(data, name+".log"))
			return nil, fmt.Errorf("%w; its log ends:\n%s", err, logged[max(0, len(logged)-2000):])
		}
	}
	key, err := seedStandalone(ctx, addrs["approval grpc"], "bench-admin-token-0123456789")
	if err != nil {
		return nil, err
	}

	post := postTo(newClient(clients), gatewayURL+"/v1/posts", key, randomSuffix())
	if warm := runLoad(ctx, 1, 5*time.Second, 10, post); warm.Accepted != 10 {
		return nil, fmt.Errorf("standalone warm-up posts: %v %s", warm.Statuses, warm.FirstError)
	}
	names := []string{"approval", "publisher", "gateway"}
	out := make([]processFootprint, len(names))
	for i, name := range names {
		out[i].Name = "herald-" + name + " (own process)"
		if out[i].IdleMiB, err = idleRSS(ctx, procs[name].cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	// Each process's peak is sampled during the same load.
	var load loadResult
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	started := make(chan struct{})
	for i, name := range names {
		wg.Go(func() {
			out[i].LoadedMiB, errs[i] = peakRSS(procs[name].cmd.Process.Pid, func() {
				if i == 0 {
					load = runLoad(ctx, clients, o.footprintLoad, 0, post)
					close(started)
				} else {
					<-started
				}
			})
		})
	}
	wg.Wait()
	for i := range out {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out[i].Accepted = load.Accepted
	}
	return out, nil
}

func ready(ctx context.Context, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// seedStandalone creates a department, its approver and an API key, as an operator would, and returns
// the key.
func seedStandalone(ctx context.Context, addr, adminToken string) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	admin := approvalv1.NewAdminServiceClient(conn)
	dep, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "Bench"})
	if err != nil {
		return "", fmt.Errorf("seed department: %w", err)
	}
	if _, err := admin.CreateApprover(ctx, &approvalv1.CreateApproverRequest{Email: "comms@example.com", Name: "Comms"}); err != nil {
		return "", fmt.Errorf("seed approver: %w", err)
	}
	key, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: dep.GetDepartment().GetId(), Label: "bench"})
	if err != nil {
		return "", fmt.Errorf("seed key: %w", err)
	}
	return key.GetSecret(), nil
}
