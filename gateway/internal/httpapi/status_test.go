package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// TestPostStatusNames holds the proto → JSON mapping of post statuses, and the HTTP status each gets, to
// every value of the generated PostStatus: a status added to the proto and forgotten here fails.
func TestPostStatusNames(t *testing.T) {
	t.Parallel()
	tests := map[approvalv1.PostStatus]struct {
		json string
		code int
	}{
		approvalv1.PostStatus_POST_STATUS_PENDING:   {"pending", http.StatusAccepted},
		approvalv1.PostStatus_POST_STATUS_APPROVED:  {"approved", http.StatusAccepted},
		approvalv1.PostStatus_POST_STATUS_REJECTED:  {"rejected", http.StatusOK},
		approvalv1.PostStatus_POST_STATUS_PUBLISHED: {"published", http.StatusOK},
		approvalv1.PostStatus_POST_STATUS_FAILED:    {"failed", http.StatusOK},
		approvalv1.PostStatus_POST_STATUS_UNKNOWN:   {"unknown", http.StatusOK},
		approvalv1.PostStatus_POST_STATUS_EXPIRED:   {"expired", http.StatusOK},
		approvalv1.PostStatus_POST_STATUS_CANCELLED: {"cancelled", http.StatusOK},
	}
	s := &server{cfg: Config{RetryAfter: 5 * time.Second}}
	seen := map[string]approvalv1.PostStatus{}
	for n, name := range approvalv1.PostStatus_name {
		st := approvalv1.PostStatus(n)
		t.Run(name, func(t *testing.T) {
			if st == approvalv1.PostStatus_POST_STATUS_UNSPECIFIED {
				if got, ok := statusNames[st]; ok {
					t.Errorf("%s has the name %q; no post is ever in it", name, got)
				}
				return
			}
			want, ok := tests[st]
			if !ok {
				t.Fatalf("%s is missing from this test's table", name)
			}
			if got := statusNames[st]; got != want.json {
				t.Errorf("%s is %q in JSON, want %q", name, got, want.json)
			}
			w := httptest.NewRecorder()
			s.answerPost(w, &approvalv1.Post{Id: "p1", Status: st})
			if w.Code != want.code {
				t.Errorf("%s answers %d, want %d", name, w.Code, want.code)
			}
			if polling := w.Header().Get("Retry-After") != ""; polling != (want.code == http.StatusAccepted) {
				t.Errorf("%s: Retry-After %q with status %d", name, w.Header().Get("Retry-After"), w.Code)
			}
		})
		if v := statusNames[st]; v != "" {
			if prev, dup := seen[v]; dup {
				t.Errorf("%s and %s are both %q in JSON", prev, st, v)
			}
			seen[v] = st
		}
	}
}

// TestOutcomeNames does the same for a decision's outcome.
func TestOutcomeNames(t *testing.T) {
	t.Parallel()
	want := map[approvalv1.Outcome]string{
		approvalv1.Outcome_OUTCOME_APPROVE: "approved",
		approvalv1.Outcome_OUTCOME_REJECT:  "rejected",
	}
	for n, name := range approvalv1.Outcome_name {
		o := approvalv1.Outcome(n)
		if o == approvalv1.Outcome_OUTCOME_UNSPECIFIED {
			if got, ok := outcomeNames[o]; ok {
				t.Errorf("%s has the name %q", name, got)
			}
			continue
		}
		w, ok := want[o]
		if !ok {
			t.Errorf("%s is missing from this test's table", name)
			continue
		}
		got := toView(&approvalv1.Post{Id: "p1", Decision: &approvalv1.Decision{Outcome: o}}).Decision.Outcome
		if got != w {
			t.Errorf("%s is %q in JSON, want %q", name, got, w)
		}
	}
}

// TestWebhookEventNames holds the proto → JSON mapping of webhook events to every value of the generated
// WebhookEvent (UNSPECIFIED has no name), and names them as the connector definition's enum does.
func TestWebhookEventNames(t *testing.T) {
	t.Parallel()
	want := map[approvalv1.WebhookEvent]string{
		approvalv1.WebhookEvent_WEBHOOK_EVENT_PUBLISHED: "published",
		approvalv1.WebhookEvent_WEBHOOK_EVENT_REJECTED:  "rejected",
		approvalv1.WebhookEvent_WEBHOOK_EVENT_FAILED:    "failed",
		approvalv1.WebhookEvent_WEBHOOK_EVENT_EXPIRED:   "expired",
	}
	for n := range approvalv1.WebhookEvent_name {
		e := approvalv1.WebhookEvent(n)
		if got := eventNames[e]; got != want[e] {
			t.Errorf("%s is %q, want %q", e, got, want[e])
		}
		if back, ok := eventByName(want[e]); e != 0 && (!ok || back != e) {
			t.Errorf("%q comes back as %s", want[e], back)
		}
	}
	if _, ok := eventByName(""); ok {
		t.Error("the empty name is an event")
	}
}
