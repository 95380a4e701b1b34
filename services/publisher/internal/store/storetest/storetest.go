// Package storetest is the conformance suite every ledger.Store must pass, run against SQLite and
// PostgreSQL alike.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

var at = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)

func attempt(id string, created time.Time) ledger.Publication {
	return ledger.Publication{PostID: id, Channel: "x", State: ledger.StateAttempting, Text: "hello " + id, Attempts: 1, SinceID: "1849", CreatedAt: created, UpdatedAt: created}
}

// Run runs every case against a fresh store from open.
func Run(t *testing.T, open func(t *testing.T) ledger.Store) {
	t.Run("BeginOnce", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		p := attempt(uuid.NewString(), at)
		got, created, err := s.Begin(ctx, p)
		if err != nil || !created {
			t.Fatalf("first Begin = %v, %v; want created", created, err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("Begin returned (-want +got):\n%s", diff)
		}
		again := p
		again.Text = "something else"
		got, created, err = s.Begin(ctx, again)
		if err != nil || created {
			t.Fatalf("second Begin = %v, %v; want the existing entry", created, err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("second Begin must return the first entry unchanged (-want +got):\n%s", diff)
		}
	})
	t.Run("FinishOnlyWhileAttempting", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		p := attempt(uuid.NewString(), at)
		if _, _, err := s.Begin(ctx, p); err != nil {
			t.Fatal(err)
		}
		done := p
		done.State, done.RemoteID, done.URL, done.UpdatedAt = ledger.StatePublished, "1850", "https://x.com/i/web/status/1850", at.Add(time.Second)
		if err := s.Finish(ctx, done); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, p.PostID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(done, got); diff != "" {
			t.Errorf("after Finish (-want +got):\n%s", diff)
		}
		again := done
		again.State = ledger.StateUnknown
		if err := s.Finish(ctx, again); !errors.Is(err, ledger.ErrNotAttempting) {
			t.Errorf("Finish on a published entry = %v, want ErrNotAttempting", err)
		}
		if err := s.Release(ctx, p.PostID); !errors.Is(err, ledger.ErrNotAttempting) {
			t.Errorf("Release of a published entry = %v, want ErrNotAttempting", err)
		}
	})
	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		p := attempt(uuid.NewString(), at)
		if _, _, err := s.Begin(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, p.PostID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, p.PostID); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Get after Release = %v, want ErrNotFound", err)
		}
		if _, created, err := s.Begin(ctx, p); err != nil || !created {
			t.Errorf("Begin after Release = %v, %v; want a new attempt", created, err)
		}
	})
	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		var ids []string
		for i := range 3 {
			p := attempt(uuid.NewString(), at.Add(time.Duration(i)*time.Minute))
			ids = append(ids, p.PostID)
			if _, _, err := s.Begin(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].PostID != ids[2] || got[1].PostID != ids[1] {
			t.Errorf("List(2) = %+v; want the two newest, newest first", got)
		}
	})
	t.Run("UpdateIsCompareAndSetWithAudit", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		p := attempt(uuid.NewString(), at)
		if _, _, err := s.Begin(ctx, p); err != nil {
			t.Fatal(err)
		}
		// A second attempt: only one of two deliveries that read attempt 1 may record it.
		second := p
		second.Attempts, second.UpdatedAt = 2, at.Add(time.Second)
		if err := s.Update(ctx, p, second, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, p, second, nil); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("Update from a stale read = %v, want ErrConflict", err)
		}
		unknown := second
		unknown.State, unknown.Error, unknown.UpdatedAt = ledger.StateUnknown, "no answer", at.Add(2*time.Second)
		if err := s.Update(ctx, second, unknown, nil); err != nil {
			t.Fatal(err)
		}
		resolved := unknown
		resolved.State, resolved.Error, resolved.RemoteID, resolved.URL, resolved.UpdatedAt = ledger.StatePublished, "", "1851", "https://x.com/i/web/status/1851", at.Add(time.Minute)
		audit := ledger.AuditEntry{PostID: p.PostID, Actor: "ops", Action: "resolve_published", From: ledger.StateUnknown, To: ledger.StatePublished, RemoteID: "1851", Note: "seen on x.com", At: at.Add(time.Minute)}
		if err := s.Update(ctx, unknown, resolved, &audit); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, p.PostID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(resolved, got); diff != "" {
			t.Errorf("after Update (-want +got):\n%s", diff)
		}
		if err := s.Update(ctx, unknown, resolved, &audit); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("resolving twice = %v, want ErrConflict", err)
		}
		missing := attempt(uuid.NewString(), at)
		if err := s.Update(ctx, missing, missing, nil); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Update of a missing entry = %v, want ErrNotFound", err)
		}
		second2 := audit
		second2.Action, second2.Note, second2.At = "retry", "again", at.Add(2*time.Minute)
		again := resolved
		again.State, again.UpdatedAt = ledger.StateAttempting, at.Add(2*time.Minute)
		if err := s.Update(ctx, resolved, again, &second2); err != nil {
			t.Fatal(err)
		}
		log, err := s.ListAudit(ctx, p.PostID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ledger.AuditEntry{audit, second2}, log); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
	t.Run("LatestRemoteID", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		if id, err := s.LatestRemoteID(ctx); err != nil || id != "" {
			t.Fatalf("LatestRemoteID of an empty ledger = %q, %v", id, err)
		}
		for i, id := range []string{"1850", "1852"} {
			p := attempt(uuid.NewString(), at.Add(time.Duration(i)*time.Minute))
			if _, _, err := s.Begin(ctx, p); err != nil {
				t.Fatal(err)
			}
			done := p
			done.State, done.RemoteID, done.UpdatedAt = ledger.StatePublished, id, p.CreatedAt.Add(time.Second)
			if err := s.Update(ctx, p, done, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.Begin(ctx, attempt(uuid.NewString(), at.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if id, err := s.LatestRemoteID(ctx); err != nil || id != "1852" {
			t.Errorf("LatestRemoteID = %q, %v; want the one published last", id, err)
		}
	})
}
