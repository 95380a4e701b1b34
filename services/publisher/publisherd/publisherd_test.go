package publisherd

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
)

// TestNewReportsAStoreThatWillNotOpen: when PostgreSQL refuses (down, or another replica's migration in
// the way), New returns the error instead of panicking while it cleans up (the crash run saw a publisher
// replica die with a nil-pointer panic that hid why its store did not open).
func TestNewReportsAStoreThatWillNotOpen(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	for _, name := range []string{"publisher", "approval"} {
		if _, err := seal.WriteKeyPair(keys, name); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Database:         svcconfig.Database{DatabaseURL: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
		Admin:            svcconfig.Admin{AdminToken: "test-admin-token-0123456789"},
		GRPCAddr:         "127.0.0.1:0",
		SealKeyFile:      filepath.Join(keys, "publisher.key"),
		ApprovalKeysFile: filepath.Join(keys, "approval.pub"),
		XAPIBase:         "http://127.0.0.1:1", XTimeout: time.Second,
		XConsumerKey: "ck", XConsumerSecret: "cs", XAccessToken: "at", XAccessSecret: "as",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		s.close()
		t.Fatal("New with an unreachable PostgreSQL succeeded")
	}
	if !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(err.Error(), "connect") {
		t.Errorf("error %q does not say the database could not be reached", err)
	}
}
