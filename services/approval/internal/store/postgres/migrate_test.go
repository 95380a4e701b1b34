package postgres

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres/pgdb"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
)

// TestOutboxMigrationConvertsQueuedRows writes outbox rows the way version 1 did, migrates, and reads them
// through the Store: the ids kept in subject and msg_id land in post_id and approver_id.
func TestOutboxMigrationConvertsQueuedRows(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub)
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
		if _, err := db.ExecContext(ctx, `INSERT INTO outbox (kind, subject, msg_id, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, '\x0102', $4, $5)`,
			r.kind, r.subject, r.msgID, at.UnixMicro(), at.UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	// Every migration up, so that the Store (whose queries read every column) can read the outbox; Down
	// below undoes them all back to version 1.
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	s := &Store{pool: pool, q: pgdb.New(pool)}
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

// TestReplicasMigrateAFreshSchemaTogether starts four stores at once on a schema nobody created yet, as
// replicas rolled out together do: each must open (one migrates, the others wait for it and find the
// schema current) instead of failing on tables another is creating.
func TestReplicasMigrateAFreshSchemaTogether(t *testing.T) {
	schema := pgtest.NewSchemaName(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(context.Background(), pgtest.BaseURL(), schema)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("a replica could not open the store: %v", err)
		}
	}
}
