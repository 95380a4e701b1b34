package postgres_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres"
	"github.com/heraldhq/herald/services/approval/internal/store/storetest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) approval.Store {
		s, err := postgres.Open(context.Background(), pgtest.Schema(t), "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenCreatesItsSchema(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.NewSchemaName(t)
	s, err := postgres.Open(ctx, pgtest.BaseURL(), schema)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateDepartment(ctx, approval.Department{ID: "d1", Name: "HR"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Opening again finds the schema and its data: nothing is created twice.
	s, err = postgres.Open(ctx, pgtest.BaseURL(), schema)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.GetDepartment(ctx, "d1"); err != nil || d.Name != "HR" {
		t.Errorf("after reopening: %+v, %v", d, err)
	}
}

// TestReplicasMailEachApproverOnce runs two approval services on one PostgreSQL schema.
func TestReplicasMailEachApproverOnce(t *testing.T) {
	storetest.Replicas(t, func(t *testing.T) (approval.Store, approval.Store) {
		url := pgtest.Schema(t)
		var stores [2]approval.Store
		for i := range stores {
			s, err := postgres.Open(context.Background(), url, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		return stores[0], stores[1]
	})
}

// TestReplicasDeliverEachWebhookOnce runs two approval services on one PostgreSQL schema.
func TestReplicasDeliverEachWebhookOnce(t *testing.T) {
	storetest.WebhookReplicas(t, func(t *testing.T) (approval.Store, approval.Store) {
		url := pgtest.Schema(t)
		var stores [2]approval.Store
		for i := range stores {
			s, err := postgres.Open(context.Background(), url, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		return stores[0], stores[1]
	})
}

// TestReplicasExpireEachPostOnce has two approval services on one PostgreSQL schema sweep the same
// overdue posts at once.
func TestReplicasExpireEachPostOnce(t *testing.T) {
	storetest.ReplicasExpire(t, func(t *testing.T) (approval.Store, approval.Store) {
		url := pgtest.Schema(t)
		var stores [2]approval.Store
		for i := range stores {
			s, err := postgres.Open(context.Background(), url, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		return stores[0], stores[1]
	})
}
