package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

func requested(p approval.Post, outbox ...approval.OutboxItem) approval.NewPost {
	return approval.NewPost{Post: p, Audit: approval.AuditEntry{PostID: p.ID, At: p.CreatedAt, Actor: p.RequestedBy, Action: "requested", ToStatus: approval.StatusPending}, Outbox: outbox}
}

// testCreatePosts: a batch stores every new post with its audit entry and outbox, skips posts that exist
// (stored before, or earlier in the batch), and is all or nothing.
func testCreatePosts(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	a := approver(t, s, "a@example.com")
	old := post(t, s, hr, at)
	p1, p2 := newPost(hr, at.Add(time.Second)), newPost(hr, at.Add(2*time.Second))
	mail := func(p approval.Post) approval.OutboxItem {
		return approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: a.ID, CreatedAt: at, NextAttemptAt: at}
	}
	created, err := s.CreatePosts(ctx, []approval.NewPost{requested(p1, mail(p1)), requested(old, mail(old)), requested(p2, mail(p2)), requested(p1, mail(p1))})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, false, true, false}, created); diff != "" {
		t.Errorf("CreatePosts created (-want +got):\n%s", diff)
	}
	for _, p := range []approval.Post{p1, p2} {
		got, err := s.GetPost(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("GetPost (-want +got):\n%s", diff)
		}
		if audit, err := s.ListAudit(ctx, p.ID); err != nil || len(audit) != 1 {
			t.Errorf("ListAudit(%s) = %d entries, %v; want 1", p.ID, len(audit), err)
		}
	}
	due, err := s.DueOutbox(ctx, at, 10)
	if err != nil || len(due) != 2 {
		t.Errorf("DueOutbox = %d items, %v; want the two new posts' emails only", len(due), err)
	}

	// A post the database refuses (its department does not exist) takes the whole batch down with it.
	p3, orphan := newPost(hr, at), newPost(approval.Department{ID: uuid.NewString()}, at)
	if _, err := s.CreatePosts(ctx, []approval.NewPost{requested(p3), requested(orphan)}); err == nil {
		t.Fatal("CreatePosts stored a post of a department that does not exist")
	}
	_, err = s.GetPost(ctx, p3.ID)
	wantErr(t, "a post of a failed batch", err, approval.ErrNotFound)
}

// testTokensAndOutboxResults: a batch's tokens are stored at once, and its results settle every item in
// one call: the done ones are gone, the failed ones deferred with their error.
func testTokensAndOutboxResults(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	a := approver(t, s, "a@example.com")
	p := newPost(hr, at)
	items := []approval.OutboxItem{
		{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: a.ID, CreatedAt: at, NextAttemptAt: at},
		{Kind: approval.OutboxApprovalReminder, PostID: p.ID, ApproverID: a.ID, CreatedAt: at, NextAttemptAt: at},
		{Kind: approval.OutboxPostApproved, PostID: p.ID, CreatedAt: at, NextAttemptAt: at},
	}
	createPost(t, s, p, items...)
	tokens := []approval.Token{
		{Hash: approval.HashSecret("one"), PostID: p.ID, ApproverID: a.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)},
		{Hash: approval.HashSecret("two"), PostID: p.ID, ApproverID: a.ID, CreatedAt: at, ExpiresAt: at.Add(2 * time.Hour)},
	}
	if err := s.CreateTokens(ctx, tokens); err != nil {
		t.Fatal(err)
	}
	for _, want := range tokens {
		got, err := s.GetToken(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetToken (-want +got):\n%s", diff)
		}
	}
	claimed, err := s.ClaimOutbox(ctx, at, at.Add(time.Minute), 10)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("ClaimOutbox = %d items, %v; want 3", len(claimed), err)
	}
	next := at.Add(30 * time.Second)
	results := []approval.OutboxResult{{ID: claimed[0].ID}, {ID: claimed[1].ID, Err: "smtp down", Next: next}, {ID: claimed[2].ID}}
	if err := s.FinishOutbox(ctx, results); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueOutbox(ctx, at.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := claimed[1]
	want.Attempts, want.NextAttemptAt, want.LastError = 1, next, "smtp down"
	if diff := cmp.Diff([]approval.OutboxItem{want}, due); diff != "" {
		t.Errorf("outbox after FinishOutbox; want only the failed item, deferred (-want +got):\n%s", diff)
	}
	// The deferral ended the lease: the item is claimable again when it is due, before the lease would end.
	if again, err := s.ClaimOutbox(ctx, next, next.Add(time.Minute), 10); err != nil || len(again) != 1 {
		t.Errorf("ClaimOutbox at the retry = %d items, %v; want the deferred one", len(again), err)
	}
}
