package ledger_test

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
	"github.com/heraldhq/herald/services/publisher/internal/events"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/sqlite"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

type fixture struct {
	svc     *ledger.Service
	store   *sqlite.Store
	sandbox *xsandbox.Sandbox
	client  ledger.Channel
	clock   *clock
	js      jetstream.JetStream
	// pics is the media bucket the ledger reads approved pictures from.
	pics *fakePictures
}

// clock is the one fake clock of a test, shared by the ledger, the client's rate gate and the sandbox:
// sleeping advances it at once.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// The sandbox shows a tweet on the timeline 2s after creating it; the ledger looks 5s after an attempt.
const sandboxVisibility = 2 * time.Second

// setup wires a Service to real parts: SQLite, the X sandbox through the real client, and JetStream through
// the events adapter. The client gives up on X after 500ms, so that the hanging faults cost little.
func setup(t *testing.T) fixture {
	return setupWith(t, sandboxVisibility, "v2")
}

// channels are the two ways to X: every failure is tested through both.
var channels = []string{"v2", "v1.1"}

func setupWith(t *testing.T, visibility time.Duration, channel string) fixture {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)}
	creds := xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats",
		VisibilityDelay: visibility, Now: clk.Now}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	var client ledger.Channel
	switch channel {
	case "v2":
		client, err = xapi.New(srv.URL, creds, 500*time.Millisecond, xapi.WithClock(clk.Now, clk.Sleep))
	case "v1.1":
		client, err = xapi.NewV1(srv.URL, creds, 500*time.Millisecond, xapi.WithClock(clk.Now, clk.Sleep))
	default:
		t.Fatalf("no channel %q", channel)
	}
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "publisher.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	nc, js, err := eventbus.Connect(context.Background(), natstest.Embedded(t), "ledger-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	signer, _ := sealtest.NewKey(t)
	announcer, err := events.NewAnnouncer(pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	pics := &fakePictures{objects: map[string][]byte{}}
	svc, err := ledger.NewService(store, client, announcer, slog.New(slog.DiscardHandler), ledger.WithMedia(pics),
		ledger.WithClock(clk.Now, clk.Sleep), ledger.WithPolicy(ledger.Policy{VisibilityDelay: 5 * time.Second, MaxAttempts: 3, MaxChecks: 5}))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, store: store, sandbox: sb, client: client, clock: clk, js: js, pics: pics}
}

func approved(text string) ledger.Approval {
	return ledger.Approval{PostID: uuid.NewString(), DepartmentID: "d", Text: text, ApprovedBy: "comms@example.com", ApprovedAt: time.Now()}
}

// outcomes returns the outcome events on subject for post, as the approval service would read them.
func (f fixture) outcomes(t *testing.T, subject, postID string) int {
	t.Helper()
	stream, err := f.js.Stream(context.Background(), eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for seq := uint64(1); ; seq++ {
		msg, err := stream.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != subject {
			continue
		}
		ev := map[string]interface {
			proto.Message
			GetPostId() string
		}{
			eventbus.SubjectPublished: &eventsv1.PostPublished{},
			eventbus.SubjectFailed:    &eventsv1.PostFailed{},
			eventbus.SubjectUnknown:   &eventsv1.PostUnknown{},
		}[subject]
		if err := proto.Unmarshal(msg.Data, ev); err != nil {
			t.Fatalf("decode %s: %v", subject, err)
		}
		if ev.GetPostId() == postID {
			n++
		}
	}
}

func TestRedeliveredApprovalPostsOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ev := approved("Hello from the ledger test")
	for range 3 {
		if err := f.svc.HandleApproved(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.sandbox.Tweets()); n != 1 {
		t.Fatalf("X received %d tweets for one approval delivered three times, want 1", n)
	}
	got, err := f.store.Get(ctx, ev.PostID)
	if err != nil || got.State != ledger.StatePublished || got.RemoteID != f.sandbox.Tweets()[0].ID {
		t.Fatalf("ledger = %+v, %v", got, err)
	}
	if n := f.outcomes(t, eventbus.SubjectPublished, ev.PostID); n != 1 {
		t.Errorf("PostPublished stored %d times, want 1 (republished with the same message id)", n)
	}
}

// exactlyOnce checks the promise: the sandbox has the post once and the ledger says published with its id,
// announced once; or the sandbox does not have it and the ledger says unknown, announced once. Never two,
// never silently none.
func (f fixture) exactlyOnce(t *testing.T, ev ledger.Approval, want ledger.State) ledger.Publication {
	t.Helper()
	var copies []xsandbox.Tweet
	for _, tw := range f.sandbox.Tweets() {
		if tw.Text == ev.Text {
			copies = append(copies, tw)
		}
	}
	got, err := f.store.Get(context.Background(), ev.PostID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != want {
		t.Fatalf("ledger state = %s (%s), want %s; sandbox has %d copies", got.State, got.Error, want, len(copies))
	}
	switch want {
	case ledger.StatePublished:
		if len(copies) != 1 {
			t.Fatalf("the sandbox has %d copies of the post, want exactly 1", len(copies))
		}
		if got.RemoteID != copies[0].ID || got.URL != "https://x.com/i/web/status/"+copies[0].ID {
			t.Errorf("ledger remote id %q url %q, want the sandbox's %q", got.RemoteID, got.URL, copies[0].ID)
		}
		if n := f.outcomes(t, eventbus.SubjectPublished, ev.PostID); n != 1 {
			t.Errorf("PostPublished stored %d times, want 1", n)
		}
	case ledger.StateUnknown:
		if len(copies) > 1 {
			t.Fatalf("the sandbox has %d copies of the post", len(copies))
		}
		if got.Error == "" {
			t.Error("an unknown post without a reason for ops")
		}
		if n := f.outcomes(t, eventbus.SubjectUnknown, ev.PostID); n != 1 {
			t.Errorf("PostUnknown stored %d times, want 1", n)
		}
	}
	return got
}

// handle delivers ev until the ledger stops asking for a redelivery, as JetStream would, advancing the
// clock by the delay asked for; it fails after a few rounds.
func (f fixture) handle(t *testing.T, ev ledger.Approval) {
	t.Helper()
	for range 5 {
		err := f.svc.HandleApproved(context.Background(), ev)
		var later *ledger.RetryLaterError
		if !errors.As(err, &later) {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		_ = f.clock.Sleep(context.Background(), max(later.After, time.Second))
	}
	t.Fatal("still asking for redelivery after 5 deliveries")
}

func TestFailuresAreReconciled(t *testing.T) {
	tests := []struct {
		name   string
		faults []xsandbox.Fault
		// visibility is the sandbox's delay before a new tweet shows on the timeline.
		visibility   time.Duration
		want         ledger.State
		wantAttempts int
	}{
		{name: "503 before creating: not on the timeline, sent again", faults: []xsandbox.Fault{{Status: 503}}, want: ledger.StatePublished, wantAttempts: 2},
		{name: "502 and 504 before creating", faults: []xsandbox.Fault{{Status: 502}, {Status: 504}}, want: ledger.StatePublished, wantAttempts: 3},
		{name: "created, then 503: found on the timeline", faults: []xsandbox.Fault{{Mode: xsandbox.ModeCreateThenStatus, Status: 503}}, want: ledger.StatePublished, wantAttempts: 1},
		{name: "created, then 500", faults: []xsandbox.Fault{{Mode: xsandbox.ModeCreateThenStatus, Status: 500}}, want: ledger.StatePublished, wantAttempts: 1},
		{name: "created, then the connection dropped", faults: []xsandbox.Fault{{Mode: xsandbox.ModeCreateThenDrop}}, want: ledger.StatePublished, wantAttempts: 1},
		{name: "hung past the client timeout, nothing created", faults: []xsandbox.Fault{{Mode: xsandbox.ModeHang}}, want: ledger.StatePublished, wantAttempts: 2},
		{name: "created, then hung past the client timeout", faults: []xsandbox.Fault{{Mode: xsandbox.ModeCreateThenHang}}, want: ledger.StatePublished, wantAttempts: 1},
		{name: "created, 503, slow timeline: the retry's duplicate answer leads to it", faults: []xsandbox.Fault{{Mode: xsandbox.ModeCreateThenStatus, Status: 503}},
			visibility: 8 * time.Second, want: ledger.StatePublished, wantAttempts: 2},
		{name: "503 every time: unknown after 3 attempts, nothing posted", faults: []xsandbox.Fault{{Status: 503, Count: 10}}, want: ledger.StateUnknown, wantAttempts: 3},
		{name: "created, 503, slow timeline, the retry answered 503 too: found", faults: []xsandbox.Fault{{Mode: xsandbox.ModeCreateThenStatus}, {Status: 503}},
			visibility: 8 * time.Second, want: ledger.StatePublished, wantAttempts: 2},
	}
	for _, ch := range channels {
		for _, tt := range tests {
			t.Run(ch+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := setupWith(t, cmp.Or(tt.visibility, sandboxVisibility), ch)
				for _, fault := range tt.faults {
					f.sandbox.InjectFault(fault)
				}
				ev := approved("Reconcile https://example.com/jobs?a=1&b=2 — " + tt.name)
				f.handle(t, ev)
				got := f.exactlyOnce(t, ev, tt.want)
				if got.Attempts != tt.wantAttempts {
					t.Errorf("attempts = %d, want %d", got.Attempts, tt.wantAttempts)
				}
				if served := f.sandbox.Served(); len(served) == 0 {
					t.Error("the sandbox served no fault")
				}
				// A redelivery afterwards changes nothing.
				f.handle(t, ev)
				f.exactlyOnce(t, ev, tt.want)
			})
		}
	}
}

func TestRedeliveryFindingAttemptingReconciles(t *testing.T) {
	tests := []struct {
		name string
		// sent: the crashed delivery's call reached X.
		sent bool
	}{
		{name: "crash before the call: posted now, once", sent: false},
		{name: "crash after the call: found, not posted again", sent: true},
	}
	for _, tt := range tests {
		for _, ch := range channels {
			t.Run(ch+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := setupWith(t, sandboxVisibility, ch)
				ctx := context.Background()
				ev := approved("Crashed mid-call: " + tt.name)
				// A previous delivery recorded the attempt and then the process died.
				now := f.clock.Now()
				if _, _, err := f.store.Begin(ctx, ledger.Publication{PostID: ev.PostID, Channel: "x", State: ledger.StateAttempting, Text: ev.Text, Attempts: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
				if tt.sent {
					if _, err := f.client.Post(ctx, ev.Text, nil); err != nil {
						t.Fatal(err)
					}
				}
				before := f.sandbox.PostCalls()
				f.handle(t, ev)
				f.exactlyOnce(t, ev, ledger.StatePublished)
				if calls := f.sandbox.PostCalls() - before; tt.sent && calls != 0 {
					t.Errorf("the redelivery sent the post %d times though it was on the timeline", calls)
				}
			})
		}
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		fault     *xsandbox.Fault
		duplicate bool
		wantErr   bool
		wantDelay bool // the channel said when to try again
		wantState ledger.State
		subject   string
	}{
		{name: "rate limited: retried later", fault: &xsandbox.Fault{Status: 429, RetryAfterSeconds: 60}, wantErr: true, wantDelay: true},
		{name: "duplicate text on a first attempt: failed for good", duplicate: true, wantState: ledger.StateFailed, subject: eventbus.SubjectFailed},
	}
	for _, tt := range tests {
		for _, ch := range channels {
			t.Run(ch+"/"+tt.name, func(t *testing.T) {
				f := setupWith(t, sandboxVisibility, ch)
				ctx := context.Background()
				ev := approved("Outcome " + tt.name)
				if tt.duplicate {
					if err := f.svc.HandleApproved(ctx, approved(ev.Text)); err != nil {
						t.Fatal(err)
					}
				}
				if tt.fault != nil {
					f.sandbox.InjectFault(*tt.fault)
				}
				err := f.svc.HandleApproved(ctx, ev)
				if tt.wantErr {
					var later *ledger.RetryLaterError
					if !errors.As(err, &later) {
						t.Fatalf("HandleApproved = %v, want a *RetryLaterError", err)
					}
					if tt.wantDelay != (later.After > 0) || later.After > time.Minute {
						t.Errorf("retry after %s; want a delay up to X's reset: %v", later.After, tt.wantDelay)
					}
					if _, err := f.store.Get(ctx, ev.PostID); !errors.Is(err, ledger.ErrNotFound) {
						t.Fatalf("a post that certainly did not go out left a ledger entry: %v", err)
					}
					// A redelivery before X's reset makes no call; the one after it posts.
					calls := f.sandbox.PostCalls()
					if err := f.svc.HandleApproved(ctx, ev); !errors.As(err, &later) || f.sandbox.PostCalls() != calls {
						t.Fatalf("redelivery before the reset = %v after %d calls to X; want a *RetryLaterError and none", err, f.sandbox.PostCalls()-calls)
					}
					_ = f.clock.Sleep(ctx, later.After)
					if err := f.svc.HandleApproved(ctx, ev); err != nil {
						t.Fatal(err)
					}
					f.exactlyOnce(t, ev, ledger.StatePublished)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got, _ := f.store.Get(ctx, ev.PostID)
				if got.State != tt.wantState || got.Error == "" {
					t.Errorf("ledger = %+v, want %s with X's reason", got, tt.wantState)
				}
				if n := f.outcomes(t, tt.subject, ev.PostID); n != 1 {
					t.Errorf("%s stored %d times, want 1", tt.subject, n)
				}
			})
		}
	}
}

func TestApprovalWithoutTextIsInvalid(t *testing.T) {
	f := setup(t)
	for _, a := range []ledger.Approval{approved(""), {Text: "no post id"}} {
		if err := f.svc.HandleApproved(context.Background(), a); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("HandleApproved(%+v) = %v, want ErrInvalid", a, err)
		}
	}
	if n := len(f.sandbox.Tweets()); n != 0 {
		t.Errorf("X received %d tweets for invalid approvals", n)
	}
}
