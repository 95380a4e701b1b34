package e2e

import (
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// TestRequestThatCanNeverBeProcessedEndsFailed: a post request that reached the bus without the gateway's
// checks (published with the gateway's NATS credentials) and that the approval service refuses ends as a
// failed post the department can read, with the reason, instead of vanishing or being redelivered.
func TestRequestThatCanNeverBeProcessedEndsFailed(t *testing.T) {
	st, _, dataDir := startWithLogs(t)
	gateway := connectAs(t, st.Info.NATSURL, dataDir, eventbus.ServiceGateway)
	id := uuid.NewString()
	ev := &eventsv1.PostRequested{PostId: id, DepartmentId: demoDepartmentID(t, st), Text: "Hi\x00there", RequestedBy: "jo", RequestedAt: timestamppb.Now()}
	if err := publish(t, gateway, eventbus.SubjectRequested, ev); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	eventually(t, "the post to end failed", func() bool {
		r := do(t, "GET", st.Info.GatewayURL+"/v1/posts/"+id, nil, map[string]string{"X-API-Key": st.Info.DemoAPIKey})
		if r.status != 200 {
			return false
		}
		got = r.json(t)
		return got["status"] == "failed"
	})
	const reason = "Herald refused this request: the text contains the control character U+0000 at character 3"
	if got["failure_reason"] != reason {
		t.Errorf("failure_reason = %q, want %q", got["failure_reason"], reason)
	}
	if n := metric(t, st.Info.ApprovalOpsURL, `herald_approval_events_given_up_total{subject="`+eventbus.SubjectRequested+`"}`); n != 1 {
		t.Errorf("herald_approval_events_given_up_total for requests = %v, want 1", n)
	}
}
