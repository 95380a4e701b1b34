package keyauth

import (
	"fmt"
	"testing"
	"time"
)

// TestFailuresTrackBoundedClients: however many addresses fail, at most maxClients are tracked; the least
// recently failing are forgotten first.
func TestFailuresTrackBoundedClients(t *testing.T) {
	t.Parallel()
	f := newFailures(2, time.Minute, 3)
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	f.failed("keep", now)
	f.failed("keep", now)
	for i := range 1000 {
		f.failed(fmt.Sprintf("198.51.100.%d", i%250), now)
		f.failed("keep", now) // keeps "keep" recent
	}
	if n := f.clients.len(); n != 3 {
		t.Errorf("%d clients tracked, want 3", n)
	}
	if _, blocked := f.blocked("keep", now); !blocked {
		t.Error("the recently failing client was forgotten")
	}
	if _, blocked := f.blocked("198.51.100.1", now); blocked {
		t.Error("a client evicted long ago is still tracked")
	}
}
