package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/notify"
)

func TestTeamsWebhookPostsAnAdaptiveCard(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &got) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	card := approval.TeamsCard{
		PostID: "p1", Department: "HR", RequestedBy: "jo@contoso.example", Text: "Welcome <b>all</b>",
		ExpiresAt: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Status: approval.StatusPending, ReviewURL: "https://herald.example/approvals/",
	}
	if err := notify.NewTeamsWebhook(srv.Client()).PostCard(context.Background(), srv.URL+"/hook?sig=secret", card); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil,
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
				"body": []any{
					map[string]any{"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": "Approval needed: post from HR", "wrap": true},
					map[string]any{"type": "TextBlock", "text": "Welcome <b>all</b>", "wrap": true},
					map[string]any{"type": "FactSet", "facts": []any{
						map[string]any{"title": "Requested by", "value": "jo@contoso.example"},
						map[string]any{"title": "Department", "value": "HR"},
						map[string]any{"title": "Expires", "value": "26 Nov 2026 09:00 UTC"},
					}},
					map[string]any{"type": "TextBlock", "wrap": true, "isSubtle": true, "text": "Each approver decides through the personal link in their Herald email."},
				},
				"actions": []any{map[string]any{"type": "Action.OpenUrl", "title": "Review in Herald", "url": "https://herald.example/approvals/"}},
			},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhook payload (-want +got):\n%s", diff)
	}
}

// TestTeamsWebhookErrors: a refusal is an error (the outbox retries), and the URL, which carries the
// webhook's signature, is not in it.
func TestTeamsWebhookErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "throttled", http.StatusTooManyRequests)
	}))
	url := srv.URL + "/hook?sig=secret"
	err := notify.NewTeamsWebhook(srv.Client()).PostCard(context.Background(), url, approval.TeamsCard{Status: approval.StatusApproved})
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("PostCard against a 429 = %v; want an error naming it", err)
	}
	srv.Close()
	err = notify.NewTeamsWebhook(srv.Client()).PostCard(context.Background(), url, approval.TeamsCard{Status: approval.StatusApproved})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("PostCard against a closed server = %v; want an error without the URL", err)
	}
}
