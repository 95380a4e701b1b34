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
