// Package testenv holds what every Herald test suite needs from the machine's real servers: a fresh
// PostgreSQL schema and a NATS server with JetStream. Under CI (CI=true) an unreachable server fails the
// test; elsewhere the test is skipped with a message saying why.
package testenv

import (
	"os"
	"testing"
)

// Unavailable fails the test under CI and skips it elsewhere, naming the missing server.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but unreachable: %v", what, err)
	}
	t.Skipf("%s unreachable (%v); start it to run this test (CI=true makes this a failure)", what, err)
}
