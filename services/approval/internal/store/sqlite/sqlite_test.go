package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite"
	"github.com/heraldhq/herald/services/approval/internal/store/storetest"
	"github.com/heraldhq/herald/services/heraldshared/sqlitefile"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) approval.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "approval.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approval.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDepartment(ctx, approval.Department{ID: "d1", Name: "HR"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen (migrations must be idempotent): %v", err)
	}
	defer s.Close()
	if d, err := s.GetDepartment(ctx, "d1"); err != nil || d.Name != "HR" {
		t.Fatalf("after reopen: %+v, %v", d, err)
	}
}

// TestSecondOpenIsRefused: SQLite is the single-node store. Two approval services on one file are
// refused rather than run (replicas need PostgreSQL, where storetest.Replicas runs); the lock is the
// OS's, so the same holds for a second process (see sqlitefile's tests), and it is let go at Close.
func TestSecondOpenIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approval.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, path); !errors.Is(err, sqlitefile.ErrLocked) {
		t.Fatalf("second Open = %v, want sqlitefile.ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}
