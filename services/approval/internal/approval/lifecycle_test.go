package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// advance moves the fixture's clock, then runs what the outbox loop runs on each tick.
func (f fixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	*f.now = f.now.Add(d)
	ctx := context.Background()
	if _, err := f.svc.ExpireOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
}

// subjects counts the emails in the mailbox by subject.
func (f fixture) subjects() map[string]int {
	out := map[string]int{}
	for _, m := range f.mail.Messages() {
		out[m.Subject]++
	}
	return out
}

// TestUndecidedPostIsRemindedThenExpires: with a one-hour deadline, both approvers are reminded once at
// half an hour and once at 54 minutes, and at the deadline the post expires: audit row, PostExpired
// event, and links that say "expired".
func TestUndecidedPostIsRemindedThenExpires(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	id := f.request(t, "Nobody will answer this")
	f.advance(t, 0)
	link := f.links(t)["a@example.com"]
	const first, reminder = "Approval needed: post from HR", "Reminder: Approval needed: post from HR"

	steps := []struct {
		after         time.Duration
		wantReminders int
		wantStatus    approval.Status
	}{
		{29 * time.Minute, 0, approval.StatusPending},
		{2 * time.Minute, 2, approval.StatusPending},  // half the deadline
		{2 * time.Minute, 2, approval.StatusPending},  // nothing new
		{22 * time.Minute, 4, approval.StatusPending}, // nine tenths
		{6 * time.Minute, 4, approval.StatusExpired},  // the deadline passed
		{time.Hour, 4, approval.StatusExpired},
	}
	for i, st := range steps {
		f.advance(t, st.after)
		got := f.subjects()
		if got[first] != 2 || got[reminder] != st.wantReminders {
			t.Errorf("step %d: emails %v; want 2 requests and %d reminders", i, got, st.wantReminders)
		}
		p, err := f.svc.GetPost(ctx, id, "")
		if err != nil || p.Status != st.wantStatus {
			t.Fatalf("step %d: post = %s, %v; want %s", i, p.Status, err, st.wantStatus)
		}
	}

	v, err := f.svc.ViewApproval(ctx, token(link))
	if err != nil || v.State != approval.LinkExpired {
		t.Errorf("link after expiry = %s, %v; want expired", v.State, err)
	}
	if _, err := f.svc.Decide(ctx, token(link), approval.OutcomeApprove, "", "test"); !errors.Is(err, approval.ErrTokenExpired) {
		t.Errorf("deciding after expiry: %v; want ErrTokenExpired", err)
	}
	audit, err := f.svc.ListAudit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if last := audit[len(audit)-1]; last.Action != "expired" || last.FromStatus != approval.StatusPending || last.ToStatus != approval.StatusExpired {
		t.Errorf("last audit entry = %+v; want pending -> expired", last)
	}
	ev := &eventsv1.PostExpired{}
	lastEvent(t, f.js, eventbus.SubjectExpired, ev)
	if ev.GetPostId() != id || ev.GetDepartmentId() != f.dept.ID {
		t.Errorf("PostExpired = %v; want post %s of HR", ev, id)
	}
}

// TestRemindersSkipDecidedPosts: a reminder due after the decision mails nobody.
func TestRemindersSkipDecidedPosts(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	f.request(t, "Quick yes")
	f.advance(t, 0)
	if _, err := f.svc.Decide(ctx, token(f.links(t)["b@example.com"]), approval.OutcomeReject, "no", "test"); err != nil {
		t.Fatal(err)
	}
	f.advance(t, 2*time.Hour)
	if n := len(f.mail.Messages()); n != 2 {
		t.Errorf("%d emails; want only the 2 requests", n)
	}
	if due, err := f.store.DueOutbox(ctx, f.now.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("outbox = %+v, %v; want every reminder done with", due, err)
	}
}

func TestCancelPost(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	id := f.request(t, "Never mind")
	f.advance(t, 0)
	link := f.links(t)["a@example.com"]

	if _, err := f.svc.CancelPost(ctx, id, uuid.NewString(), "key-1", "department:other"); !errors.Is(err, approval.ErrOtherDepartment) {
		t.Errorf("another department cancelling: %v; want ErrOtherDepartment", err)
	}
	p, err := f.svc.CancelPost(ctx, id, f.dept.ID, "key-1", "department:"+f.dept.ID)
	if err != nil || p.Status != approval.StatusCancelled {
		t.Fatalf("CancelPost = %s, %v; want cancelled", p.Status, err)
	}
	if _, err := f.svc.CancelPost(ctx, id, "", "ops", "ops"); !errors.Is(err, approval.ErrClosed) {
		t.Errorf("cancelling twice: %v; want ErrClosed", err)
	}
	v, err := f.svc.ViewApproval(ctx, token(link))
	if err != nil || v.State != approval.LinkCancelled {
		t.Errorf("link after cancelling = %s, %v; want cancelled", v.State, err)
	}
	if _, err := f.svc.Decide(ctx, token(link), approval.OutcomeApprove, "", "test"); !errors.Is(err, approval.ErrClosed) || !errors.Is(err, approval.ErrPostCancelled) {
		t.Errorf("deciding a cancelled post: %v; want ErrPostCancelled, an ErrClosed", err)
	}
	f.advance(t, 2*time.Hour) // no reminders, no expiry for a cancelled post
	if p, _ := f.svc.GetPost(ctx, id, ""); p.Status != approval.StatusCancelled || len(f.mail.Messages()) != 2 {
		t.Errorf("after the deadline: %s with %d emails; want cancelled with the 2 requests", p.Status, len(f.mail.Messages()))
	}
	ev := &eventsv1.PostCancelled{}
	lastEvent(t, f.js, eventbus.SubjectCancelled, ev)
	if ev.GetPostId() != id {
		t.Errorf("PostCancelled = %v; want post %s", ev, id)
	}

	// A decided post cannot be cancelled.
	id2 := f.request(t, "Decided")
	f.advance(t, 0)
	if _, err := f.svc.Decide(ctx, token(f.links(t)["a@example.com"]), approval.OutcomeReject, "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CancelPost(ctx, id2, f.dept.ID, "key-1", "department"); !errors.Is(err, approval.ErrClosed) {
		t.Errorf("cancelling a decided post: %v; want ErrClosed", err)
	}
}

// TestResendReplacesLinks: fresh links go out and the old ones stop.
func TestResendReplacesLinks(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	id := f.request(t, "Once more")
	f.advance(t, 0)
	old := f.links(t)
	n, err := f.svc.ResendApprovals(ctx, id, "ops")
	if err != nil || n != 2 {
		t.Fatalf("ResendApprovals = %d, %v; want 2", n, err)
	}
	f.advance(t, time.Second)
	fresh := f.links(t) // the latest email per approver
	if len(f.mail.Messages()) != 4 || fresh["a@example.com"] == old["a@example.com"] {
		t.Fatalf("%d emails, links %v then %v; want a fresh link each", len(f.mail.Messages()), old, fresh)
	}
	v, err := f.svc.ViewApproval(ctx, token(old["a@example.com"]))
	if err != nil || v.State != approval.LinkReplaced {
		t.Errorf("old link = %s, %v; want replaced", v.State, err)
	}
	if _, err := f.svc.Decide(ctx, token(old["a@example.com"]), approval.OutcomeApprove, "", "test"); !errors.Is(err, approval.ErrLinkReplaced) {
		t.Errorf("deciding through the old link: %v; want ErrLinkReplaced", err)
	}
	p, err := f.svc.Decide(ctx, token(fresh["a@example.com"]), approval.OutcomeApprove, "", "test")
	if err != nil || p.Status != approval.StatusApproved {
		t.Errorf("deciding through the fresh link = %s, %v; want approved", p.Status, err)
	}
	if _, err := f.svc.ResendApprovals(ctx, id, "ops"); !errors.Is(err, approval.ErrClosed) {
		t.Errorf("re-sending a decided post: %v; want ErrClosed", err)
	}
}

// lastEvent decodes the last message on subject into m.
func lastEvent(t *testing.T, js jetstream.JetStream, subject string, m proto.Message) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("no event on %s: %v", subject, err)
	}
	if err := proto.Unmarshal(msg.Data, m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(subject, "herald.posts.") {
		t.Fatalf("subject %s", subject)
	}
}
