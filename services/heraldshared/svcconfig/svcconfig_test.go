package svcconfig_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"

	"github.com/heraldhq/herald/services/heraldshared/svcconfig"
)

func TestOpenStore(t *testing.T) {
	t.Parallel()
	open := func(db svcconfig.Database) (string, error) {
		return svcconfig.OpenStore(context.Background(), db,
			func(_ context.Context, url string) (string, error) { return "postgres " + url, nil },
			func(_ context.Context, dir string) (string, error) { return "sqlite " + dir, nil })
	}
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		db   svcconfig.Database
		want string
	}{
		{svcconfig.Database{DatabaseURL: "postgres://h/db", DataDir: dir}, "postgres postgres://h/db"},
		{svcconfig.Database{DatabaseURL: "postgresql://h/db", DataDir: dir}, "postgres postgresql://h/db"},
		{svcconfig.Database{DataDir: dir}, "sqlite " + dir},
	} {
		if got, err := open(tc.db); err != nil || got != tc.want {
			t.Errorf("OpenStore(%+v) = %q, %v; want %q", tc.db, got, err, tc.want)
		}
	}
	// The SQLite data directory is created private: its files hold key hashes and approval tokens.
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v, %v; want mode 0700", fi, err)
	}
	if _, err := open(svcconfig.Database{DatabaseURL: "mysql://h/db"}); err == nil {
		t.Error("OpenStore accepted a mysql:// URL; want an error rather than SQLite")
	}
}

func TestOpsAddrAndAdmin(t *testing.T) {
	t.Parallel()
	if got := (svcconfig.Ops{}).Addr(":9190"); got != ":9190" {
		t.Errorf("empty Ops.Addr = %q, want the default", got)
	}
	if got := (svcconfig.Ops{HTTPAddr: "127.0.0.1:1"}).Addr(":9190"); got != "127.0.0.1:1" {
		t.Errorf("Ops.Addr = %q, want the configured address", got)
	}
	if (svcconfig.Admin{}).Validate() == nil {
		t.Error("an empty admin token passed Validate")
	}
}

func TestNATSDurability(t *testing.T) {
	t.Parallel()
	d, err := (svcconfig.NATS{}).Durability()
	if err != nil || d != eventbus.DefaultDurability() {
		t.Errorf("zero NATS: Durability = %+v, %v; want the default", d, err)
	}
	d, err = (svcconfig.NATS{StreamReplicas: 3, StreamStorage: "memory", StreamDuplicateWindow: 2 * time.Minute}).Durability()
	want := eventbus.Durability{Replicas: 3, Storage: jetstream.MemoryStorage, DuplicateWindow: 2 * time.Minute}
	if err != nil || d != want {
		t.Errorf("Durability = %+v, %v; want %+v", d, err, want)
	}
	for _, n := range []svcconfig.NATS{{StreamStorage: "disk"}, {StreamReplicas: 7}, {StreamReplicas: -1}, {StreamDuplicateWindow: -time.Second}} {
		if _, err := n.Durability(); err == nil || !strings.Contains(err.Error(), "HERALD_STREAM_") {
			t.Errorf("%+v: Durability error = %v, want one naming the variable", n, err)
		}
	}
}
