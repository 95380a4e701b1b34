package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// TestGiveUpLeavesNoPostApprovedForever: when the consumer stops delivering an approval that never got
// through, the post ends failed (never sent) or unknown (an attempt open), announced either way, and
// nothing is posted by giving up.
func TestGiveUpLeavesNoPostApprovedForever(t *testing.T) {
	ctx := context.Background()
	cause := errors.New("the ledger's database kept failing")

	t.Run("never sent", func(t *testing.T) {
		f := setup(t)
		a := approved("Never got through")
		if err := f.svc.GiveUp(ctx, a, cause); err != nil {
			t.Fatal(err)
		}
		p, err := f.store.Get(ctx, a.PostID)
		if err != nil || p.State != ledger.StateFailed || p.Error != ledger.GaveUpReason {
			t.Fatalf("ledger = %+v, %v; want failed with the give-up reason", p, err)
		}
		if n := f.outcomes(t, eventbus.SubjectFailed, a.PostID); n != 1 {
			t.Errorf("%d failure announcements, want 1", n)
		}
		if got := f.sandbox.Tweets(); len(got) != 0 {
			t.Errorf("giving up posted %v", got)
		}
	})

	t.Run("attempt open", func(t *testing.T) {
		f := setup(t)
		a := approved("Attempt left open")
		now := time.Now()
		if _, _, err := f.store.Begin(ctx, ledger.Publication{PostID: a.PostID, Channel: "x", State: ledger.StateAttempting, Text: a.Text, Attempts: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.GiveUp(ctx, a, cause); err != nil {
			t.Fatal(err)
		}
		if p, err := f.store.Get(ctx, a.PostID); err != nil || p.State != ledger.StateUnknown {
			t.Fatalf("ledger = %+v, %v; want unknown", p, err)
		}
		if n := f.outcomes(t, eventbus.SubjectUnknown, a.PostID); n != 1 {
			t.Errorf("%d unknown announcements, want 1", n)
		}
		if got := f.sandbox.Tweets(); len(got) != 0 {
			t.Errorf("giving up posted %v", got)
		}
	})

	t.Run("already published", func(t *testing.T) {
		f := setup(t)
		a := approved("Published before the give-up")
		if err := f.svc.HandleApproved(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.GiveUp(ctx, a, cause); err != nil {
			t.Fatal(err)
		}
		if p, err := f.store.Get(ctx, a.PostID); err != nil || p.State != ledger.StatePublished {
			t.Fatalf("ledger = %+v, %v; want it still published", p, err)
		}
		if got := f.sandbox.Tweets(); len(got) != 1 {
			t.Errorf("%d tweets, want the one", len(got))
		}
	})
}
