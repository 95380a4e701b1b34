package crashtest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/sqlite"
	"github.com/heraldhq/herald/services/publisher/publisherd"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// childEnv marks the re-executed test binary as the publisher process.
const childEnv = "HERALD_CRASHTEST_CHILD"

// crashEnv names the crash point at which the child kills itself.
const crashEnv = "HERALD_CRASHTEST_AT"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child runs the publisher as cmd/herald-publisher does, killing itself with SIGKILL at the crash point.
func child() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := env.ParseAs[publisherd.Config]()
	if err != nil {
		log.Error("config", "err", err)
		return 1
	}
	if at := os.Getenv(crashEnv); at != "" {
		cfg.CrashHook = func(point string) {
			if point == at {
				log.Info("crashing", "point", point)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // SIGKILL cannot be caught; nothing runs after it
			}
		}
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

var creds = xsandbox.Config{ConsumerKey: "ck-crash", ConsumerSecret: "cs-crash", AccessToken: "at-crash", AccessTokenSecret: "ats-crash"}

// allWindowsEnv runs every crash window (scripts/crash.sh sets it). Without it the test suite runs the
// short form: the window that matters most, the post made on X and not yet recorded, since each window
// costs a JetStream redelivery wait and CI must stay quick.
const allWindowsEnv = "HERALD_CRASHTEST_ALL"

func TestCrashWindows(t *testing.T) {
	points := []string{ledger.PointAfterCall}
	if os.Getenv(allWindowsEnv) == "1" {
		points = []string{ledger.PointAfterBegin, ledger.PointAfterCall, ledger.PointAfterFinish}
	}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			natsURL := natstest.Embedded(t)
			nc, js, err := eventbus.Connect(ctx, natsURL, "crashtest")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			sb, err := xsandbox.New(creds, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(sb.Handler())
			t.Cleanup(srv.Close)
			dir := t.TempDir()
			keys := filepath.Join(dir, "keys")
			for _, name := range []string{"approval", "publisher"} {
				if _, err := seal.WriteKeyPair(keys, name); err != nil {
					t.Fatal(err)
				}
			}
			approvalKey, err := seal.LoadSigner(filepath.Join(keys, "approval.key"))
			if err != nil {
				t.Fatal(err)
			}
			consumer := "crash-" + point
			environ := append(os.Environ(), childEnv+"=1",
				"HERALD_NATS_URL="+natsURL, "HERALD_DATA_DIR="+dir, "HERALD_ADMIN_TOKEN=admin-token-0123456789",
				"HERALD_APPROVAL_PUBLIC_KEYS_FILE="+filepath.Join(keys, "approval.pub"), "HERALD_PUBLISHER_SEAL_KEY_FILE="+filepath.Join(keys, "publisher.key"),
				"HERALD_X_API_BASE="+srv.URL, "HERALD_X_CONSUMER_KEY="+creds.ConsumerKey, "HERALD_X_CONSUMER_SECRET="+creds.ConsumerSecret,
				"HERALD_X_ACCESS_TOKEN="+creds.AccessToken, "HERALD_X_ACCESS_TOKEN_SECRET="+creds.AccessTokenSecret,
				// The ack wait is the handler timeout (X's timeout + 15s) + 5s: a short X timeout makes the
				// redelivery after the crash come sooner.
				"HERALD_X_TIMEOUT=1s", "HERALD_PUBLISHER_CONSUMER="+consumer,
				"HERALD_PUBLISHER_GRPC_ADDR=127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR=127.0.0.1:0")

			postID, text := uuid.NewString(), "Crash window "+point+" "+uuid.NewString()[:8]
			approve(t, js, approvalKey, postID, text)

			var logs bytes.Buffer
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("publisher logs:\n%s", logs.String())
				}
			})
			first := exec.Command(os.Args[0], "-test.run=^$")
			first.Env, first.Stdout, first.Stderr = append(environ, crashEnv+"="+point), &logs, &logs
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- first.Wait() }()
			select {
			case err := <-done:
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the publisher ended with %v, want killed at %s", err, point)
				}
			case <-time.After(60 * time.Second):
				_ = first.Process.Kill()
				t.Fatalf("the publisher did not reach %s", point)
			}

			second := exec.Command(os.Args[0], "-test.run=^$")
			second.Env, second.Stdout, second.Stderr = environ, &logs, &logs
			if err := second.Start(); err != nil {
				t.Fatal(err)
			}
			stopped := make(chan error, 1)
			go func() { stopped <- second.Wait() }()
			t.Cleanup(func() {
				_ = second.Process.Signal(syscall.SIGTERM)
				select {
				case <-stopped:
				case <-time.After(30 * time.Second):
					_ = second.Process.Kill()
				}
			})
			// Done when the approval is acknowledged (after its redelivery) and an outcome is announced.
			cons, err := js.Consumer(ctx, eventbus.Stream, eventbus.ConsumerName(consumer, eventbus.SubjectApproved))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(90 * time.Second)
			for {
				info, err := cons.Info(ctx)
				if err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0 && outcome(t, js, postID) != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not settled after the restart: consumer %+v, %v", info, err)
				}
				select {
				case err := <-stopped:
					t.Fatalf("the restarted publisher stopped: %v", err)
				case <-time.After(200 * time.Millisecond):
				}
			}
			_ = second.Process.Signal(syscall.SIGTERM)
			<-stopped

			store, err := sqlite.Open(ctx, filepath.Join(dir, "publisher.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			got, err := store.Get(ctx, postID)
			if err != nil {
				t.Fatal(err)
			}
			var copies []xsandbox.Tweet
			for _, tw := range sb.Tweets() {
				if tw.Text == text {
					copies = append(copies, tw)
				}
			}
			switch {
			case got.State == ledger.StatePublished && len(copies) == 1 && got.RemoteID == copies[0].ID:
			case got.State == ledger.StateUnknown && len(copies) <= 1:
			default:
				t.Fatalf("after a crash at %s: ledger %s (remote id %q, %s), X has %d copies; want published once or unknown", point, got.State, got.RemoteID, got.Error, len(copies))
			}
			if want := string(got.State); outcome(t, js, postID) != want {
				t.Errorf("announced %q, ledger says %s", outcome(t, js, postID), want)
			}
			t.Logf("crash at %s: %s, %d attempts, X has %d copies", point, got.State, got.Attempts, len(copies))
		})
	}
}

// approve publishes a PostApproved sealed by the approval service's key, as the approval service does.
func approve(t *testing.T, js jetstream.JetStream, key *seal.Signer, postID, text string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	sum := seal.TextHash(text)
	s := key.Sign(seal.Approval{PostID: postID, DepartmentID: "hr", TextSHA256: sum, Approver: "comms@example.com", ApprovedAt: now})
	ev := &eventsv1.PostApproved{PostId: postID, DepartmentId: "hr", Text: text, TextSha256: sum[:], ApprovedBy: "comms@example.com",
		ApprovedAt: timestamppb.New(now), Seal: &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}}
	pub, err := eventbus.NewPublisher(js, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishProto(context.Background(), eventbus.SubjectApproved, eventbus.MsgID(postID, "approved"), ev); err != nil {
		t.Fatal(err)
	}
}

// outcome is the last outcome announced for the post: "published", "failed", "unknown" or "".
func outcome(t *testing.T, js jetstream.JetStream, postID string) string {
	t.Helper()
	stream, err := js.Stream(context.Background(), eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for subject, name := range map[string]string{eventbus.SubjectPublished: "published", eventbus.SubjectFailed: "failed", eventbus.SubjectUnknown: "unknown"} {
		msg, err := stream.GetLastMsgForSubject(context.Background(), subject)
		if err != nil {
			continue
		}
		if bytes.Contains(msg.Data, []byte(postID)) {
			last = name
		}
	}
	return last
}
