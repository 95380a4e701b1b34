package postgres_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/postgres"
	"github.com/heraldhq/herald/services/publisher/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store {
		s, err := postgres.Open(context.Background(), pgtest.BaseURL(), pgtest.NewSchemaName(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReplicasMigrateAFreshSchemaTogether starts four ledgers at once on a schema nobody created yet, as
// replicas rolled out together do: each must open instead of failing on tables another is creating.
func TestReplicasMigrateAFreshSchemaTogether(t *testing.T) {
	schema := pgtest.NewSchemaName(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), pgtest.BaseURL(), schema)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("a replica could not open the ledger: %v", err)
		}
	}
}
