// Package svcconfig declares the configuration that several Herald services share, read from HERALD_*
// variables with github.com/caarlos0/env: the database, NATS, the ops HTTP listener and the admin token.
// Each service embeds these pieces in its own Config, so every shared variable, and its default, is
// written once. It also opens what the pieces name: the store, by the database URL's scheme.
package svcconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/ops"
)

// Database says where a service keeps its tables. The schema is per service, so each service declares
// its own schema variable beside it.
type Database struct {
	// DatabaseURL selects the store: a postgres:// (or postgresql://) URL for PostgreSQL; empty for SQLite
	// under DataDir.
	DatabaseURL string `env:"HERALD_DATABASE_URL"`
	// DataDir holds the SQLite files when DatabaseURL is empty.
	DataDir string `env:"HERALD_DATA_DIR" envDefault:".herald"`
}

// IsPostgres reports whether url names a PostgreSQL database.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// OpenStore opens a service's store: openPostgres with the URL when it is a PostgreSQL one, otherwise
// openSQLite with the data directory, created first (mode 0700: the files hold API key hashes and
// approval tokens). Any other URL is an error rather than a silent fall back to SQLite, which would
// leave an operator's PostgreSQL unused.
func OpenStore[S any](ctx context.Context, db Database, openPostgres func(ctx context.Context, url string) (S, error), openSQLite func(ctx context.Context, dataDir string) (S, error)) (S, error) {
	var zero S
	if IsPostgres(db.DatabaseURL) {
		return openPostgres(ctx, db.DatabaseURL)
	}
	if db.DatabaseURL != "" {
		return zero, errors.New("HERALD_DATABASE_URL must be a postgres:// URL (leave it empty for SQLite)")
	}
	if err := os.MkdirAll(db.DataDir, 0o700); err != nil {
		return zero, fmt.Errorf("data dir: %w", err)
	}
	return openSQLite(ctx, db.DataDir)
}

// NATS is the NATS server with JetStream that carries Herald's events.
type NATS struct {
	NATSURL string `env:"HERALD_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// Stream is the JetStream stream's name; empty means eventbus.Stream. Set it when another
	// application on a shared NATS server already uses that name.
	Stream string `env:"HERALD_STREAM"`
}

// Connect dials NATS as the client name, with the stream created or updated.
func (n NATS) Connect(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	return eventbus.Connect(ctx, n.NATSURL, name, eventbus.WithStream(n.Stream))
}

// Ops is where a service serves /healthz, /readyz and /metrics. Each service embeds it under its own
// prefix (HERALD_APPROVAL_, HERALD_PUBLISHER_) and passes its own default address to Listen.
type Ops struct {
	// HTTPAddr is the listen address; empty means the service's default.
	HTTPAddr string `env:"HTTP_ADDR"`
	// HTTPListener, if set, is used instead of listening on HTTPAddr.
	HTTPListener net.Listener `env:"-"`
}

// Addr is HTTPAddr, or def when it is empty.
func (o Ops) Addr(def string) string {
	if o.HTTPAddr == "" {
		return def
	}
	return o.HTTPAddr
}

// Listen returns HTTPListener if it is set, or listens on Addr(def).
func (o Ops) Listen(def string) (net.Listener, error) {
	return ops.Listen(o.HTTPListener, o.Addr(def))
}

// Admin is the bearer token that authorises ops on every gRPC method of a service.
type Admin struct {
	// AdminToken is required by the standalone services (see Validate); the local stack generates one.
	AdminToken string `env:"HERALD_ADMIN_TOKEN,unset"`
}

// Validate reports a missing token: a service must never answer admin calls without one.
func (a Admin) Validate() error {
	if a.AdminToken == "" {
		return errors.New("HERALD_ADMIN_TOKEN is required")
	}
	return nil
}
