package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// The polling hints, scaled down so that honouring them keeps the test short; different, so that the test
// sees which one the gateway gave.
var flowEnv = map[string]string{"HERALD_RETRY_AFTER": "1s", "HERALD_RETRY_AFTER_PENDING": "2s"}

// retryAfter reads a Retry-After in seconds, failing the test when it is missing or not positive.
func retryAfter(t *testing.T, r response) time.Duration {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("%d answer with Retry-After %q, want a positive number of seconds", r.status, r.header.Get("Retry-After"))
	}
	return time.Duration(n) * time.Second
}

// TestPowerAutomateFlow does what Power Automate does with the connector's one action: POST, then follow
// Location after Retry-After seconds until the answer is 200, and read every field the definition
// promises, for an approval and a rejection. The approver decides while the flow polls.
func TestPowerAutomateFlow(t *testing.T) {
	st, _, _ := startWithEnv(t, flowEnv)
	key := st.Info.DemoAPIKey
	for _, tc := range []struct{ decision, outcome, status string }{
		{"approve", "approved", "published"},
		{"reject", "rejected", "rejected"},
	} {
		t.Run(tc.decision, func(t *testing.T) {
			text := "Flow walk-through: " + tc.decision + " " + time.Now().Format(time.RFC3339Nano)
			r := do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"tweet": %q, "requestedby": "jo@contoso.example"}`, text)),
				map[string]string{"X-API-Key": key, "Content-Type": "application/json", "Idempotency-Key": "run-" + tc.decision})
			if r.status != http.StatusAccepted {
				t.Fatalf("POST = %d %s, want 202", r.status, r.body)
			}
			location := r.header.Get("Location")
			if !strings.HasPrefix(location, st.Info.GatewayURL+"/v1/posts/") {
				t.Fatalf("Location %q is not the absolute status URL", location)
			}
			if got := retryAfter(t, r); got != 2*time.Second {
				t.Errorf("Retry-After of a post waiting for a person = %v, want HERALD_RETRY_AFTER_PENDING (2s)", got)
			}
			decided := false
			deadline := time.Now().Add(60 * time.Second)
			for r.status == http.StatusAccepted {
				if time.Now().After(deadline) {
					t.Fatalf("still 202 at the deadline: %s", r.body)
				}
				wait := retryAfter(t, r)
				switch s := r.json(t)["status"]; {
				case s == "pending" && wait != 2*time.Second, s == "approved" && wait != time.Second:
					t.Errorf("status %v with Retry-After %v", s, wait)
				case s != "pending" && s != "approved":
					t.Fatalf("202 with status %v", s)
				}
				if !decided {
					if res := decide(t, approvalLink(t, st, text), tc.decision, "Lovely"); res.status != http.StatusOK {
						t.Fatalf("decision: %d %s", res.status, res.body)
					}
					decided = true
				}
				<-time.After(wait) // Power Automate waits Retry-After before it polls again.
				r = do(t, "GET", location, nil, map[string]string{"X-API-Key": key})
			}
			if r.status != http.StatusOK {
				t.Fatalf("final answer %d %s, want 200", r.status, r.body)
			}
			checkResult(t, r.json(t), text, tc.outcome, tc.status)
		})
	}
}

// checkResult reads every field of the result the connector definition promises a flow.
func checkResult(t *testing.T, m map[string]any, text, outcome, status string) {
	t.Helper()
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return s
	}
	stamp := func(m map[string]any, k string) {
		if _, err := time.Parse(time.RFC3339Nano, str(m, k)); err != nil {
			t.Errorf("%s = %q, not a timestamp", k, m[k])
		}
	}
	if str(m, "id") == "" || str(m, "status") != status || str(m, "tweet") != text || str(m, "requestedby") != "jo@contoso.example" {
		t.Errorf("result %v, want status %s, the tweet and the requester", m, status)
	}
	stamp(m, "created_at")
	d, _ := m["decision"].(map[string]any)
	if d == nil || str(d, "outcome") != outcome || str(d, "approver") != stack.DemoApprover || str(d, "comment") != "Lovely" {
		t.Fatalf("decision %v, want %s by %s with the comment", m["decision"], outcome, stack.DemoApprover)
	}
	stamp(d, "decided_at")
	p, _ := m["publication"].(map[string]any)
	if status != "published" {
		if p != nil {
			t.Errorf("a %s post has a publication: %v", status, p)
		}
		return
	}
	if p == nil || str(p, "channel") != "x" || str(p, "remote_id") == "" || !strings.HasSuffix(str(p, "url"), "/status/"+str(p, "remote_id")) {
		t.Fatalf("publication %v, want channel x, a remote id and its URL", m["publication"])
	}
	stamp(p, "published_at")
	if str(m, "failure_reason") != "" {
		t.Errorf("failure_reason %q on a published post", m["failure_reason"])
	}
}

func TestIdempotencyKey(t *testing.T) {
	st, _, _ := startWithEnv(t, flowEnv)
	post := func(key, text string) response {
		return do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text)),
			map[string]string{"X-API-Key": st.Info.DemoAPIKey, "Content-Type": "application/json", "Idempotency-Key": key})
	}

	t.Run("same key and body twice: the same answer; another body: 422", func(t *testing.T) {
		first, again := post("k-same", "Same twice"), post("k-same", "Same twice")
		if first.status != 202 || again.status != 202 || string(first.body) != string(again.body) || first.header.Get("Location") != again.header.Get("Location") {
			t.Fatalf("answers %d %s / %d %s, want the same 202", first.status, first.body, again.status, again.body)
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Error("a replayed answer without Idempotent-Replayed: true")
		}
		if r := post("k-same", "Another text"); r.status != http.StatusUnprocessableEntity || r.json(t)["error"].(map[string]any)["target"] != "Idempotency-Key" {
			t.Errorf("another body: %d %s, want 422 on Idempotency-Key", r.status, r.body)
		}
		// Polled at once, the key-derived id is pending, never 404.
		if r := do(t, "GET", first.header.Get("Location"), nil, map[string]string{"X-API-Key": st.Info.DemoAPIKey}); r.status != http.StatusAccepted {
			t.Errorf("polling the new post: %d %s, want 202", r.status, r.body)
		}
	})

	t.Run("concurrent requests with one key", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			texts [2]string
		}{
			{"same body: one 202 and a 409, or the same answer twice", [2]string{"Racing", "Racing"}},
			{"different bodies: one 202 and a 422 or 409", [2]string{"Racing A", "Racing B"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := "k-race-" + tc.texts[1]
				var got [2]response
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() { got[i] = post(key, tc.texts[i]) })
				}
				wg.Wait()
				var winner *response
				for i := range got {
					switch got[i].status {
					case http.StatusAccepted:
						if winner != nil && string(winner.body) != string(got[i].body) {
							t.Fatalf("two different 202s for one key: %s / %s", winner.body, got[i].body)
						}
						winner = &got[i]
					case http.StatusConflict:
						retryAfter(t, got[i])
					case http.StatusUnprocessableEntity:
						if tc.texts[0] == tc.texts[1] {
							t.Errorf("422 for the same body")
						}
					default:
						t.Errorf("answer %d %s", got[i].status, got[i].body)
					}
				}
				if winner == nil {
					t.Fatalf("no 202 among %d / %d", got[0].status, got[1].status)
				}
				// What is stored is what the 202 echoed.
				want := winner.json(t)["tweet"]
				eventually(t, "the post recorded", func() bool {
					r := do(t, "GET", winner.header.Get("Location"), nil, map[string]string{"X-API-Key": st.Info.DemoAPIKey})
					m := r.json(t)
					if m["tweet"] != nil && m["tweet"] != want {
						t.Fatalf("stored %v, the 202 said %v", m["tweet"], want)
					}
					return m["tweet"] == want
				})
			})
		}
	})
}

// departmentWithLimits creates a department with these limits and returns an API key of it.
func departmentWithLimits(t *testing.T, st *stack.Stack, name string, l *approvalv1.DepartmentLimits) string {
	t.Helper()
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := approvalv1.NewAdminServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	d, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	set, err := admin.SetDepartmentLimits(ctx, &approvalv1.SetDepartmentLimitsRequest{DepartmentId: d.GetDepartment().GetId(), Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := admin.GetDepartmentLimits(ctx, &approvalv1.GetDepartmentLimitsRequest{DepartmentId: d.GetDepartment().GetId()}); err != nil ||
		got.GetEffective().GetPostsPerMinute() != set.GetEffective().GetPostsPerMinute() || got.GetEffective().GetMaxUndecided() != l.GetMaxUndecided() {
		t.Fatalf("GetDepartmentLimits = %v, %v; want what was set (%v)", got, err, set)
	}
	k, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: d.GetDepartment().GetId(), Label: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	return k.GetSecret()
}

func TestRunawayFlowGets429(t *testing.T) {
	st, _, _ := startWithEnv(t, flowEnv)
	body := func(text string) string { return fmt.Sprintf(`{"tweet": %q, "requestedby": "loop"}`, text) }
	code := func(r response) any { return r.json(t)["error"].(map[string]any)["code"] }

	t.Run("rate per API key", func(t *testing.T) {
		key := departmentWithLimits(t, st, "Looping", &approvalv1.DepartmentLimits{PostsPerMinute: 2, MaxUndecided: 100})
		for i := range 2 {
			if r := postJSON(t, st, key, body(fmt.Sprintf("Loop %d", i))); r.status != http.StatusAccepted {
				t.Fatalf("post %d within the rate: %d %s", i, r.status, r.body)
			}
		}
		r := postJSON(t, st, key, body("Loop 2"))
		if r.status != http.StatusTooManyRequests || code(r) != "rate_limited" {
			t.Fatalf("third post within a minute: %d %s, want 429 rate_limited", r.status, r.body)
		}
		if wait := retryAfter(t, r); wait > 30*time.Second {
			t.Errorf("Retry-After %v, want the time until a token is back (30s at 2 a minute)", wait)
		}
	})

	t.Run("undecided posts per department", func(t *testing.T) {
		key := departmentWithLimits(t, st, "Flooding", &approvalv1.DepartmentLimits{PostsPerMinute: 100, MaxUndecided: 2})
		var texts []string
		for i := range 2 {
			texts = append(texts, fmt.Sprintf("Waiting %d", i))
			if r := postJSON(t, st, key, body(texts[i])); r.status != http.StatusAccepted {
				t.Fatalf("post %d within the cap: %d %s", i, r.status, r.body)
			}
		}
		// Both recorded (their emails went out): the cap is reached.
		links := []string{approvalLink(t, st, texts[0]), approvalLink(t, st, texts[1])}
		r := postJSON(t, st, key, body("One too many"))
		if r.status != http.StatusTooManyRequests || code(r) != "too_many_undecided" {
			t.Fatalf("third undecided post: %d %s, want 429 too_many_undecided", r.status, r.body)
		}
		if wait := retryAfter(t, r); wait != 2*time.Second {
			t.Errorf("Retry-After %v, want HERALD_RETRY_AFTER_PENDING (2s): room frees up when a person decides", wait)
		}
		if res := decide(t, links[0], "reject", "no"); res.status != http.StatusOK {
			t.Fatalf("decision: %d", res.status)
		}
		if r := postJSON(t, st, key, body("Room again")); r.status != http.StatusAccepted {
			t.Errorf("after a decision: %d %s, want 202", r.status, r.body)
		}
	})
}
