package e2e

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// TestOperatorMetrics scrapes the running services for the gauges the alert rules of deploy/k8s/monitoring
// read: after a post went through, the consumers report no lag, no post is overdue or unknown, the outbox
// has nothing due, and the publisher knows X's posting window (the sandbox sends its headers).
func TestOperatorMetrics(t *testing.T) {
	st := start(t)
	text := fmt.Sprintf("Metrics for the alerts %d", time.Now().UnixNano())
	r := postJSON(t, st, st.Info.DemoAPIKey, fmt.Sprintf(`{"tweet": %q, "requestedby": "ops"}`, text))
	decide(t, approvalLink(t, st, text), "approve", "")
	pollFinal(t, st, st.Info.DemoAPIKey, r.header.Get("Location"))

	want := map[string][]string{
		st.Info.ApprovalOpsURL: {
			`herald_consumer_pending_messages\{consumer="[^"]+-requested"\} 0`,
			`herald_consumer_ack_pending_messages\{consumer="[^"]+-published"\} 0`,
			`herald_approval_posts_overdue 0`,
			`herald_approval_posts_unknown 0`,
			`herald_approval_outbox_oldest_due_seconds 0`,
			`herald_approval_outbox_failing 0`,
		},
		st.Info.PublisherOpsURL: {
			`herald_consumer_pending_messages\{consumer="[^"]+-approved"\} 0`,
			`herald_publisher_x_rate_limit_limit [1-9][0-9]*`,
			`herald_publisher_x_rate_limit_remaining [0-9]+`,
			`herald_publisher_x_rate_limit_reset_timestamp_seconds [0-9.e+]+`,
		},
	}
	for base, patterns := range want {
		// The outcome event reaches the approval service a moment after the status turned final.
		deadline := time.Now().Add(10 * time.Second)
		for {
			body := do(t, "GET", base+"/metrics", nil, nil).body
			var missing []string
			for _, p := range patterns {
				if !regexp.MustCompile(`(?m)^` + p + `$`).Match(body) {
					missing = append(missing, p)
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s/metrics lacks %q:\n%s", base, missing, body)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
