package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/sqlite"
	"github.com/heraldhq/herald/services/publisher/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "publisher.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
