package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// testParallelDecisions has many approvers decide one post at the same moment, each through their own
// link: exactly one decision may win, and it alone may leave a trace (token used, audit entry, outbox
// event). The others must hear that the post is closed (or, for the same token, used), not a database
// error such as a busy or serialization failure.
func testParallelDecisions(t *testing.T, s approval.Store) {
	const n = 20
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := post(t, s, hr, at)
	when := at.Add(time.Minute)
	params := make([]approval.DecideParams, n)
	for i := range n {
		a := approver(t, s, fmt.Sprintf("approver-%02d@example.com", i))
		hash := fmt.Sprintf("parallel-token-%02d", i)
		if err := s.CreateToken(ctx, approval.Token{Hash: hash, PostID: p.ID, ApproverID: a.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		outcome, status, kind := approval.OutcomeApprove, approval.StatusApproved, approval.OutboxPostApproved
		if i%2 == 1 {
			outcome, status, kind = approval.OutcomeReject, approval.StatusRejected, approval.OutboxPostRejected
		}
		params[i] = approval.DecideParams{
			TokenHash: hash, PostID: p.ID, Status: status, Outcome: outcome, Approver: a.Email, Comment: hash, At: when,
			Audit:        approval.AuditEntry{PostID: p.ID, At: when, Actor: a.Email, Action: string(outcome), FromStatus: approval.StatusPending, ToStatus: status, Comment: hash},
			Announcement: approval.OutboxItem{Kind: kind, PostID: p.ID, CreatedAt: when, NextAttemptAt: when},
		}
	}

	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Decide(ctx, params[i])
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("decisions %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, approval.ErrClosed) && !errors.Is(err, approval.ErrTokenUsed):
			t.Errorf("decision %d: %v; want success, ErrClosed or ErrTokenUsed", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no decision succeeded: %v", errs)
	}
	w := params[winner]

	got, err := s.GetPost(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != w.Status || got.Decision != w.Outcome || got.DecidedBy != w.Approver || got.Comment != w.Comment {
		t.Errorf("post = %s by %s (%q), want the winner's %s by %s", got.Status, got.DecidedBy, got.Comment, w.Status, w.Approver)
	}
	for i, pp := range params {
		tok, err := s.GetToken(ctx, pp.TokenHash)
		if err != nil {
			t.Fatal(err)
		}
		if used := !tok.UsedAt.IsZero(); used != (i == winner) {
			t.Errorf("token %d used = %v; only the winner's (%d) may be", i, used, winner)
		}
	}
	audit, err := s.ListAudit(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var decisions []approval.AuditEntry
	for _, a := range audit {
		if a.FromStatus == approval.StatusPending {
			decisions = append(decisions, a)
		}
	}
	if len(decisions) != 1 || decisions[0].Actor != w.Approver || decisions[0].ToStatus != w.Status {
		t.Errorf("decisions in the audit = %+v; want exactly the winner's", decisions)
	}
	due, err := s.DueOutbox(ctx, when.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Kind != w.Announcement.Kind || due[0].PostID != p.ID {
		t.Errorf("outbox = %+v; want exactly the winner's announcement (%s)", due, w.Announcement.Kind)
	}
}

// testClaimOutbox: a claimed item is not claimable again while its lease runs, is again once the lease
// ended (its worker died), and a deferred item gives its lease up.
func testClaimOutbox(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	createPost(t, s, p,
		approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: "a", CreatedAt: at, NextAttemptAt: at},
		approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: "b", CreatedAt: at, NextAttemptAt: at.Add(time.Second)},
	)
	lease := time.Minute
	claimed, err := s.ClaimOutbox(ctx, at.Add(time.Second), at.Add(time.Second+lease), 10)
	if err != nil || len(claimed) != 2 || claimed[0].ApproverID != "a" || claimed[1].ApproverID != "b" {
		t.Fatalf("first claim = %+v, %v; want both items, oldest first", claimed, err)
	}
	if again, err := s.ClaimOutbox(ctx, at.Add(30*time.Second), at.Add(time.Hour), 10); err != nil || len(again) != 0 {
		t.Fatalf("claim during the lease = %+v, %v; want nothing", again, err)
	}
	if err := s.DeferOutbox(ctx, claimed[0].ID, at.Add(40*time.Second), "smtp down"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimOutbox(ctx, at.Add(45*time.Second), at.Add(time.Hour), 10)
	if err != nil || len(got) != 1 || got[0].ApproverID != "a" || got[0].Attempts != 1 {
		t.Fatalf("claim after deferring = %+v, %v; want the deferred item only (the other is still leased)", got, err)
	}
	got, err = s.ClaimOutbox(ctx, at.Add(time.Second+lease), at.Add(2*time.Hour), 10)
	if err != nil || len(got) != 1 || got[0].ApproverID != "b" {
		t.Fatalf("claim after the lease ended = %+v, %v; want the abandoned item", got, err)
	}
}

// testParallelClaims has 20 workers claim from one outbox at once, a few items at a time: every item
// must be claimed exactly once, and no worker may see a database error.
func testParallelClaims(t *testing.T, s approval.Store) {
	const workers, items = 20, 60
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	outbox := make([]approval.OutboxItem, items)
	for i := range outbox {
		outbox[i] = approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: fmt.Sprintf("a%02d", i), CreatedAt: at, NextAttemptAt: at}
	}
	createPost(t, s, p, outbox...)
	var mu sync.Mutex
	seen := map[int64]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			<-start
			for {
				got, err := s.ClaimOutbox(ctx, at, at.Add(time.Hour), 3)
				if err != nil {
					t.Errorf("ClaimOutbox: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					seen[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(seen) != items {
		t.Errorf("%d items claimed, want %d", len(seen), items)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("item %d claimed %d times", id, n)
		}
	}
}

// testParallelSweeps: ten sweepers (replicas) find the same overdue post and close it at once: exactly one
// succeeds and leaves an audit entry and an announcement; the others hear ErrClosed.
func testParallelSweeps(t *testing.T, s approval.Store) {
	const n = 10
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	p.ExpiresAt = at.Add(time.Hour)
	createPost(t, s, p)
	late := newPost(hr, at)
	late.ExpiresAt = at.Add(2 * time.Hour)
	createPost(t, s, late)
	when := at.Add(time.Hour)
	ids, err := s.OverduePosts(ctx, when, 10)
	if err != nil || len(ids) != 1 || ids[0] != p.ID {
		t.Fatalf("OverduePosts = %v, %v; want only the post due at %s", ids, err, when)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.ClosePost(ctx, approval.CloseParams{
				PostID: p.ID, Status: approval.StatusExpired, At: when,
				Audit:        approval.AuditEntry{PostID: p.ID, At: when, Actor: "herald", Action: "expired", FromStatus: approval.StatusPending, ToStatus: approval.StatusExpired},
				Announcement: approval.OutboxItem{Kind: approval.OutboxPostExpired, PostID: p.ID, CreatedAt: when, NextAttemptAt: when},
			})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, approval.ErrClosed):
			t.Errorf("sweeper %d: %v; want nil or ErrClosed", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d sweepers closed the post; want 1", won)
	}
	due, err := s.DueOutbox(ctx, when, 10)
	if err != nil || len(due) != 1 || due[0].Kind != approval.OutboxPostExpired {
		t.Errorf("outbox = %+v, %v; want one PostExpired announcement", due, err)
	}
	if got, err := s.GetPost(ctx, p.ID); err != nil || got.Status != approval.StatusExpired || !got.ExpiresAt.Equal(p.ExpiresAt) {
		t.Errorf("post = %s (deadline %s), %v; want expired, deadline kept", got.Status, got.ExpiresAt, err)
	}
	if ids, err := s.OverduePosts(ctx, when, 10); err != nil || len(ids) != 0 {
		t.Errorf("OverduePosts after the sweep = %v, %v; want none", ids, err)
	}
	err = s.ClosePost(ctx, approval.CloseParams{PostID: uuid.NewString(), Status: approval.StatusCancelled, At: when})
	wantErr(t, "closing an unknown post", err, approval.ErrNotFound)
}

// testParallelQuorumDecisions has 20 approvers approve one quorum:3 post at the same moment: exactly three
// decisions count (the post settles on the third), each approver's decision is recorded at most once, and
// exactly one announcement is written. The others hear that the post is closed.
func testParallelQuorumDecisions(t *testing.T, s approval.Store) {
	const n, quorum = 20, 3
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	p.Mode, p.Required = approval.ModeQuorum, quorum
	createPost(t, s, p)
	when := at.Add(time.Minute)
	params := make([]approval.DecideParams, n)
	for i := range n {
		a := approver(t, s, fmt.Sprintf("quorum-%02d@example.com", i))
		hash := fmt.Sprintf("quorum-token-%02d", i)
		if err := s.CreateToken(ctx, approval.Token{Hash: hash, PostID: p.ID, ApproverID: a.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		params[i] = approval.DecideParams{
			TokenHash: hash, PostID: p.ID, Status: approval.StatusApproved, Outcome: approval.OutcomeApprove,
			Approver: a.Email, ApproverID: a.ID, Comment: hash, At: when,
			Audit:        approval.AuditEntry{PostID: p.ID, At: when, Actor: a.Email, Action: "approve", FromStatus: approval.StatusPending},
			Announcement: approval.OutboxItem{Kind: approval.OutboxPostApproved, PostID: p.ID, CreatedAt: when, NextAttemptAt: when},
			Resolve: func(ds []approval.Decision) approval.Resolution {
				if len(ds) >= quorum {
					return approval.Resolution{Status: approval.StatusApproved}
				}
				return approval.Resolution{Status: approval.StatusPending}
			},
		}
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Decide(ctx, params[i])
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, approval.ErrClosed):
			t.Errorf("decision %d: %v; want success or ErrClosed", i, err)
		}
	}
	if ok != quorum {
		t.Errorf("%d decisions counted; want exactly the quorum, %d", ok, quorum)
	}
	ds, err := s.ListDecisions(ctx, p.ID)
	if err != nil || len(ds) != quorum {
		t.Errorf("ListDecisions = %d, %v; want %d", len(ds), err, quorum)
	}
	got, err := s.GetPost(ctx, p.ID)
	if err != nil || got.Status != approval.StatusApproved {
		t.Errorf("post = %s, %v; want approved", got.Status, err)
	}
	due, err := s.DueOutbox(ctx, when, 100)
	if err != nil || len(due) != 1 || due[0].Kind != approval.OutboxPostApproved {
		t.Errorf("outbox = %+v, %v; want exactly one approval announcement", due, err)
	}
	audit, err := s.ListAudit(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var pending, settled int
	for _, a := range audit {
		switch {
		case a.FromStatus == approval.StatusPending && a.ToStatus == approval.StatusPending:
			pending++
		case a.FromStatus == approval.StatusPending && a.ToStatus == approval.StatusApproved:
			settled++
		}
	}
	if pending != quorum-1 || settled != 1 {
		t.Errorf("audit has %d counted and %d settling decisions; want %d and 1", pending, settled, quorum-1)
	}
}

// testPolicies: a department has no policy until one is set; setting replaces it, approvers included, and
// a removed approver drops out of the list.
func testPolicies(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	_, err := s.GetPolicy(ctx, hr.ID)
	wantErr(t, "policy before one is set", err, approval.ErrNotFound)
	a, b := approver(t, s, "a@example.com"), approver(t, s, "b@example.com")
	p := approval.Policy{DepartmentID: hr.ID, ApproverIDs: []string{a.ID, b.ID}, Mode: approval.ModeQuorum, Quorum: 2,
		TTL: 48 * time.Hour, AllowSelfApproval: true, TeamsWebhookURL: "https://example.com/hook", UpdatedAt: at}
	if err := s.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPolicy(ctx, hr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	if err := s.RemoveApprover(ctx, a.ID, at); err != nil {
		t.Fatal(err)
	}
	p2 := approval.Policy{DepartmentID: hr.ID, AllApprovers: true, Mode: approval.ModeAll, UpdatedAt: at.Add(time.Hour)}
	as, err := s.ListPolicyApprovers(ctx, hr.ID)
	if err != nil || len(as) != 1 || as[0].ID != b.ID {
		t.Errorf("policy approvers after removing one = %+v, %v; want only b", as, err)
	}
	if err := s.SetPolicy(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetPolicy(ctx, hr.ID); err != nil || got.Mode != approval.ModeAll || !got.AllApprovers || len(got.ApproverIDs) != 0 {
		t.Errorf("replaced policy = %+v, %v", got, err)
	}
}

// testWaitingPosts: a post stored waiting for an approver is listed and counted until it is asked, once.
func testWaitingPosts(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	p.WaitingFor = approval.WaitingForApprover
	createPost(t, s, p)
	post(t, s, hr, at) // not waiting
	if n, err := s.CountWaiting(ctx); err != nil || n != 1 {
		t.Errorf("CountWaiting = %d, %v; want 1", n, err)
	}
	ws, err := s.ListPosts(ctx, approval.PostFilter{WaitingForApprover: true, Limit: 10})
	if err != nil || len(ws) != 1 || ws[0].ID != p.ID || ws[0].WaitingFor != approval.WaitingForApprover {
		t.Errorf("ListPosts(waiting) = %+v, %v; want the waiting post", ws, err)
	}
	audit := approval.AuditEntry{PostID: p.ID, At: at, Actor: "herald", Action: "asked", FromStatus: approval.StatusPending, ToStatus: approval.StatusPending}
	item := approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: "a", CreatedAt: at, NextAttemptAt: at}
	if err := s.AskApprovers(ctx, p.ID, approval.ModeAll, 1, at, audit, []approval.OutboxItem{item}); err != nil {
		t.Fatal(err)
	}
	err = s.AskApprovers(ctx, p.ID, approval.ModeAll, 1, at, audit, []approval.OutboxItem{item})
	wantErr(t, "asking twice", err, approval.ErrClosed)
	if ws, err := s.WaitingPosts(ctx, 10); err != nil || len(ws) != 0 {
		t.Errorf("WaitingPosts after asking = %+v, %v; want none", ws, err)
	}
	got, err := s.GetPost(ctx, p.ID)
	if err != nil || got.Mode != approval.ModeAll || got.Required != 1 || got.WaitingFor != "" {
		t.Errorf("asked post = %+v, %v", got, err)
	}
	if due, err := s.DueOutbox(ctx, at, 10); err != nil || len(due) != 1 {
		t.Errorf("outbox = %+v, %v; want one email", due, err)
	}
}

// testExtendOutboxLease: a live worker's renewal keeps its items from other claimers past the first lease;
// an item whose lease already ended is not renewed (another replica may have it now).
func testExtendOutboxLease(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	createPost(t, s, p,
		approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: "a", CreatedAt: at, NextAttemptAt: at},
	)
	claimed, err := s.ClaimOutbox(ctx, at, at.Add(30*time.Second), 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %+v, %v; want the item", claimed, err)
	}
	ids := []int64{claimed[0].ID}
	if n, err := s.ExtendOutboxLease(ctx, ids, at.Add(10*time.Second), at.Add(40*time.Second)); err != nil || n != 1 {
		t.Fatalf("renewal during the lease = %d, %v; want 1", n, err)
	}
	if again, err := s.ClaimOutbox(ctx, at.Add(35*time.Second), at.Add(time.Hour), 10); err != nil || len(again) != 0 {
		t.Fatalf("claim after the first lease but inside the renewed one = %+v, %v; want nothing", again, err)
	}
	if n, err := s.ExtendOutboxLease(ctx, ids, at.Add(41*time.Second), at.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("renewal after the lease ended = %d, %v; want 0", n, err)
	}
	if got, err := s.ClaimOutbox(ctx, at.Add(41*time.Second), at.Add(time.Hour), 10); err != nil || len(got) != 1 {
		t.Fatalf("claim after the renewed lease ended = %+v, %v; want the item", got, err)
	}
}
