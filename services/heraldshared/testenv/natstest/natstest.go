// Package natstest provides NATS servers with JetStream for tests: an embedded one per test, and the
// machine's own server at 127.0.0.1:4222.
package natstest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/services/heraldshared/testenv"
)

// LocalURL is the development machines' NATS server; HERALD_TEST_NATS_URL overrides it.
const LocalURL = "nats://127.0.0.1:4222"

// Embedded starts an in-process NATS server with JetStream on a free port, storing under a temporary
// directory, and returns its URL. It is shut down when the test ends.
func Embedded(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// Local returns the URL of the machine's NATS server, failing under CI and skipping elsewhere when it
// cannot be reached.
func Local(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HERALD_TEST_NATS_URL")
	if u == "" {
		u = LocalURL
	}
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
	if err != nil {
		testenv.Unavailable(t, "NATS at "+u, err)
		return ""
	}
	defer nc.Close()
	return u
}
