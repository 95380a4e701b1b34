// Command soak pushes many approved posts through a real publisher process while killing it with SIGKILL
// and restarting it several times, then counts what reached the X sandbox against the ledger:
//
//	go run ./services/publisher/internal/crashtest/soak -posts 1000 -kills 5
//
// Each start of the publisher also queues -faults sandbox faults. It prints posted (on X once, ledger published), duplicates (on X more than once), lost (not on X and
// the ledger does not say unknown or failed) and unknown (left for ops). Everything runs locally: an
// embedded NATS server, the X sandbox in this process, and the publisher as a child process (this binary
// re-executed).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/sqlite"
	"github.com/heraldhq/herald/services/publisher/publisherd"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

const childEnv = "HERALD_SOAK_CHILD"

func main() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	posts := flag.Int("posts", 1000, "approved posts to push")
	kills := flag.Int("kills", 5, "times to kill the publisher with SIGKILL while it works")
	faults := flag.Int("faults", 4, "X faults injected at each start of the publisher (503, created then 503, created then dropped, hang)")
	flag.Parse()
	if err := run(*posts, *kills, *faults); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// child runs the publisher as cmd/herald-publisher does.
func child() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := env.ParseAs[publisherd.Config]()
	if err != nil {
		log.Error("config", "err", err)
		return 1
	}
	svc, err := publisherd.New(ctx, cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

func run(n, kills, faults int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "herald-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: filepath.Join(dir, "nats"), NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats did not start")
	}
	nc, js, err := eventbus.Connect(ctx, ns.ClientURL(), "soak")
	if err != nil {
		return err
	}
	defer nc.Close()
	creds := xsandbox.Config{ConsumerKey: "ck-soak", ConsumerSecret: "cs-soak", AccessToken: "at-soak", AccessTokenSecret: "ats-soak", TweetsPerWindow: 1 << 30}
	sb, err := xsandbox.New(creds, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	keys := filepath.Join(dir, "keys")
	for _, name := range []string{"approval", "publisher"} {
		if _, err := seal.WriteKeyPair(keys, name); err != nil {
			return err
		}
	}
	approvalKey, err := seal.LoadSigner(filepath.Join(keys, "approval.key"))
	if err != nil {
		return err
	}
	environ := append(os.Environ(), childEnv+"=1",
		"HERALD_NATS_URL="+ns.ClientURL(), "HERALD_DATA_DIR="+dir, "HERALD_ADMIN_TOKEN=admin-token-0123456789",
		"HERALD_APPROVAL_PUBLIC_KEYS_FILE="+filepath.Join(keys, "approval.pub"), "HERALD_PUBLISHER_SEAL_KEY_FILE="+filepath.Join(keys, "publisher.key"),
		"HERALD_X_API_BASE="+srv.URL, "HERALD_X_CONSUMER_KEY="+creds.ConsumerKey, "HERALD_X_CONSUMER_SECRET="+creds.ConsumerSecret,
		"HERALD_X_ACCESS_TOKEN="+creds.AccessToken, "HERALD_X_ACCESS_TOKEN_SECRET="+creds.AccessTokenSecret,
		"HERALD_X_TIMEOUT=1s", "HERALD_PUBLISHER_CONSUMER=soak",
		"HERALD_PUBLISHER_GRPC_ADDR=127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR=127.0.0.1:0")

	pub, err := eventbus.NewPublisher(js, 5*time.Second)
	if err != nil {
		return err
	}
	texts := map[string]string{}
	start := time.Now()
	for i := range n {
		id := uuid.NewString()
		text := fmt.Sprintf("Soak post %d of %d (%s)", i+1, n, id[:8])
		texts[id] = text
		now := time.Now().UTC().Truncate(time.Microsecond)
		sum := seal.TextHash(text)
		s := approvalKey.Sign(seal.Approval{PostID: id, DepartmentID: "hr", TextSHA256: sum, Approver: "comms@example.com", ApprovedAt: now})
		ev := &eventsv1.PostApproved{PostId: id, DepartmentId: "hr", Text: text, TextSha256: sum[:], ApprovedBy: "comms@example.com",
			ApprovedAt: timestamppb.New(now), Seal: &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}}
		if err := pub.PublishProto(ctx, eventbus.SubjectApproved, eventbus.MsgID(id, "approved"), ev); err != nil {
			return err
		}
	}

	modes := []xsandbox.Fault{{Status: 503}, {Mode: xsandbox.ModeCreateThenStatus, Status: 503}, {Mode: xsandbox.ModeCreateThenDrop}, {Mode: xsandbox.ModeHang}}
	startChild := func() (*exec.Cmd, error) {
		for range faults {
			sb.InjectFault(modes[rand.IntN(len(modes))])
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env, cmd.Stdout, cmd.Stderr = environ, os.Stderr, os.Stderr
		return cmd, cmd.Start()
	}
	for k := range kills {
		cmd, err := startChild()
		if err != nil {
			return err
		}
		// Let it post a random number more (or work 40s, which covers a redelivery), then kill it
		// mid-flight.
		target, until := len(sb.Tweets())+20+rand.IntN(n/kills), time.Now().Add(40*time.Second)
		for len(sb.Tweets()) < target && time.Now().Before(until) {
			time.Sleep(time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		fmt.Printf("kill %d: X has %d tweets\n", k+1, len(sb.Tweets()))
	}
	cmd, err := startChild()
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, eventbus.Stream, eventbus.ConsumerName("soak", eventbus.SubjectApproved))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled after 10 minutes: %+v %v", info, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	store, err := sqlite.Open(ctx, filepath.Join(dir, "publisher.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	copies := map[string]int{}
	for _, tw := range sb.Tweets() {
		copies[tw.Text]++
	}
	var posted, duplicates, lost, unknown, failed int
	for id, text := range texts {
		p, err := store.Get(ctx, id)
		c := copies[text]
		switch {
		case c > 1:
			duplicates++
		case err == nil && p.State == ledger.StateUnknown:
			unknown++
		case err == nil && p.State == ledger.StateFailed:
			failed++
		case err == nil && p.State == ledger.StatePublished && c == 1:
			posted++
		default:
			lost++
		}
	}
	fmt.Printf("posts %d, kills %d, faults served %d, %s\nposted %d\nduplicates %d\nlost %d\nunknown %d\nfailed %d\n", n, kills, len(sb.Served()), time.Since(start).Round(time.Second), posted, duplicates, lost, unknown, failed)
	if duplicates > 0 || lost > 0 {
		return fmt.Errorf("%d duplicates, %d lost", duplicates, lost)
	}
	return nil
}
