package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/services/heraldshared/testenv"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
)

// built builds the programs once for the package's tests, into a directory removed by TestMain.
var built = struct {
	once sync.Once
	dir  string
	bins Binaries
	err  error
}{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-chaos-bin-")
	if err != nil {
		panic(err)
	}
	built.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func binaries(t *testing.T) Binaries {
	t.Helper()
	built.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		built.bins, built.err = Build(ctx, filepath.Join("..", ".."), built.dir)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bins
}

// postgres returns the shared server's URL, or skips (fails under CI=true) when it does not answer.
func postgres(t *testing.T) string {
	t.Helper()
	u := pgtest.BaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	return u
}

// testWriter sends the run's progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestCrashRun is the short crash run: 500 requests through the three services as processes while
// random ones of them, NATS and (once) the services' PostgreSQL connections are killed. Every accepted
// post must end published exactly once, and each approver be mailed once per post.
func TestCrashRun(t *testing.T) {
	pg := postgres(t)
	bins := binaries(t)
	rep, err := Run(context.Background(), Config{
		Requests: 500, Rate: 40, Concurrency: 8, Duration: 120 * time.Second, Kills: 6, KillEvery: 2 * time.Second,
		NATSNodes: 1, Replicas: 1, Approvers: 2, PostgresURL: pg, Bins: bins, Dir: t.TempDir(), Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if why := rep.Failed(); why != "" {
		t.Errorf("crash run: %s", why)
	}
	// Every kill happened and the system came back from each.
	if len(rep.Events) < 3 {
		t.Errorf("only %d kills happened, want at least 3", len(rep.Events))
	}
	for _, e := range rep.Events {
		if e.Err != "" || e.Ready == 0 {
			t.Errorf("%s: not ready again (%s)", e.What, e.Err)
		}
	}
	if rep.Published != rep.Accepted || rep.Posted != rep.Accepted {
		t.Errorf("accepted %d, published %d, posted %d: every accepted post is approved, so each must be posted", rep.Accepted, rep.Published, rep.Posted)
	}
}

// TestClusterRun is the short cluster run: three NATS nodes with R3 streams, two replicas of each
// service behind readiness-aware balancers, a few hundred requests; meanwhile the gateways are restarted
// one by one with SIGTERM, one NATS node and one replica of each service are killed with SIGKILL and
// brought back. Everything but accepted, decided and posted must be zero.
func TestClusterRun(t *testing.T) {
	pg := postgres(t)
	bins := binaries(t)
	rep, err := Run(context.Background(), Config{
		Requests: 400, Rate: 20, Concurrency: 8, Duration: 120 * time.Second, KillEvery: 2 * time.Second, Cluster: true,
		NATSNodes: 3, Replicas: 2, Approvers: 2, PostgresURL: pg, Bins: bins, Dir: t.TempDir(), Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if why := rep.Failed(); why != "" {
		t.Errorf("cluster run: %s", why)
	}
	// A rolling restart of both gateways, a NATS node, and a replica of each service.
	if len(rep.Events) != 6 {
		t.Errorf("%d events, want 6 (2 gateway restarts, 1 NATS node, 3 replicas)", len(rep.Events))
	}
	for _, e := range rep.Events {
		if e.Ready == 0 {
			t.Errorf("%s: not ready again (%s)", e.What, e.Err)
		}
	}
	if rep.Published != rep.Accepted || rep.Posted != rep.Accepted {
		t.Errorf("accepted %d, published %d, posted %d: every accepted post is approved, so each must be posted", rep.Accepted, rep.Published, rep.Posted)
	}
}
