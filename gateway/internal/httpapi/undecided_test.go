package httpapi

import (
	"testing"
	"time"
)

// TestUndecidedCountsAreReusedBriefly: a department's count is asked for once a second at most, posts this
// replica accepts meanwhile are added to it, and an old count is asked for again.
func TestUndecidedCountsAreReusedBriefly(t *testing.T) {
	t.Parallel()
	u := newUndecidedCounts(time.Second)
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	if _, ok := u.get("hr", now); ok {
		t.Fatal("a count never fetched was fresh")
	}
	u.accepted("hr") // nothing to add to yet: the next fetch counts it
	u.set("hr", 3, now)
	u.accepted("hr")
	u.accepted("hr")
	if n, ok := u.get("hr", now.Add(999*time.Millisecond)); !ok || n != 5 {
		t.Errorf("within the second: %d, %v; want 5 (3 fetched + 2 accepted here), fresh", n, ok)
	}
	if _, ok := u.get("finance", now); ok {
		t.Error("another department's count was fresh")
	}
	if _, ok := u.get("hr", now.Add(time.Second)); ok {
		t.Error("a count a second old was still used")
	}
	u.set("hr", 2, now)
	u.forget("hr")
	if _, ok := u.get("hr", now); ok {
		t.Error("a forgotten count (a decision made room) was still used")
	}
}
