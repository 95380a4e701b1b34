package approval_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/events"
	"github.com/heraldhq/herald/services/approval/internal/notify"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite"
	"github.com/heraldhq/herald/services/approval/mailbox"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

type fixture struct {
	svc   *approval.Service
	mail  *mailbox.Mailbox
	store *sqlite.Store
	js    jetstream.JetStream
	dept  approval.Department
	now   *time.Time
	// keys trusts the key the service seals approvals with, as the publisher's keyring does.
	keys *seal.Keyring
}

// setup wires the Service to real parts: SQLite, a real SMTP server (the mailbox) and JetStream.
func setup(t *testing.T, smtpURL string) fixture {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	mb, err := mailbox.New("", log)
	if err != nil {
		t.Fatal(err)
	}
	if smtpURL == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := mb.Serve(l)
		t.Cleanup(func() { srv.Close() })
		smtpURL = "smtp+plain://" + l.Addr().String()
	}
	mailer, err := notify.NewSMTP(smtpURL, "")
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "approval.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	nc, js, err := eventbus.Connect(ctx, natstest.Embedded(t), "approval-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	signer, keys := sealtest.NewKey(t)
	announcer, err := events.NewAnnouncer(pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	svc, err := approval.NewService(store, mailer, announcer, approval.Config{PublicURL: "http://gw.example", TokenTTL: time.Hour, Now: func() time.Time { return now }}, log)
	if err != nil {
		t.Fatal(err)
	}
	dept, err := svc.CreateDepartment(ctx, "HR")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"a@example.com", "b@example.com"} {
		if _, err := svc.AddApprover(ctx, e, ""); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{svc: svc, mail: mb, store: store, js: js, dept: dept, now: &now, keys: keys}
}

func (f fixture) request(t *testing.T, text string) string {
	t.Helper()
	id := uuid.NewString()
	r := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: text, RequestedBy: "jo", RequestedAt: time.Now()}
	if err := f.svc.Submit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return id
}

// links returns the approval links mailed to each approver.
func (f fixture) links(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range f.mail.Messages() {
		i := strings.Index(m.Text, "http://gw.example/approvals/")
		if i < 0 {
			t.Fatalf("email without a link: %q", m.Text)
		}
		out[m.To[0]] = strings.Fields(m.Text[i:])[0]
	}
	return out
}

func token(link string) string { return link[strings.LastIndex(link, "/")+1:] }

func TestRequestIsMailedOnceToEveryApprover(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	id := uuid.NewString()
	ev := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: "Welcome!", RequestedBy: "jo"}
	for range 2 { // a redelivered request
		if err := f.svc.Submit(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DrainOutbox(ctx); err != nil {
			t.Fatal(err)
		}
	}
	links := f.links(t)
	if len(f.mail.Messages()) != 2 || links["a@example.com"] == "" || links["b@example.com"] == "" || links["a@example.com"] == links["b@example.com"] {
		t.Fatalf("emails = %d, links %v; want one personal link per approver", len(f.mail.Messages()), links)
	}
	if len(token(links["a@example.com"])) < 43 {
		t.Errorf("token %q is shorter than 256 bits", token(links["a@example.com"]))
	}
	p, err := f.svc.GetPost(ctx, id, f.dept.ID)
	if err != nil || p.Status != approval.StatusPending {
		t.Fatalf("post = %+v, %v", p, err)
	}
	if _, err := f.svc.GetPost(ctx, id, uuid.NewString()); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("another department reading the post: %v, want ErrNotFound", err)
	}
	err = f.svc.Submit(ctx, approval.Request{PostID: uuid.NewString(), DepartmentID: "nope", Text: "x"})
	if !errors.Is(err, approval.ErrInvalid) {
		t.Errorf("request for an unknown department: %v, want ErrInvalid", err)
	}
}

func TestFirstDecisionWinsAndIsPublished(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	id := f.request(t, "Approve me")
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	links := f.links(t)
	view, err := f.svc.ViewApproval(ctx, token(links["a@example.com"]))
	if err != nil || view.State != approval.LinkOpen || view.Post.Text != "Approve me" || view.Approver.Email != "a@example.com" {
		t.Fatalf("view = %+v, %v", view, err)
	}
	p, err := f.svc.Decide(ctx, token(links["a@example.com"]), approval.OutcomeApprove, "ok", "127.0.0.1")
	if err != nil || p.Status != approval.StatusApproved || p.DecidedBy != "a@example.com" {
		t.Fatalf("Decide = %+v, %v", p, err)
	}
	if _, err := f.svc.Decide(ctx, token(links["a@example.com"]), approval.OutcomeApprove, "", ""); !errors.Is(err, approval.ErrTokenUsed) {
		t.Errorf("same link again: %v, want ErrTokenUsed", err)
	}
	if _, err := f.svc.Decide(ctx, token(links["b@example.com"]), approval.OutcomeReject, "", ""); !errors.Is(err, approval.ErrClosed) {
		t.Errorf("second approver after the decision: %v, want ErrClosed", err)
	}
	if _, err := f.svc.Decide(ctx, "forged", approval.OutcomeApprove, "", ""); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("forged token: %v, want ErrNotFound", err)
	}
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	msg, err := f.js.Stream(ctx, eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := msg.GetLastMsgForSubject(ctx, eventbus.SubjectApproved)
	if err != nil {
		t.Fatalf("no PostApproved on the stream: %v", err)
	}
	var ev eventsv1.PostApproved
	if err := proto.Unmarshal(last.Data, &ev); err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.PostApproved{PostId: id, DepartmentId: f.dept.ID, Text: "Approve me", ApprovedBy: "a@example.com", ApprovedAt: timestamppb.New(p.DecidedAt), Comment: "ok"}
	if diff := cmp.Diff(want, &ev, protocmp.Transform(), protocmp.IgnoreFields(&eventsv1.PostApproved{}, "seal", "text_sha256")); diff != "" {
		t.Errorf("PostApproved on the stream (-want +got):\n%s", diff)
	}
	// The publisher will post it only if its seal covers exactly this post, text, approver and time.
	stmt := seal.Approval{PostID: id, DepartmentID: f.dept.ID, TextSHA256: seal.TextHash("Approve me"), Approver: "a@example.com", ApprovedAt: p.DecidedAt}
	if err := f.keys.Verify(stmt, seal.Seal{KeyID: ev.GetSeal().GetKeyId(), Signature: ev.GetSeal().GetSignature()}); err != nil {
		t.Errorf("the approval's seal does not verify: %v", err)
	}
	if got := last.Header.Get("Nats-Msg-Id"); got != id+":approved" {
		t.Errorf("Nats-Msg-Id = %q, want %s:approved", got, id)
	}
	// The publisher's report closes the loop.
	if err := f.svc.RecordPublished(ctx, approval.PublisherReport{PostID: id, Channel: "x", RemoteID: "1", RemoteURL: "https://x.com/i/web/status/1", PublishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.svc.GetPost(ctx, id, ""); p.Status != approval.StatusPublished || p.RemoteID != "1" {
		t.Errorf("after PostPublished: %+v", p)
	}
}

func TestExpiredLinkCannotDecide(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	f.request(t, "Too late")
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	*f.now = f.now.Add(2 * time.Hour)
	tok := token(f.links(t)["a@example.com"])
	if v, err := f.svc.ViewApproval(ctx, tok); err != nil || v.State != approval.LinkExpired {
		t.Errorf("view of an expired link = %v, %v", v.State, err)
	}
	if _, err := f.svc.Decide(ctx, tok, approval.OutcomeApprove, "", ""); !errors.Is(err, approval.ErrTokenExpired) {
		t.Errorf("Decide with an expired link: %v, want ErrTokenExpired", err)
	}
}

func TestMailIsRetriedWhileSMTPIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: the SMTP server is down
	f := setup(t, "smtp+plain://"+addr)
	ctx := context.Background()
	f.request(t, "Mail me later")
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	due, err := f.store.DueOutbox(ctx, f.now.Add(time.Hour), 10)
	if err != nil || len(due) != 2 || due[0].Attempts != 1 || due[0].LastError == "" {
		t.Fatalf("outbox while SMTP is down = %+v, %v; want both emails kept with one failed attempt", due, err)
	}
	if now, _ := f.store.DueOutbox(ctx, *f.now, 10); len(now) != 0 {
		t.Errorf("failed emails are due again at once; want a backoff")
	}

	// SMTP comes back on the same address; once the backoff is over, the next drain delivers both emails,
	// and a later drain sends nothing twice.
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("restart SMTP on %s: %v", addr, err)
	}
	srv := f.mail.Serve(l)
	t.Cleanup(func() { srv.Close() })
	*f.now = f.now.Add(time.Hour)
	for range 2 {
		if err := f.svc.DrainOutbox(ctx); err != nil {
			t.Fatal(err)
		}
	}
	links := f.links(t)
	if len(f.mail.Messages()) != 2 || links["a@example.com"] == "" || links["b@example.com"] == "" {
		t.Errorf("after SMTP came back: %d emails, links %v; want one per approver", len(f.mail.Messages()), links)
	}
	if due, err := f.store.DueOutbox(ctx, f.now.Add(24*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("outbox after delivery = %+v, %v; want empty", due, err)
	}
	if v, err := f.svc.ViewApproval(ctx, token(links["a@example.com"])); err != nil || v.State != approval.LinkOpen {
		t.Errorf("the link mailed late = %v, %v; want an open link", v.State, err)
	}
}

// TestPublisherFailuresReachTheDepartment records the publisher's two bad outcomes and checks what the
// department that asked sees: the status and the channel's reason, and the post's history.
func TestPublisherFailuresReachTheDepartment(t *testing.T) {
	tests := []struct {
		name   string
		record func(f fixture, id string) error
		want   approval.Status
		reason string
	}{
		{
			name: "failed",
			record: func(f fixture, id string) error {
				return f.svc.RecordFailed(context.Background(), approval.PublisherReport{PostID: id, Channel: "x", Reason: "X refused the post: duplicate content"})
			},
			want: approval.StatusFailed, reason: "X refused the post: duplicate content",
		},
		{
			name: "unknown",
			record: func(f fixture, id string) error {
				return f.svc.RecordUnknown(context.Background(), approval.PublisherReport{PostID: id, Channel: "x", Reason: "the call to X timed out"})
			},
			want: approval.StatusUnknown, reason: "the call to X timed out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, "")
			ctx := context.Background()
			id := f.request(t, "Doomed")
			if err := f.svc.DrainOutbox(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Decide(ctx, token(f.links(t)["a@example.com"]), approval.OutcomeApprove, "", "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			if err := tt.record(f, id); err != nil {
				t.Fatal(err)
			}
			audit, err := f.svc.ListAudit(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var last approval.AuditEntry
			n := 0
			for _, a := range audit {
				if a.ToStatus == tt.want {
					last = a
					n++
				}
			}
			if n != 1 || last.Actor != "publisher" || last.FromStatus != approval.StatusApproved || last.Comment != tt.reason {
				t.Errorf("audit = %+v; want one entry from approved to %s by the publisher with the reason", audit, tt.want)
			}
			// The event redelivered (an acknowledgement lost) changes nothing: no second audit entry, and
			// the department sees the same.
			if err := tt.record(f, id); err != nil {
				t.Fatal(err)
			}
			if again, err := f.svc.ListAudit(ctx, id); err != nil || len(again) != len(audit) {
				t.Errorf("after a redelivery the audit has %d entries, want %d (%v)", len(again), len(audit), err)
			}
			for _, dept := range []string{f.dept.ID, ""} {
				p, err := f.svc.GetPost(ctx, id, dept)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status != tt.want || p.FailureReason != tt.reason || p.Decision != approval.OutcomeApprove || p.RemoteID != "" {
					t.Errorf("GetPost(department %q) = %s, reason %q, decision %q, remote id %q; want %s, %q, approve, none",
						dept, p.Status, p.FailureReason, p.Decision, p.RemoteID, tt.want, tt.reason)
				}
			}
			if err := tt.record(f, ""); !errors.Is(err, approval.ErrInvalid) {
				t.Errorf("event without a post id: %v, want ErrInvalid", err)
			}
		})
	}
}
