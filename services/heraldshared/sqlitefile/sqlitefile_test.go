package sqlitefile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/sqlitefile"
)

func TestPrepare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing []string // files there before, left world-readable
	}{
		{name: "new database"},
		{name: "database left readable by an earlier version", existing: []string{"db", "db-wal", "db-shm"}},
		{name: "database without its companions", existing: []string{"db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, name := range tt.existing {
				if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := sqlitefile.Prepare(filepath.Join(dir, "db")); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != max(len(tt.existing), 1) {
				t.Errorf("%d files after Prepare, want %d", len(entries), max(len(tt.existing), 1))
			}
			for _, e := range entries {
				info, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != sqlitefile.Mode {
					t.Errorf("%s has mode %v, want %v", e.Name(), info.Mode().Perm(), sqlitefile.Mode)
				}
			}
		})
	}
}
