package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite"
	"github.com/heraldhq/herald/services/approval/internal/store/storetest"
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

// TestReplicasMailEachApproverOnce runs two approval services on one SQLite file.
func TestReplicasMailEachApproverOnce(t *testing.T) {
	storetest.Replicas(t, func(t *testing.T) (approval.Store, approval.Store) {
		path := filepath.Join(t.TempDir(), "approval.db")
		var stores [2]approval.Store
		for i := range stores {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		return stores[0], stores[1]
	})
}

// TestReplicasDeliverEachWebhookOnce runs two approval services on one SQLite file.
func TestReplicasDeliverEachWebhookOnce(t *testing.T) {
	storetest.WebhookReplicas(t, func(t *testing.T) (approval.Store, approval.Store) {
		path := filepath.Join(t.TempDir(), "approval.db")
		var stores [2]approval.Store
		for i := range stores {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		return stores[0], stores[1]
	})
}
