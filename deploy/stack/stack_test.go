package stack_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
)

// startOn starts the stack on free ports with dataDir and the extra variables, and returns its Info once
// it has stopped again.
func startOn(t *testing.T, dataDir string, extra map[string]string) stack.Info {
	t.Helper()
	environ := map[string]string{
		"HERALD_DATA_DIR": dataDir, "HERALD_GATEWAY_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_GRPC_ADDR": "127.0.0.1:0",
		"HERALD_PUBLISHER_GRPC_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_HTTP_ADDR": "127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_SMTP_ADDR": "127.0.0.1:0", "HERALD_LOCAL_MAILBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_SANDBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_TEAMS_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_NATS_ADDR": "127.0.0.1:0", "HERALD_CONSUMER_PREFIX": "stack-test",
	}
	maps.Copy(environ, extra)
	cfg, err := stack.ParseConfig(environ)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	// The printed key works: the approval service knows it.
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	k, err := approvalv1.NewApprovalServiceClient(conn).AuthenticateKey(ctx, &approvalv1.AuthenticateKeyRequest{ApiKey: st.Info.DemoAPIKey})
	if err != nil || k.GetDepartmentName() != stack.DemoDepartment {
		t.Fatalf("the printed demo key does not authenticate in %s: %v, %v", st.Info.Database, k, err)
	}
	return st.Info
}

// TestDemoKeyPerDatabase: one data directory pointed at SQLite, then PostgreSQL, then back, always
// prints a key that works in the database in use, and the same one for the same database.
func TestDemoKeyPerDatabase(t *testing.T) {
	dir := t.TempDir()
	sqlite := startOn(t, dir, nil)
	if !strings.Contains(sqlite.Database, "SQLite") {
		t.Errorf("Info.Database = %q, want SQLite", sqlite.Database)
	}
	checkPrivate(t, dir)

	pg := map[string]string{
		"HERALD_DATABASE_URL":        strings.Replace(pgtest.BaseURL(), "postgres@", "postgres:hunter2@", 1),
		"HERALD_APPROVAL_DB_SCHEMA":  pgtest.NewSchemaName(t),
		"HERALD_PUBLISHER_DB_SCHEMA": pgtest.NewSchemaName(t),
	}
	postgres := startOn(t, dir, pg)
	if postgres.DemoAPIKey == sqlite.DemoAPIKey {
		t.Error("PostgreSQL got SQLite's demo key")
	}
	if !strings.Contains(postgres.Database, "PostgreSQL") || strings.Contains(postgres.Database, "hunter2") {
		t.Errorf("Info.Database = %q, want PostgreSQL without the password", postgres.Database)
	}
	if again := startOn(t, dir, nil); again.DemoAPIKey != sqlite.DemoAPIKey {
		t.Error("back on SQLite, the stack printed another key than before")
	}
	if again := startOn(t, dir, pg); again.DemoAPIKey != postgres.DemoAPIKey {
		t.Error("back on PostgreSQL, the stack printed another key than before")
	}

	// A fresh SQLite database (the file removed): the saved key is unknown there, so a new one is made.
	files, _ := filepath.Glob(filepath.Join(dir, "approval.db*"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if fresh := startOn(t, dir, nil); fresh.DemoAPIKey == sqlite.DemoAPIKey {
		t.Error("a fresh database was given the old, unknown key")
	}
}

// checkPrivate fails t for every file or directory under dir that its group or others may use at all:
// the data directory holds the databases, mail with live approval links, and the stack's secrets.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			rel, _ := filepath.Rel(dir, path)
			t.Errorf("%s has mode %v: group or others may use it", rel, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
