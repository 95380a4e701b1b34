package grpcapi

import (
	"testing"

	publisherv1 "github.com/heraldhq/herald/proto/herald/publisher/v1"
	"github.com/heraldhq/herald/services/heraldshared/testenv/enumtest"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// TestStatesCoverEveryValue holds the ledger ↔ proto mapping to every ledger state declared in the
// ledger package and every PublicationState in the generated code: a state added on either side and
// forgotten here fails.
func TestStatesCoverEveryValue(t *testing.T) {
	t.Parallel()
	want := map[ledger.State]publisherv1.PublicationState{
		ledger.StateAttempting: publisherv1.PublicationState_PUBLICATION_STATE_ATTEMPTING,
		ledger.StatePublished:  publisherv1.PublicationState_PUBLICATION_STATE_PUBLISHED,
		ledger.StateFailed:     publisherv1.PublicationState_PUBLICATION_STATE_FAILED,
		ledger.StateUnknown:    publisherv1.PublicationState_PUBLICATION_STATE_UNKNOWN,
	}
	for _, s := range enumtest.StringConsts(t, "../ledger", "State") {
		st := ledger.State(s)
		got, ok := states[st]
		if !ok || got == publisherv1.PublicationState_PUBLICATION_STATE_UNSPECIFIED {
			t.Errorf("ledger state %q has no PublicationState", s)
			continue
		}
		if w, ok := want[st]; !ok {
			t.Errorf("ledger state %q is missing from this test's table", s)
		} else if got != w {
			t.Errorf("ledger state %q becomes %v, want %v", s, got, w)
		}
	}
	mappedFrom := map[publisherv1.PublicationState]ledger.State{}
	for s, p := range states {
		if prev, dup := mappedFrom[p]; dup {
			t.Errorf("ledger states %q and %q both become %v", prev, s, p)
		}
		mappedFrom[p] = s
	}
	for n, name := range publisherv1.PublicationState_name {
		p := publisherv1.PublicationState(n)
		if _, ok := mappedFrom[p]; !ok && p != publisherv1.PublicationState_PUBLICATION_STATE_UNSPECIFIED {
			t.Errorf("%s is what no ledger state becomes", name)
		}
	}
}
