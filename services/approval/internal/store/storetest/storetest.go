// Package storetest is the conformance suite every approval.Store must pass. The SQLite and PostgreSQL
// stores run the same cases, so the engines cannot drift apart.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// Run runs every case against a fresh store from open.
func Run(t *testing.T, open func(t *testing.T) approval.Store) {
	cases := map[string]func(t *testing.T, s approval.Store){
		"Departments":         testDepartments,
		"APIKeys":             testAPIKeys,
		"Approvers":           testApprovers,
		"PostsAreCreatedOnce": testPostsCreatedOnce,
		"FailedPost":          testFailedPost,
		"ListPosts":           testListPosts,
		"Decide":              testDecide,
		"ParallelDecisions":   testParallelDecisions,
		"RecordOutcome":       testRecordOutcome,
		"Outbox":              testOutbox,
		"ClaimOutbox":         testClaimOutbox,
		"ParallelClaims":      testParallelClaims,
		"ParallelSweeps":      testParallelSweeps,
		"ParallelQuorum":      testParallelQuorumDecisions,
		"Policies":            testPolicies,
		"WaitingPosts":        testWaitingPosts,
		"AuditNamesTheAPIKey": testAuditNamesTheAPIKey,
		"DepartmentLimits":    testDepartmentLimits,
		"CountUndecided":      testCountUndecided,
		"Subscriptions":       testSubscriptions,
		"WebhookDeliveries":   testWebhookDeliveries,
		"CreatePosts":         testCreatePosts,
		"TokensAndResults":    testTokensAndOutboxResults,
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc(t, open(t))
		})
	}
}

// at is a fixed instant with microsecond precision, which both engines keep exactly.
var at = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)

func department(t *testing.T, s approval.Store, name string) approval.Department {
	t.Helper()
	d := approval.Department{ID: uuid.NewString(), Name: name, CreatedAt: at}
	if err := s.CreateDepartment(context.Background(), d); err != nil {
		t.Fatalf("CreateDepartment: %v", err)
	}
	return d
}

func approver(t *testing.T, s approval.Store, email string) approval.Approver {
	t.Helper()
	a, err := s.UpsertApprover(context.Background(), approval.Approver{ID: uuid.NewString(), Email: email, Name: "Comms " + email, CreatedAt: at})
	if err != nil {
		t.Fatalf("UpsertApprover: %v", err)
	}
	return a
}

func post(t *testing.T, s approval.Store, d approval.Department, created time.Time, outbox ...approval.OutboxItem) approval.Post {
	t.Helper()
	return createPost(t, s, newPost(d, created), outbox...)
}

// newPost returns a pending post of d, not yet stored: outbox items name its id.
func newPost(d approval.Department, created time.Time) approval.Post {
	return approval.Post{
		ID: uuid.NewString(), DepartmentID: d.ID, Text: "Welcome to our new joiners!", RequestedBy: "hr@example.com",
		Status: approval.StatusPending, CreatedAt: created, UpdatedAt: created,
	}
}

func createPost(t *testing.T, s approval.Store, p approval.Post, outbox ...approval.OutboxItem) approval.Post {
	t.Helper()
	ok, err := s.CreatePost(context.Background(), p, approval.AuditEntry{PostID: p.ID, At: p.CreatedAt, Actor: p.RequestedBy, Action: "requested", ToStatus: approval.StatusPending}, outbox)
	if err != nil || !ok {
		t.Fatalf("CreatePost = %v, %v; want true, nil", ok, err)
	}
	return p
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

func testDepartments(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	fin := department(t, s, "Finance")
	got, err := s.GetDepartment(ctx, hr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hr, got); diff != "" {
		t.Errorf("GetDepartment (-want +got):\n%s", diff)
	}
	list, err := s.ListDepartments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]approval.Department{fin, hr}, list); diff != "" {
		t.Errorf("ListDepartments, by name (-want +got):\n%s", diff)
	}
	err = s.CreateDepartment(ctx, approval.Department{ID: uuid.NewString(), Name: "HR", CreatedAt: at})
	wantErr(t, "duplicate name", err, approval.ErrAlreadyExists)
	_, err = s.GetDepartment(ctx, uuid.NewString())
	wantErr(t, "unknown department", err, approval.ErrNotFound)
}

func testAPIKeys(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	k := approval.APIKey{ID: uuid.NewString(), DepartmentID: hr.ID, Label: "flow", Prefix: "hk_abcdef", Hash: "deadbeef", CreatedAt: at}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAPIKeyByHash(ctx, "deadbeef")
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.DepartmentName = "HR"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetAPIKeyByHash (-want +got):\n%s", diff)
	}
	_, err = s.GetAPIKeyByHash(ctx, "cafe")
	wantErr(t, "unknown hash", err, approval.ErrNotFound)

	revokedAt := at.Add(time.Hour)
	r, err := s.RevokeAPIKey(ctx, k.ID, revokedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !r.RevokedAt.Equal(revokedAt) {
		t.Errorf("RevokedAt = %v, want %v", r.RevokedAt, revokedAt)
	}
	r, err = s.RevokeAPIKey(ctx, k.ID, revokedAt.Add(time.Hour))
	if err != nil || !r.RevokedAt.Equal(revokedAt) {
		t.Errorf("second revoke = %v, %v; want the first revocation time kept", r.RevokedAt, err)
	}
	_, err = s.RevokeAPIKey(ctx, uuid.NewString(), revokedAt)
	wantErr(t, "revoke unknown key", err, approval.ErrNotFound)
	keys, err := s.ListAPIKeys(ctx, hr.ID)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt.IsZero() {
		t.Errorf("ListAPIKeys = %+v, %v; want the one revoked key", keys, err)
	}
}

func testApprovers(t *testing.T, s approval.Store) {
	ctx := context.Background()
	a := approver(t, s, "a@example.com")
	b := approver(t, s, "b@example.com")
	list, err := s.ListApprovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]approval.Approver{a, b}, list); diff != "" {
		t.Errorf("ListApprovers (-want +got):\n%s", diff)
	}
	if err := s.RemoveApprover(ctx, a.ID, at); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "remove twice", s.RemoveApprover(ctx, a.ID, at), approval.ErrNotFound)
	_, err = s.GetApprover(ctx, a.ID)
	wantErr(t, "get removed approver", err, approval.ErrNotFound)
	renamed, err := s.UpsertApprover(ctx, approval.Approver{ID: uuid.NewString(), Email: "b@example.com", Name: "Renamed", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if renamed.ID != b.ID || renamed.Name != "Renamed" {
		t.Errorf("current approver added again = %+v; want the same id %s with the new name", renamed, b.ID)
	}

	// Adding a removed approver's address again makes a new approver: the removed one, and every link
	// bound to its id, stays gone.
	backID := uuid.NewString()
	back, err := s.UpsertApprover(ctx, approval.Approver{ID: backID, Email: "a@example.com", Name: "Back", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != backID || back.Name != "Back" {
		t.Errorf("re-added approver = %+v; want the new id %s", back, backID)
	}
	_, err = s.GetApprover(ctx, a.ID)
	wantErr(t, "removed approver after their address was added again", err, approval.ErrNotFound)
	list, err = s.ListApprovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]approval.Approver{back, renamed}, list); diff != "" {
		t.Errorf("ListApprovers after re-adding (-want +got):\n%s", diff)
	}
	if err := s.RemoveApprover(ctx, back.ID, at); err != nil {
		t.Fatalf("removing the re-added approver: %v", err)
	}
	again, err := s.UpsertApprover(ctx, approval.Approver{ID: uuid.NewString(), Email: "a@example.com", Name: "Again", CreatedAt: at})
	if err != nil || again.ID == a.ID || again.ID == back.ID {
		t.Errorf("address added a third time = %+v, %v; want a third id", again, err)
	}
}

// testFailedPost stores a request that failed before it was processed: a failed post with its reason,
// no text and no outbox item.
func testFailedPost(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := approval.Post{
		ID: uuid.NewString(), DepartmentID: hr.ID, RequestedBy: "hr@example.com", Status: approval.StatusFailed,
		FailureReason: "refused", CreatedAt: at, UpdatedAt: at,
	}
	created, err := s.CreatePost(ctx, p, approval.AuditEntry{PostID: p.ID, At: at, Action: "failed", ToStatus: approval.StatusFailed, Comment: "refused"}, nil)
	if err != nil || !created {
		t.Fatalf("CreatePost = %v, %v; want true, nil", created, err)
	}
	got, err := s.GetPost(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("GetPost (-want +got):\n%s", diff)
	}
	due, err := s.DueOutbox(ctx, at.Add(time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Errorf("DueOutbox = %v, %v; want nothing", due, err)
	}
}

func testPostsCreatedOnce(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	a := approver(t, s, "a@example.com")
	p := newPost(hr, at)
	email := approval.OutboxItem{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: a.ID, CreatedAt: at, NextAttemptAt: at}
	p = createPost(t, s, p, email)
	again, err := s.CreatePost(ctx, p, approval.AuditEntry{PostID: p.ID, At: at, Action: "requested"}, []approval.OutboxItem{email})
	if err != nil || again {
		t.Fatalf("second CreatePost = %v, %v; want false, nil", again, err)
	}
	got, err := s.GetPost(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("GetPost (-want +got):\n%s", diff)
	}
	due, err := s.DueOutbox(ctx, at, 10)
	if err != nil || len(due) != 1 {
		t.Errorf("DueOutbox after a redelivered request = %d items, %v; want 1", len(due), err)
	}
	audit, err := s.ListAudit(ctx, p.ID)
	if err != nil || len(audit) != 1 {
		t.Errorf("ListAudit = %d entries, %v; want 1", len(audit), err)
	}
	_, err = s.GetPost(ctx, uuid.NewString())
	wantErr(t, "unknown post", err, approval.ErrNotFound)
}

func testListPosts(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	fin := department(t, s, "Finance")
	var hrPosts []approval.Post
	for i := range 3 {
		hrPosts = append(hrPosts, post(t, s, hr, at.Add(time.Duration(i)*time.Minute)))
	}
	finPost := post(t, s, fin, at.Add(10*time.Minute))
	failed := newPost(hr, at.Add(5*time.Minute))
	failed.Status, failed.FailureReason = approval.StatusFailed, "refused"
	createPost(t, s, failed)
	// Two posts made in the same microsecond are listed by id, descending.
	twins := []approval.Post{newPost(fin, at.Add(time.Hour)), newPost(fin, at.Add(time.Hour))}
	for _, p := range twins {
		createPost(t, s, p)
	}
	slices.SortFunc(twins, func(a, b approval.Post) int { return strings.Compare(b.ID, a.ID) })

	ids := func(ps []approval.Post) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	tests := []struct {
		name   string
		filter approval.PostFilter
		want   []string
	}{
		{"one department, newest first", approval.PostFilter{DepartmentID: hr.ID, Limit: 10}, []string{failed.ID, hrPosts[2].ID, hrPosts[1].ID, hrPosts[0].ID}},
		{"limit", approval.PostFilter{DepartmentID: hr.ID, Limit: 2}, []string{failed.ID, hrPosts[2].ID}},
		{"all departments", approval.PostFilter{Limit: 3}, []string{twins[0].ID, twins[1].ID, finPost.ID}},
		{"status", approval.PostFilter{Status: approval.StatusPublished, Limit: 10}, []string{}},
		{"status in every department", approval.PostFilter{Status: approval.StatusFailed, Limit: 10}, []string{failed.ID}},
		{"department and status", approval.PostFilter{DepartmentID: hr.ID, Status: approval.StatusPending, Limit: 2}, []string{hrPosts[2].ID, hrPosts[1].ID}},
		{"department and another status", approval.PostFilter{DepartmentID: hr.ID, Status: approval.StatusFailed, Limit: 10}, []string{failed.ID}},
		{"other department", approval.PostFilter{DepartmentID: fin.ID, Status: approval.StatusPending, Limit: 10}, []string{twins[0].ID, twins[1].ID, finPost.ID}},
		{"other department, any status", approval.PostFilter{DepartmentID: fin.ID, Limit: 2}, []string{twins[0].ID, twins[1].ID}},
	}
	for _, tt := range tests {
		got, err := s.ListPosts(ctx, tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func decideParams(p approval.Post, token string, outcome approval.Outcome, when time.Time) approval.DecideParams {
	status, announce := approval.StatusApproved, approval.OutboxPostApproved
	if outcome == approval.OutcomeReject {
		status, announce = approval.StatusRejected, approval.OutboxPostRejected
	}
	return approval.DecideParams{
		TokenHash: token, PostID: p.ID, Status: status, Outcome: outcome, Approver: "a@example.com", Comment: "fine", At: when,
		Audit:        approval.AuditEntry{PostID: p.ID, At: when, Actor: "a@example.com", Action: string(outcome), FromStatus: approval.StatusPending, ToStatus: status},
		Announcement: approval.OutboxItem{Kind: announce, PostID: p.ID, CreatedAt: when, NextAttemptAt: when},
	}
}

func testDecide(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	a := approver(t, s, "a@example.com")
	b := approver(t, s, "b@example.com")
	p := post(t, s, hr, at)
	for i, ap := range []approval.Approver{a, b} {
		tok := approval.Token{Hash: fmt.Sprintf("token-%d", i), PostID: p.ID, ApproverID: ap.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	when := at.Add(time.Minute)
	if err := s.Decide(ctx, decideParams(p, "token-0", approval.OutcomeApprove, when)); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	wantErr(t, "same token again", s.Decide(ctx, decideParams(p, "token-0", approval.OutcomeApprove, when)), approval.ErrTokenUsed)
	wantErr(t, "other approver after the decision", s.Decide(ctx, decideParams(p, "token-1", approval.OutcomeReject, when)), approval.ErrClosed)

	got, err := s.GetPost(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != approval.StatusApproved || got.Decision != approval.OutcomeApprove || got.DecidedBy != "a@example.com" || !got.DecidedAt.Equal(when) || got.Comment != "fine" {
		t.Errorf("decided post = %+v", got)
	}
	tok, err := s.GetToken(ctx, "token-0")
	if err != nil || !tok.UsedAt.Equal(when) {
		t.Errorf("token after use = %+v, %v; want used at %v", tok, err, when)
	}
	tok1, err := s.GetToken(ctx, "token-1")
	if err != nil || !tok1.UsedAt.IsZero() {
		t.Errorf("failed decision left token-1 = %+v, %v; want it unused (the transaction rolled back)", tok1, err)
	}
	due, err := s.DueOutbox(ctx, when, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []approval.OutboxItem{{Kind: approval.OutboxPostApproved, PostID: p.ID, CreatedAt: when, NextAttemptAt: when}}
	if diff := cmp.Diff(want, due, cmpopts.IgnoreFields(approval.OutboxItem{}, "ID")); diff != "" {
		t.Errorf("outbox after one decision; want exactly the approval's announcement (-want +got):\n%s", diff)
	}
	audit, err := s.ListAudit(ctx, p.ID)
	if err != nil || len(audit) != 2 || audit[1].Action != "approve" {
		t.Errorf("audit = %+v, %v; want requested then approve", audit, err)
	}
}

func testRecordOutcome(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	a := approver(t, s, "a@example.com")
	p := post(t, s, hr, at)
	out := approval.OutcomeParams{PostID: p.ID, Status: approval.StatusPublished, Channel: "x", RemoteID: "1850", RemoteURL: "https://x.com/i/web/status/1850", PublishedAt: at, At: at,
		Audit: approval.AuditEntry{PostID: p.ID, At: at, Actor: "publisher", Action: "published", ToStatus: approval.StatusPublished}}
	changed, err := s.RecordOutcome(ctx, out)
	if err != nil || changed {
		t.Fatalf("RecordOutcome on a pending post = %v, %v; want false, nil", changed, err)
	}
	if err := s.CreateToken(ctx, approval.Token{Hash: "t", PostID: p.ID, ApproverID: a.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctx, decideParams(p, "t", approval.OutcomeApprove, at)); err != nil {
		t.Fatal(err)
	}
	changed, err = s.RecordOutcome(ctx, out)
	if err != nil || !changed {
		t.Fatalf("RecordOutcome on an approved post = %v, %v; want true, nil", changed, err)
	}
	changed, err = s.RecordOutcome(ctx, out)
	if err != nil || changed {
		t.Fatalf("redelivered RecordOutcome = %v, %v; want false, nil", changed, err)
	}
	got, err := s.GetPost(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != approval.StatusPublished || got.RemoteID != "1850" || got.RemoteURL != out.RemoteURL || got.Channel != "x" {
		t.Errorf("published post = %+v", got)
	}
	audit, _ := s.ListAudit(ctx, p.ID)
	if len(audit) != 3 || audit[2].FromStatus != approval.StatusApproved || audit[2].ToStatus != approval.StatusPublished {
		t.Errorf("audit = %+v; want requested, approve, approved→published", audit)
	}
	_, err = s.RecordOutcome(ctx, approval.OutcomeParams{PostID: uuid.NewString(), Status: approval.StatusPublished})
	wantErr(t, "unknown post", err, approval.ErrNotFound)
}

func testOutbox(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr := department(t, s, "HR")
	p := newPost(hr, at)
	items := []approval.OutboxItem{
		{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: "a", CreatedAt: at, NextAttemptAt: at},
		{Kind: approval.OutboxApprovalEmail, PostID: p.ID, ApproverID: "b", CreatedAt: at, NextAttemptAt: at.Add(time.Second)},
	}
	createPost(t, s, p, items...)
	ignoreID := cmpopts.IgnoreFields(approval.OutboxItem{}, "ID")
	due, err := s.DueOutbox(ctx, at, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(items[:1], due, ignoreID); diff != "" {
		t.Fatalf("DueOutbox(at); want only the first item (-want +got):\n%s", diff)
	}
	later := at.Add(time.Minute)
	if err := s.DeferOutbox(ctx, due[0].ID, later.Add(time.Minute), "smtp down"); err != nil {
		t.Fatal(err)
	}
	due, err = s.DueOutbox(ctx, later, 10)
	if err != nil || len(due) != 1 || due[0].ApproverID != "b" {
		t.Fatalf("DueOutbox after deferring = %+v, %v; want only the second item", due, err)
	}
	if err := s.DeleteOutbox(ctx, due[0].ID); err != nil {
		t.Fatal(err)
	}
	due, err = s.DueOutbox(ctx, later.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	deferred := items[0]
	deferred.Attempts, deferred.NextAttemptAt, deferred.LastError = 1, later.Add(time.Minute), "smtp down"
	if diff := cmp.Diff([]approval.OutboxItem{deferred}, due, ignoreID); diff != "" {
		t.Fatalf("DueOutbox at the end; want the deferred item with one attempt (-want +got):\n%s", diff)
	}
}

// testAuditNamesTheAPIKey: an audit entry keeps every field, the requesting API key's id included.
func testAuditNamesTheAPIKey(t *testing.T, s approval.Store) {
	ctx := context.Background()
	p := newPost(department(t, s, "HR"), at)
	want := approval.AuditEntry{
		PostID: p.ID, At: at, Actor: "jo@example.com", Origin: "department:" + p.DepartmentID, Action: "requested",
		ToStatus: approval.StatusPending, Comment: "", APIKeyID: uuid.NewString(),
	}
	if ok, err := s.CreatePost(ctx, p, want, nil); err != nil || !ok {
		t.Fatalf("CreatePost = %v, %v; want true, nil", ok, err)
	}
	got, err := s.ListAudit(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]approval.AuditEntry{want}, got); diff != "" {
		t.Errorf("ListAudit (-want +got):\n%s", diff)
	}
}

func testDepartmentLimits(t *testing.T, s approval.Store) {
	ctx := context.Background()
	d := department(t, s, "HR")
	got, err := s.GetDepartmentLimits(ctx, d.ID)
	if err != nil || got != (approval.Limits{}) {
		t.Fatalf("GetDepartmentLimits before any were set = %+v, %v; want zero (the defaults), nil", got, err)
	}
	for _, l := range []approval.Limits{{PostsPerMinute: 3, MaxUndecided: 7}, {PostsPerMinute: 0, MaxUndecided: 2}} {
		if err := s.SetDepartmentLimits(ctx, d.ID, l); err != nil {
			t.Fatalf("SetDepartmentLimits(%+v): %v", l, err)
		}
		got, err := s.GetDepartmentLimits(ctx, d.ID)
		if err != nil || got != l {
			t.Fatalf("GetDepartmentLimits = %+v, %v; want %+v (the last set replaces the first)", got, err, l)
		}
	}
	wantErr(t, "SetDepartmentLimits of an unknown department", s.SetDepartmentLimits(ctx, uuid.NewString(), approval.Limits{MaxUndecided: 1}), approval.ErrNotFound)
}

func testCountUndecided(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr, fin := department(t, s, "HR"), department(t, s, "Finance")
	post(t, s, hr, at)
	post(t, s, hr, at.Add(time.Second))
	post(t, s, fin, at)
	decided := post(t, s, hr, at.Add(2*time.Second))
	tok := approval.Token{Hash: "count-undecided", PostID: decided.ID, ApproverID: approver(t, s, "c@example.com").ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctx, decideParams(decided, tok.Hash, approval.OutcomeReject, at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	for dept, want := range map[string]int{hr.ID: 2, fin.ID: 1, uuid.NewString(): 0} {
		if got, err := s.CountUndecided(ctx, dept); err != nil || got != want {
			t.Errorf("CountUndecided(%s) = %d, %v; want %d (pending posts only)", dept, got, err, want)
		}
	}
}
