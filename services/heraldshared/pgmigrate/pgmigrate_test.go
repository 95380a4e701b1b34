package pgmigrate_test

import (
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/pgmigrate"
)

// TestLockIDsSeparateServicesAndSchemas: two services in one schema, or one service in two schemas, must
// not wait for each other (the lock ids differ), while the same service and schema always share one.
func TestLockIDsSeparateServicesAndSchemas(t *testing.T) {
	id := pgmigrate.LockID
	if id("herald-approval", "a") != id("herald-approval", "a") {
		t.Error("one service and schema got two lock ids")
	}
	if id("herald-approval", "a") == id("herald-publisher", "a") {
		t.Error("two services in one schema share a lock id")
	}
	if id("herald-approval", "a") == id("herald-approval", "b") {
		t.Error("one service in two schemas shares a lock id")
	}
}
