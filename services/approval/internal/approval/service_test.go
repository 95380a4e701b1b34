package approval_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
	// smtpURL is the mailbox's (or the given) SMTP server.
	smtpURL string
	// keys trusts the key the service seals approvals with, as the publisher's keyring does.
	keys *seal.Keyring
}

// setup wires the Service to real parts: SQLite, a real SMTP server (the mailbox) and JetStream.
func setup(t *testing.T, smtpURL string) fixture {
	t.Helper()
	return setupSMTP(t, smtpURL, nil)
}

// setupWith is setup with the service's configuration adjusted by adjust.
func setupWith(t *testing.T, adjust func(*approval.Config)) fixture {
	t.Helper()
	return setupSMTP(t, "", adjust)
}

func setupSMTP(t *testing.T, smtpURL string, adjust func(*approval.Config)) fixture {
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
	cfg := approval.Config{PublicURL: "http://gw.example", TokenTTL: time.Hour, Now: func() time.Time { return now }}
	if adjust != nil {
		adjust(&cfg)
	}
	svc, err := approval.NewService(store, mailer, announcer, cfg, log)
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
	return fixture{svc: svc, mail: mb, store: store, js: js, dept: dept, now: &now, keys: keys, smtpURL: smtpURL}
}

func (f fixture) request(t *testing.T, text string) string {
	t.Helper()
	id := uuid.NewString()
	r := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: text, RequestedBy: "jo", RequestedAt: *f.now}
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
	// Minutes on, only the two emails are due: the reminders come later.
	due, err := f.store.DueOutbox(ctx, f.now.Add(5*time.Minute), 10)
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
	*f.now = f.now.Add(10 * time.Minute) // past the backoff, before the first reminder

	for range 2 {
		if err := f.svc.DrainOutbox(ctx); err != nil {
			t.Fatal(err)
		}
	}
	links := f.links(t)
	if len(f.mail.Messages()) != 2 || links["a@example.com"] == "" || links["b@example.com"] == "" {
		t.Errorf("after SMTP came back: %d emails, links %v; want one per approver", len(f.mail.Messages()), links)
	}
	// Only the reminders (half an hour in, and later) are left.
	if due, err := f.store.DueOutbox(ctx, f.now.Add(10*time.Minute), 10); err != nil || len(due) != 0 {
		t.Errorf("outbox after delivery = %+v, %v; want no email before the reminders", due, err)
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

// TestRemovedApproverLinksStayDead: the links mailed to an approver stop working when they are removed,
// say so plainly, and do not come back when the same address is added again.
func TestRemovedApproverLinksStayDead(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	f.request(t, "Approve me")
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	links := f.links(t)
	approvers, err := f.svc.ListApprovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var removed approval.Approver
	for _, a := range approvers {
		if a.Email == "a@example.com" {
			removed = a
		}
	}
	if err := f.svc.RemoveApprover(ctx, removed.ID); err != nil {
		t.Fatal(err)
	}
	tok := token(links["a@example.com"])
	check := func(when string) {
		t.Helper()
		if _, err := f.svc.ViewApproval(ctx, tok); !errors.Is(err, approval.ErrLinkRevoked) {
			t.Errorf("%s: viewing the removed approver's link: %v, want ErrLinkRevoked", when, err)
		}
		if _, err := f.svc.Decide(ctx, tok, approval.OutcomeApprove, "", ""); !errors.Is(err, approval.ErrLinkRevoked) {
			t.Errorf("%s: deciding through the removed approver's link: %v, want ErrLinkRevoked", when, err)
		}
	}
	check("after removal")
	back, err := f.svc.AddApprover(ctx, "a@example.com", "A again")
	if err != nil {
		t.Fatal(err)
	}
	if back.ID == removed.ID {
		t.Errorf("re-added approver has the removed one's id %s", removed.ID)
	}
	check("after the address was added again")
	if p, err := f.svc.Decide(ctx, token(links["b@example.com"]), approval.OutcomeReject, "", ""); err != nil || p.Status != approval.StatusRejected {
		t.Errorf("the other approver's link = %+v, %v; want it to still work", p, err)
	}
}

func TestNamesRefuseControlCharacters(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	tests := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"plain", "Comms Team", false},
		{"accents and right-to-left marks", "Équipe\u200f", false},
		{"CR LF", "Jo\r\nBcc: x@example.com", true},
		{"tab", "Jo\tSmith", true},
		{"NUL", "Jo\x00", true},
		{"bidi override", "Jo\u202eevil", true},
		{"invalid UTF-8", "Jo\xff", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.CreateDepartment(ctx, tt.value)
			if got := errors.Is(err, approval.ErrInvalid); got != tt.wantErr || (!tt.wantErr && err != nil) {
				t.Errorf("CreateDepartment(%q) = %v; want ErrInvalid %v", tt.value, err, tt.wantErr)
			}
			_, err = f.svc.AddApprover(ctx, fmt.Sprintf("n%d@example.com", i), tt.value)
			if got := errors.Is(err, approval.ErrInvalid); got != tt.wantErr || (!tt.wantErr && err != nil) {
				t.Errorf("AddApprover(name %q) = %v; want ErrInvalid %v", tt.value, err, tt.wantErr)
			}
		})
	}
}

func TestSubmitRefusesControlCharacters(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	tests := []struct {
		name        string
		text, by    string
		wantInvalid bool
	}{
		{"lines and tabs", "Line one\r\nLine two\n\tindented", "jo", false},
		{"NUL in the text", "Hello\x00", "jo", true},
		{"bidi override in the text", "Pay \u202e0001", "jo", true},
		{"escape in the text", "\x1b[31mred", "jo", true},
		{"line break in the requester", "Hello", "jo\r\nx", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.svc.Submit(ctx, approval.Request{PostID: uuid.NewString(), DepartmentID: f.dept.ID, Text: tt.text, RequestedBy: tt.by})
			if errors.Is(err, approval.ErrInvalid) != tt.wantInvalid || (!tt.wantInvalid && err != nil) {
				t.Errorf("Submit = %v; want ErrInvalid %v", err, tt.wantInvalid)
			}
		})
	}
}

// TestFailRequestRecordsAFailedPost: a request that can never be processed becomes a failed post with a
// reason, without its text and without asking anyone; a request that names nothing real is refused.
func TestFailRequestRecordsAFailedPost(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	r := approval.Request{PostID: uuid.NewString(), DepartmentID: f.dept.ID, Text: "Hi\x00", RequestedBy: "jo", IdempotencyKey: "k\x00"}
	cause := f.svc.Submit(ctx, r)
	if !errors.Is(cause, approval.ErrInvalid) {
		t.Fatalf("Submit = %v, want ErrInvalid", cause)
	}
	for range 2 { // a redelivered failure changes nothing
		if err := f.svc.FailRequest(ctx, r, cause); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.svc.GetPost(ctx, r.PostID, f.dept.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := approval.Post{
		ID: r.PostID, DepartmentID: f.dept.ID, RequestedBy: "jo", Status: approval.StatusFailed,
		FailureReason: "Herald refused this request: the text contains the control character U+0000 at character 3",
	}
	if diff := cmp.Diff(want, p, cmpopts.IgnoreFields(approval.Post{}, "CreatedAt", "UpdatedAt")); diff != "" {
		t.Errorf("failed post (-want +got):\n%s", diff)
	}
	audit, err := f.svc.ListAudit(ctx, r.PostID)
	if err != nil || len(audit) != 1 || audit[0].ToStatus != approval.StatusFailed {
		t.Errorf("audit = %+v, %v; want one entry to failed", audit, err)
	}
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mail.Messages()); n != 0 {
		t.Errorf("%d approval emails for a failed request, want none", n)
	}

	other := approval.Request{PostID: uuid.NewString(), DepartmentID: f.dept.ID, Text: "Hello"}
	if err := f.svc.FailRequest(ctx, other, errors.New("pq: connection reset")); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.svc.GetPost(ctx, other.PostID, ""); p.Status != approval.StatusFailed || p.FailureReason != approval.ReasonNotProcessed {
		t.Errorf("post given up after transient failures = %q, %q; want failed with the generic reason", p.Status, p.FailureReason)
	}
	for name, bad := range map[string]approval.Request{
		"post id that is not a UUID": {PostID: "nope", DepartmentID: f.dept.ID},
		"unknown department":         {PostID: uuid.NewString(), DepartmentID: "nope"},
	} {
		if err := f.svc.FailRequest(ctx, bad, cause); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("%s: FailRequest = %v, want ErrInvalid", name, err)
		}
	}
}

// TestOpsRetryOrResolveSettlesAFailedOrUnknownPost: after ops retry a failed publication (or resolve an
// unknown one) the publisher reports it published, and the department sees that; published stays final and
// a repeated outcome changes nothing.
func TestOpsRetryOrResolveSettlesAFailedOrUnknownPost(t *testing.T) {
	ctx := context.Background()
	report := func(id string) approval.PublisherReport {
		return approval.PublisherReport{PostID: id, Channel: "x", RemoteID: "1850000000000000200", RemoteURL: "https://x.com/i/web/status/1850000000000000200", PublishedAt: time.Now()}
	}
	for _, first := range []approval.Status{approval.StatusFailed, approval.StatusUnknown} {
		t.Run(string(first), func(t *testing.T) {
			f := setup(t, "")
			id := f.request(t, "Retried by ops "+string(first))
			if err := f.svc.DrainOutbox(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Decide(ctx, token(f.links(t)["a@example.com"]), approval.OutcomeApprove, "", "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			bad := approval.PublisherReport{PostID: id, Channel: "x", Reason: "first attempt"}
			record := f.svc.RecordFailed
			if first == approval.StatusUnknown {
				record = f.svc.RecordUnknown
			}
			if err := record(ctx, bad); err != nil {
				t.Fatal(err)
			}
			if err := f.svc.RecordPublished(ctx, report(id)); err != nil {
				t.Fatal(err)
			}
			p, err := f.svc.GetPost(ctx, id, f.dept.ID)
			if err != nil || p.Status != approval.StatusPublished || p.RemoteID != "1850000000000000200" {
				t.Fatalf("after the retry: %s %q (%v); want published with the remote id", p.Status, p.RemoteID, err)
			}
			// A late failure does not undo a publication.
			if err := f.svc.RecordFailed(ctx, approval.PublisherReport{PostID: id, Channel: "x", Reason: "late"}); err != nil {
				t.Fatal(err)
			}
			if p, _ := f.svc.GetPost(ctx, id, f.dept.ID); p.Status != approval.StatusPublished {
				t.Errorf("a late failure turned a published post %s", p.Status)
			}
		})
	}
}
