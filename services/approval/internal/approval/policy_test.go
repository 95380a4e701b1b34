package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
)

// answer is one approver's answer in a mode test.
type answer struct {
	who     string
	outcome approval.Outcome
	// after is the post's status after this answer.
	after approval.Status
}

func TestPolicyModes(t *testing.T) {
	approve, reject := approval.OutcomeApprove, approval.OutcomeReject
	pending, approved, rejected := approval.StatusPending, approval.StatusApproved, approval.StatusRejected
	tests := []struct {
		mode    string
		answers []answer
	}{
		{"first", []answer{{"a", approve, approved}}},
		{"first", []answer{{"b", reject, rejected}}},
		{"all", []answer{{"a", approve, pending}, {"b", approve, pending}, {"c", approve, approved}}},
		{"all", []answer{{"a", approve, pending}, {"b", reject, rejected}}},
		{"quorum:2", []answer{{"a", reject, pending}, {"b", approve, pending}, {"c", approve, approved}}},
		{"quorum:2", []answer{{"a", approve, pending}, {"b", approve, approved}}},
		// Two of three rejected: two approvals can no longer be reached.
		{"quorum:2", []answer{{"a", reject, pending}, {"c", reject, rejected}}},
	}
	f := setup(t, "")
	ctx := context.Background()
	if _, err := f.svc.AddApprover(ctx, "c@example.com", "C"); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, Mode: tt.mode}); err != nil {
			t.Fatal(err)
		}
		id := f.request(t, "Mode test "+tt.mode+" "+string(rune('A'+i)))
		f.advance(t, 0)
		links := f.links(t) // the latest email per approver: this post's
		for j, a := range tt.answers {
			p, err := f.svc.Decide(ctx, token(links[a.who+"@example.com"]), a.outcome, "answer "+a.who, "test")
			if err != nil {
				t.Fatalf("case %d (%s), answer %d: %v", i, tt.mode, j, err)
			}
			if p.Status != a.after {
				t.Errorf("case %d (%s): after %s %ss the post is %s, want %s", i, tt.mode, a.who, a.outcome, p.Status, a.after)
			}
			if len(p.Decisions) != j+1 {
				t.Errorf("case %d (%s): %d decisions shown, want %d", i, tt.mode, len(p.Decisions), j+1)
			}
		}
		p, err := f.svc.GetPost(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if p.Status == pending {
			t.Errorf("case %d (%s): still pending after every answer", i, tt.mode)
		}
		// A settled post takes no more answers.
		for _, who := range []string{"a", "b", "c"} {
			if _, err := f.svc.Decide(ctx, token(links[who+"@example.com"]), approve, "", "test"); err == nil {
				t.Errorf("case %d (%s): %s answered after the post settled", i, tt.mode, who)
			}
		}
	}
}

// TestRemindersSkipApproversWhoAnswered: in mode all, the approver who answered is not reminded; the
// others are.
func TestRemindersSkipApproversWhoAnswered(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, Mode: "all"}); err != nil {
		t.Fatal(err)
	}
	f.request(t, "All of you")
	f.advance(t, 0)
	if _, err := f.svc.Decide(ctx, token(f.links(t)["a@example.com"]), approval.OutcomeApprove, "", "test"); err != nil {
		t.Fatal(err)
	}
	f.advance(t, 31*time.Minute)
	var reminded []string
	for _, m := range f.mail.Messages() {
		if strings.HasPrefix(m.Subject, "Reminder:") {
			reminded = append(reminded, m.To[0])
		}
	}
	if len(reminded) != 1 || reminded[0] != "b@example.com" {
		t.Errorf("reminded %v; want only b, who has not answered", reminded)
	}
}

func TestSelfApproval(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	submit := func() string {
		id := uuid.NewString()
		r := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: "My own " + id[:8], RequestedBy: "A@example.com", RequestedAt: *f.now}
		if err := f.svc.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
		f.advance(t, 0)
		return id
	}
	submit()
	links := f.links(t)
	if _, err := f.svc.Decide(ctx, token(links["a@example.com"]), approval.OutcomeApprove, "", "test"); !errors.Is(err, approval.ErrSelfApproval) {
		t.Errorf("requester approving their own post: %v; want ErrSelfApproval", err)
	}
	if p, err := f.svc.Decide(ctx, token(links["b@example.com"]), approval.OutcomeApprove, "", "test"); err != nil || p.Status != approval.StatusApproved {
		t.Errorf("another approver = %s, %v; want approved", p.Status, err)
	}
	if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, AllowSelfApproval: true}); err != nil {
		t.Fatal(err)
	}
	submit()
	if p, err := f.svc.Decide(ctx, token(f.links(t)["a@example.com"]), approval.OutcomeApprove, "", "test"); err != nil || p.Status != approval.StatusApproved {
		t.Errorf("self-approval allowed by the policy = %s, %v; want approved", p.Status, err)
	}
}

// TestPostWithoutApproverIsMailedOnceOneIsAdded: no approver, no silent parking.
func TestPostWithoutApproverIsMailedOnceOneIsAdded(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	as, err := f.svc.ListApprovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if err := f.svc.RemoveApprover(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	id := f.request(t, "Anyone there?")
	f.advance(t, 0)
	p, err := f.svc.GetPost(ctx, id, "")
	if err != nil || p.Status != approval.StatusPending || p.WaitingFor != approval.WaitingForApprover {
		t.Fatalf("post = %s (%q), %v; want pending, waiting for an approver", p.Status, p.WaitingFor, err)
	}
	if n, err := f.svc.CountWaiting(ctx); err != nil || n != 1 {
		t.Errorf("CountWaiting = %d, %v; want 1", n, err)
	}
	if ws, err := f.svc.ListPosts(ctx, approval.PostFilter{WaitingForApprover: true}); err != nil || len(ws) != 1 || ws[0].ID != id {
		t.Errorf("ListPosts(waiting) = %d posts, %v; want this one", len(ws), err)
	}
	if len(f.mail.Messages()) != 0 {
		t.Fatalf("%d emails with no approver", len(f.mail.Messages()))
	}
	if _, err := f.svc.AddApprover(ctx, "new@example.com", "New"); err != nil {
		t.Fatal(err)
	}
	f.advance(t, 0)
	f.advance(t, 0) // a second tick asks nobody twice
	if msgs := f.mail.Messages(); len(msgs) != 1 || msgs[0].To[0] != "new@example.com" {
		t.Fatalf("emails after adding an approver = %d; want one to new@example.com", len(msgs))
	}
	p, _ = f.svc.GetPost(ctx, id, "")
	if p.WaitingFor != "" {
		t.Errorf("waiting for %q after the approver was asked", p.WaitingFor)
	}
	if n, _ := f.svc.CountWaiting(ctx); n != 0 {
		t.Errorf("CountWaiting = %d; want 0", n)
	}
	if p, err := f.svc.Decide(ctx, token(f.links(t)["new@example.com"]), approval.OutcomeApprove, "", "test"); err != nil || p.Status != approval.StatusApproved {
		t.Errorf("the new approver's decision = %s, %v", p.Status, err)
	}
}

// TestApproveWithEdits: the edited text is what the approval seals and the publisher gets; the request's
// text stays beside it. Edits are held to the request's rules.
func TestApproveWithEdits(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	id := f.request(t, "Welcome to our new joiners!!")
	f.advance(t, 0)
	links := f.links(t)
	bad := []struct{ name, text string }{
		{"too long", strings.Repeat("x", 281)},
		{"control character", "Hello\x07"},
		{"blank", "   "},
	}
	for _, tt := range bad {
		if _, err := f.svc.DecideEdited(ctx, token(links["a@example.com"]), approval.OutcomeApprove, "", "test", tt.text); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("%s edit: %v; want ErrInvalid", tt.name, err)
		}
	}
	const edited = "Welcome to our new joiners! 🎉"
	p, err := f.svc.DecideEdited(ctx, token(links["a@example.com"]), approval.OutcomeApprove, "tidied", "test", strings.ReplaceAll(edited, "\n", "\r\n"))
	if err != nil || p.Status != approval.StatusApproved || p.Text != "Welcome to our new joiners!!" || p.FinalText != edited || p.Published() != edited {
		t.Fatalf("DecideEdited = %+v, %v", p, err)
	}
	f.advance(t, 0)
	ev := &eventsv1.PostApproved{}
	lastEvent(t, f.js, eventbus.SubjectApproved, ev)
	if ev.GetPostId() != id || ev.GetText() != edited {
		t.Fatalf("PostApproved = %v; want the edited text", ev)
	}
	stmt := seal.Approval{PostID: id, DepartmentID: f.dept.ID, TextSHA256: seal.TextHash(edited), Approver: "a@example.com", ApprovedAt: p.DecidedAt}
	if err := f.keys.Verify(stmt, seal.Seal{KeyID: ev.GetSeal().GetKeyId(), Signature: ev.GetSeal().GetSignature()}); err != nil {
		t.Errorf("the seal does not cover the edited text: %v", err)
	}
	audit, _ := f.svc.ListAudit(ctx, id)
	if last := audit[len(audit)-1]; last.Action != "approve_with_edits" {
		t.Errorf("audit action = %q; want approve_with_edits", last.Action)
	}
}

func TestSetPolicyRefusesNonsense(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	tests := []struct {
		name string
		in   approval.PolicyInput
	}{
		{"unknown mode", approval.PolicyInput{DepartmentID: f.dept.ID, Mode: "most"}},
		{"quorum zero", approval.PolicyInput{DepartmentID: f.dept.ID, Mode: "quorum:0"}},
		{"quorum above the listed approvers", approval.PolicyInput{DepartmentID: f.dept.ID, Mode: "quorum:2", ApproverEmails: []string{"a@example.com"}}},
		{"unknown approver", approval.PolicyInput{DepartmentID: f.dept.ID, ApproverEmails: []string{"nobody@example.com"}}},
		{"expiry too short", approval.PolicyInput{DepartmentID: f.dept.ID, TTL: time.Second}},
		{"plain http webhook", approval.PolicyInput{DepartmentID: f.dept.ID, TeamsWebhookURL: "http://teams.example/hook"}},
	}
	for _, tt := range tests {
		if _, _, err := f.svc.SetPolicy(ctx, tt.in); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", tt.name, err)
		}
	}
	if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: uuid.NewString()}); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("unknown department: %v; want ErrNotFound", err)
	}
	p, asks, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, Mode: "quorum:2", ApproverEmails: []string{"A@example.com", "b@example.com"}, TTL: 24 * time.Hour})
	if err != nil || p.ModeString() != "quorum:2" || p.TTL != 24*time.Hour || len(asks) != 2 {
		t.Errorf("SetPolicy = %+v asking %v, %v", p, asks, err)
	}
}

// TestPolicyExpiry: a department's expiry sets the post's deadline.
func TestPolicyExpiry(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, TTL: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	id := f.request(t, "Quick")
	f.advance(t, 0)
	f.advance(t, 10*time.Minute)
	if p, _ := f.svc.GetPost(ctx, id, ""); p.Status != approval.StatusExpired {
		t.Errorf("after the department's 10 minutes the post is %s; want expired", p.Status)
	}
}

// TestEditsOnlyWhenOnePersonDecides: with several approvers each approves the text they saw, so an edit
// (by the last one, say) would be published on the others' approvals of the original: it is refused, and
// approving the text as it is still counts.
func TestEditsOnlyWhenOnePersonDecides(t *testing.T) {
	for _, mode := range []string{"all", "quorum:2"} {
		t.Run(mode, func(t *testing.T) {
			f := setup(t, "")
			ctx := context.Background()
			if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, Mode: mode}); err != nil {
				t.Fatal(err)
			}
			id := f.request(t, "Approved as written")
			f.advance(t, 0)
			links := f.links(t)
			if _, err := f.svc.Decide(ctx, token(links["a@example.com"]), approval.OutcomeApprove, "", "test"); err != nil {
				t.Fatal(err)
			}
			_, err := f.svc.DecideEdited(ctx, token(links["b@example.com"]), approval.OutcomeApprove, "", "test", "Something a approved never saw")
			if !errors.Is(err, approval.ErrInvalid) {
				t.Fatalf("an edit under %s = %v, want ErrInvalid", mode, err)
			}
			p, err := f.svc.DecideEdited(ctx, token(links["b@example.com"]), approval.OutcomeApprove, "", "test", "")
			if err != nil {
				t.Fatalf("approving as written after the refused edit: %v", err)
			}
			if p.ID != id || p.Status != approval.StatusApproved || p.FinalText != "" {
				t.Errorf("post = %s, final text %q; want approved with the text as written", p.Status, p.FinalText)
			}
		})
	}
}
