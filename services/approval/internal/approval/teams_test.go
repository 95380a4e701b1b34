package approval_test

import (
	"context"
	"sync"
	"testing"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// fakeTeams records the cards posted, by webhook URL.
type fakeTeams struct {
	mu    sync.Mutex
	cards map[string][]approval.TeamsCard
}

func (f *fakeTeams) PostCard(_ context.Context, url string, c approval.TeamsCard) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cards[url] = append(f.cards[url], c)
	return nil
}

// TestTeamsCards: a department whose policy names a webhook gets a request card and an outcome card per
// post, each once; others get none.
func TestTeamsCards(t *testing.T) {
	teams := &fakeTeams{cards: map[string][]approval.TeamsCard{}}
	f := setupWith(t, func(c *approval.Config) { c.Teams = teams })
	ctx := context.Background()
	f.request(t, "No Teams for this one")
	f.advance(t, 0)
	const hook = "https://contoso.webhook.office.com/workflows/abc"
	if _, _, err := f.svc.SetPolicy(ctx, approval.PolicyInput{DepartmentID: f.dept.ID, TeamsWebhookURL: hook}); err != nil {
		t.Fatal(err)
	}
	id := f.request(t, "Shown in Teams")
	f.advance(t, 0)
	if _, err := f.svc.DecideEdited(ctx, token(f.links(t)["a@example.com"]), approval.OutcomeApprove, "nice", "test", "Shown in Teams!"); err != nil {
		t.Fatal(err)
	}
	f.advance(t, 0)
	f.advance(t, 0)
	got := teams.cards[hook]
	if len(teams.cards) != 1 || len(got) != 2 {
		t.Fatalf("cards = %+v; want a request and an outcome card on %s only", teams.cards, hook)
	}
	req, out := got[0], got[1]
	if req.PostID != id || req.Status != approval.StatusPending || req.Text != "Shown in Teams" || req.Department != "HR" ||
		req.ReviewURL != "http://gw.example/approvals/" || req.ExpiresAt.IsZero() {
		t.Errorf("request card = %+v", req)
	}
	if out.Status != approval.StatusApproved || out.DecidedBy != "a@example.com" || out.Comment != "nice" || out.FinalText != "Shown in Teams!" {
		t.Errorf("outcome card = %+v", out)
	}
}
