package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pressly/goose/v3"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite/sqlitedb"
)

// TestOutboxMigrationConvertsQueuedRows writes outbox rows the way version 1 did, migrates, and reads them
// through the Store: the ids kept in subject and msg_id land in post_id and approver_id.
func TestOutboxMigrationConvertsQueuedRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approval.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	rows := []struct{ kind, subject, msgID string }{
		{"approval_email", "approver-1", "post-1"},
		{"event", "herald.posts.approved", "post-2:approved"},
		{"event", "herald.posts.rejected", "post-3:rejected"},
	}
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO outbox (kind, subject, msg_id, payload, created_at, next_attempt_at) VALUES (?, ?, ?, x'0102', ?, ?)`,
			r.kind, r.subject, r.msgID, at.UnixMicro(), at.UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	// Every migration up, so that the Store (whose queries read every column) can read the outbox; Down
	// below undoes them all back to version 1.
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	s := &Store{db: db, q: sqlitedb.New(db)}
	got, err := s.DueOutbox(ctx, at, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []approval.OutboxItem{
		{Kind: approval.OutboxApprovalEmail, PostID: "post-1", ApproverID: "approver-1", CreatedAt: at, NextAttemptAt: at},
		{Kind: approval.OutboxPostApproved, PostID: "post-2", CreatedAt: at, NextAttemptAt: at},
		{Kind: approval.OutboxPostRejected, PostID: "post-3", CreatedAt: at, NextAttemptAt: at},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(approval.OutboxItem{}, "ID")); diff != "" {
		t.Errorf("outbox after the migration (-want +got):\n%s", diff)
	}

	// Going back is refused while an announcement is queued, and converts the emails once it is not.
	if _, err := p.DownTo(ctx, 1); err == nil {
		t.Fatal("migrating down with queued announcements succeeded")
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM outbox WHERE kind <> 'approval_email'`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 1); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	var subject, msgID string
	if err := db.QueryRowContext(ctx, `SELECT subject, msg_id FROM outbox`).Scan(&subject, &msgID); err != nil || subject != "approver-1" || msgID != "post-1" {
		t.Errorf("email after migrating down: subject %q, msg_id %q, %v", subject, msgID, err)
	}
}

// TestApproverIdentityMigrationKeepsRowsAndReferences rebuilds the approvers table under existing tokens:
// the rows survive, the tokens still refer to them, and foreign keys are enforced again afterwards.
func TestApproverIdentityMigrationKeepsRowsAndReferences(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approval.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO departments (id, name, created_at) VALUES ('d', 'HR', 1)`,
		`INSERT INTO approvers (id, email, name, created_at, removed_at) VALUES ('a', 'a@example.com', 'A', 1, 2)`,
		`INSERT INTO posts (id, department_id, text, requested_by, idempotency_key, status, created_at, updated_at) VALUES ('p', 'd', 'hi', 'hr', '', 'pending', 1, 1)`,
		`INSERT INTO approval_tokens (hash, post_id, approver_id, created_at, expires_at) VALUES ('h', 'p', 'a', 1, 2)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	rows, err := db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("foreign key violations after the migration")
	}
	rows.Close()
	s := &Store{db: db, q: sqlitedb.New(db)}
	back, err := s.UpsertApprover(ctx, approval.Approver{ID: "a2", Email: "a@example.com", Name: "A again", CreatedAt: time.UnixMicro(3)})
	if err != nil || back.ID != "a2" {
		t.Errorf("re-adding a removed address = %+v, %v; want the new id a2", back, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO approval_tokens (hash, post_id, approver_id, created_at, expires_at) VALUES ('h2', 'p', 'nobody', 1, 2)`); err == nil {
		t.Error("a token for an unknown approver was stored: foreign keys are off after the migration")
	}
}
