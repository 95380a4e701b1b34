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
	"time"

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

// NATS is the NATS server with JetStream that carries Herald's events, and this service's own
// credentials on it: each service has its own NATS user, allowed only its own subjects
// (eventbus.GrantsFor; deploy/nats holds the server's side).
type NATS struct {
	NATSURL string `env:"HERALD_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// Stream is the JetStream stream's name; empty means eventbus.Stream. Set it when another
	// application on a shared NATS server already uses that name.
	Stream string `env:"HERALD_STREAM"`
	// NATSUser and NATSPassword (or NATSPasswordFile, for mounted secrets) are this service's NATS user.
	NATSUser         string `env:"HERALD_NATS_USER"`
	NATSPassword     string `env:"HERALD_NATS_PASSWORD,unset"`
	NATSPasswordFile string `env:"HERALD_NATS_PASSWORD_FILE"`
	// NATSCredsFile is a NATS credentials file (user JWT and nkey seed), for servers using decentralised
	// authentication instead of a user and password.
	NATSCredsFile string `env:"HERALD_NATS_CREDS_FILE"`
	// NATSCAFile turns on TLS to NATS, trusting this CA; NATSCertFile and NATSKeyFile add a client
	// certificate for mutual TLS.
	NATSCAFile   string `env:"HERALD_NATS_CA_FILE"`
	NATSCertFile string `env:"HERALD_NATS_CERT_FILE"`
	NATSKeyFile  string `env:"HERALD_NATS_KEY_FILE"`
	// StreamReplicas, StreamStorage and StreamDuplicateWindow are the stream's and buckets' durability
	// (eventbus.Durability): 3 replicas in a three-node cluster, file storage unless losing everything
	// at a restart is fine. The approval service applies them; the others only warn when the stream
	// differs, so give every service the same values.
	StreamReplicas        int           `env:"HERALD_STREAM_REPLICAS" envDefault:"1"`
	StreamStorage         string        `env:"HERALD_STREAM_STORAGE" envDefault:"file"`
	StreamDuplicateWindow time.Duration `env:"HERALD_STREAM_DUPLICATE_WINDOW" envDefault:"1h"`
}

// Durability is the stream's configured durability. A zero NATS (a test's, not read from the
// environment) has eventbus.DefaultDurability.
func (n NATS) Durability() (eventbus.Durability, error) {
	d := eventbus.DefaultDurability()
	if n.StreamReplicas != 0 {
		d.Replicas = n.StreamReplicas
	}
	switch n.StreamStorage {
	case "", "file":
	case "memory":
		d.Storage = jetstream.MemoryStorage
	default:
		return d, fmt.Errorf("HERALD_STREAM_STORAGE = %q: want file or memory", n.StreamStorage)
	}
	if n.StreamDuplicateWindow != 0 {
		d.DuplicateWindow = n.StreamDuplicateWindow
	}
	return d, d.Validate()
}

// Connect dials NATS as service (its credentials, its inbox), with the client name in the server's
// monitoring. The approval service creates the stream or brings it to the configured durability; the
// others wait for it. extra adds options (eventbus.WithLogger, say).
func (n NATS) Connect(ctx context.Context, service eventbus.Service, name string, extra ...eventbus.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts, err := n.options()
	if err != nil {
		return nil, nil, err
	}
	d, err := n.Durability()
	if err != nil {
		return nil, nil, err
	}
	all := append([]eventbus.Option{eventbus.WithStream(n.Stream), eventbus.AsService(service), eventbus.WithNATSOptions(opts...), eventbus.WithDurability(d)}, extra...)
	return eventbus.Connect(ctx, n.NATSURL, name, all...)
}

// options turns the credentials and TLS settings into connection options.
func (n NATS) options() ([]nats.Option, error) {
	var opts []nats.Option
	password, err := secret(n.NATSPassword, n.NATSPasswordFile, "HERALD_NATS_PASSWORD")
	if err != nil {
		return nil, err
	}
	switch {
	case n.NATSCredsFile != "" && n.NATSUser != "":
		return nil, errors.New("set HERALD_NATS_CREDS_FILE or HERALD_NATS_USER, not both")
	case n.NATSCredsFile != "":
		opts = append(opts, nats.UserCredentials(n.NATSCredsFile))
	case n.NATSUser != "":
		if password == "" {
			return nil, errors.New("HERALD_NATS_USER needs HERALD_NATS_PASSWORD or HERALD_NATS_PASSWORD_FILE")
		}
		opts = append(opts, nats.UserInfo(n.NATSUser, password))
	case password != "":
		return nil, errors.New("HERALD_NATS_PASSWORD needs HERALD_NATS_USER")
	}
	if n.NATSCAFile != "" {
		opts = append(opts, nats.RootCAs(n.NATSCAFile))
	}
	if (n.NATSCertFile == "") != (n.NATSKeyFile == "") {
		return nil, errors.New("HERALD_NATS_CERT_FILE and HERALD_NATS_KEY_FILE go together")
	}
	if n.NATSCertFile != "" {
		opts = append(opts, nats.ClientCert(n.NATSCertFile, n.NATSKeyFile))
	}
	return opts, nil
}

// secret returns value, or the trimmed contents of file when value is empty: the usual way to mount a
// secret. Setting both is an error rather than a silent choice.
func secret(value, file, name string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
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

// Shutdown is how a service stops on SIGTERM: readiness turns false at once, the service keeps serving
// for ShutdownDelay so that load balancers and Kubernetes notice and send nothing more, then it stops
// accepting, finishes the requests in flight and drains its consumers.
type Shutdown struct {
	// ShutdownDelay is 5s for the standalone services; the local stack and tests use 0 unless it is set.
	ShutdownDelay time.Duration `env:"HERALD_SHUTDOWN_DELAY" envDefault:"5s"`
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
