package ledger_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
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
	js      jetstream.JetStream
}

// setup wires a Service to real parts: SQLite, the X sandbox through the real client, and JetStream through
// the events adapter.
func setup(t *testing.T) fixture {
	t.Helper()
	creds := xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	client, err := xapi.New(srv.URL, creds, 5*time.Second)
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
	svc, err := ledger.NewService(store, client, announcer, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, store: store, sandbox: sb, js: js}
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

func TestAttemptWithoutOutcomeBecomesUnknown(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ev := approved("Crashed mid-call")
	// A previous delivery recorded the attempt and then the process died.
	now := time.Now().UTC()
	if _, _, err := f.store.Begin(ctx, ledger.Publication{PostID: ev.PostID, Channel: "x", State: ledger.StateAttempting, Text: ev.Text, Attempts: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.HandleApproved(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := len(f.sandbox.Tweets()); n != 0 {
		t.Fatalf("the publisher posted blind after a crash (%d tweets)", n)
	}
	got, _ := f.store.Get(ctx, ev.PostID)
	if got.State != ledger.StateUnknown {
		t.Errorf("state = %s, want unknown", got.State)
	}
	if n := f.outcomes(t, eventbus.SubjectUnknown, ev.PostID); n != 1 {
		t.Errorf("PostUnknown stored %d times, want 1", n)
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
		{name: "X unavailable: retried later, nothing recorded", fault: &xsandbox.Fault{Status: 503}, wantErr: true},
		{name: "rate limited: retried later", fault: &xsandbox.Fault{Status: 429, RetryAfterSeconds: 60}, wantErr: true, wantDelay: true},
		{name: "duplicate text: failed for good", duplicate: true, wantState: ledger.StateFailed, subject: eventbus.SubjectFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
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
				// The redelivery posts it.
				if err := f.svc.HandleApproved(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if got, _ := f.store.Get(ctx, ev.PostID); got.State != ledger.StatePublished {
					t.Fatalf("after the retry the state is %s, want published", got.State)
				}
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
