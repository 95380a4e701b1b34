package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
)

// natsPassword is the password the local stack generated for service's NATS user.
func natsPassword(t testing.TB, dataDir string, s eventbus.Service) string {
	t.Helper()
	var sec struct {
		NATSPasswords map[string]string `json:"nats_passwords"`
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, "secrets.json"))
	if err != nil || json.Unmarshal(raw, &sec) != nil || sec.NATSPasswords[string(s)] == "" {
		t.Fatalf("no NATS password for %s in secrets.json: %v", s, err)
	}
	return sec.NATSPasswords[string(s)]
}

// connectAs connects to the stack's NATS as one of Herald's services, with the credentials the local
// stack generated for it: an attacker who stole that service's NATS password.
func connectAs(t *testing.T, natsURL, dataDir string, s eventbus.Service) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.UserInfo("herald-"+string(s), natsPassword(t, dataDir, s)), nats.CustomInboxPrefix(s.InboxPrefix()))
	if err != nil {
		t.Fatalf("connect as %s: %v", s, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publish sends a forged event and reports whether JetStream stored it.
func publish(t *testing.T, js jetstream.JetStream, subject string, m proto.Message) error {
	t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.Publish(ctx, subject, data, jetstream.WithMsgID(uuid.NewString()))
	return err
}

// metric reads a counter's value from a Prometheus text page; 0 when the series does not exist yet.
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	body := string(do(t, "GET", url+"/metrics", nil, nil).body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestForgedEventsChangeNothing forges every event the approval gate relies on, each with a service's
// real NATS credentials, and shows that nothing is posted and no post changes state.
func TestForgedEventsChangeNothing(t *testing.T) {
	st, logged, dataDir := startWithLogs(t)
	key := st.Info.DemoAPIKey
	gateway := connectAs(t, st.Info.NATSURL, dataDir, eventbus.ServiceGateway)
	approvalSvc := connectAs(t, st.Info.NATSURL, dataDir, eventbus.ServiceApproval)
	publisher := connectAs(t, st.Info.NATSURL, dataDir, eventbus.ServicePublisher)
	attacker, _ := sealtest.NewKey(t)
	now := timestamppb.Now()

	t.Run("approvals that the approval service did not seal are never posted", func(t *testing.T) {
		text := fmt.Sprintf("Forged: buy our coin %d", time.Now().UnixNano())
		forged := &eventsv1.PostApproved{PostId: uuid.NewString(), DepartmentId: "any", Text: text, ApprovedBy: "comms@example.com", ApprovedAt: now}
		// The gateway's credentials cannot even publish an approval.
		if err := publish(t, gateway, eventbus.SubjectApproved, forged); err == nil {
			t.Error("JetStream stored an approval published with the gateway's credentials")
		}
		// The approval service's credentials can, but without its signing key the publisher refuses.
		sum := seal.TextHash(text)
		selfSealed := proto.Clone(forged).(*eventsv1.PostApproved)
		selfSealed.PostId, selfSealed.TextSha256 = uuid.NewString(), sum[:]
		s := attacker.Sign(seal.Approval{PostID: selfSealed.PostId, DepartmentID: "any", TextSHA256: sum, Approver: "comms@example.com", ApprovedAt: now.AsTime()})
		selfSealed.Seal = &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
		for _, ev := range []*eventsv1.PostApproved{forged, selfSealed} {
			if err := publish(t, approvalSvc, eventbus.SubjectApproved, ev); err != nil {
				t.Fatalf("the approval service's credentials could not publish: %v", err)
			}
		}
		eventually(t, "the publisher to refuse both", func() bool {
			return metric(t, st.Info.PublisherOpsURL, `herald_publisher_refused_approvals_total{reason="unsigned"}`) >= 1 &&
				metric(t, st.Info.PublisherOpsURL, `herald_publisher_refused_approvals_total{reason="unknown_key"}`) >= 1
		})
		if got := tweetsWithText(t, st, text); len(got) != 0 {
			t.Errorf("the forged text is on the timeline: %v", got)
		}
		list := do(t, "GET", st.Info.SandboxURL+"/_sandbox/tweets", nil, nil)
		if strings.Contains(string(list.body), "Forged") {
			t.Errorf("a forged post reached X: %s", list.body)
		}
	})

	t.Run("outcomes that the publisher did not seal change no post", func(t *testing.T) {
		// A real post, approved, that X keeps refusing with 503 for now: it stays approved, which is the
		// state an outcome event would move.
		if r := do(t, "POST", st.Info.SandboxURL+"/_sandbox/faults", strings.NewReader(`{"status": 503, "count": 1000}`), nil); r.status != 204 {
			t.Fatalf("inject faults: %d %s", r.status, r.body)
		}
		text := fmt.Sprintf("Real post, X down %d", time.Now().UnixNano())
		loc := postJSON(t, st, key, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text)).header.Get("Location")
		id := loc[strings.LastIndex(loc, "/")+1:]
		if r := decide(t, approvalLink(t, st, text), "approve", ""); r.status != 200 {
			t.Fatalf("approve: %d", r.status)
		}
		before := do(t, "GET", loc, nil, map[string]string{"X-API-Key": key})
		if before.status != 202 || before.json(t)["status"] != "approved" {
			t.Fatalf("approved post = %d %s, want 202 approved", before.status, before.body)
		}
		forged := []struct {
			subject string
			event   proto.Message
		}{
			{eventbus.SubjectPublished, &eventsv1.PostPublished{PostId: id, Channel: "x", RemoteId: "666", Url: "https://evil.example/666", PublishedAt: now}},
			{eventbus.SubjectFailed, &eventsv1.PostFailed{PostId: id, Channel: "x", Reason: "forged failure", FailedAt: now}},
			{eventbus.SubjectUnknown, &eventsv1.PostUnknown{PostId: id, Channel: "x", Reason: "forged", At: now}},
		}
		sealedByAttacker := &eventsv1.PostPublished{PostId: id, Channel: "x", RemoteId: "667", Url: "https://evil.example/667", PublishedAt: now}
		s := attacker.Sign(seal.Outcome{PostID: id, Channel: "x", State: seal.StatePublished, RemoteID: "667", URL: "https://evil.example/667", At: now.AsTime()})
		sealedByAttacker.Seal = &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
		forged = append(forged, struct {
			subject string
			event   proto.Message
		}{eventbus.SubjectPublished, sealedByAttacker})
		for _, f := range forged {
			if err := publish(t, gateway, f.subject, f.event); err == nil {
				t.Errorf("JetStream stored a %s published with the gateway's credentials", f.subject)
			}
			if err := publish(t, publisher, f.subject, f.event); err != nil {
				t.Fatalf("the publisher's credentials could not publish %s: %v", f.subject, err)
			}
		}
		eventually(t, "the approval service to refuse all four", func() bool {
			sum := 0.0
			for _, series := range []string{
				`herald_approval_refused_events_total{reason="unsigned",subject="herald.posts.published"}`,
				`herald_approval_refused_events_total{reason="unsigned",subject="herald.posts.failed"}`,
				`herald_approval_refused_events_total{reason="unsigned",subject="herald.posts.unknown"}`,
				`herald_approval_refused_events_total{reason="unknown_key",subject="herald.posts.published"}`,
			} {
				sum += metric(t, st.Info.ApprovalOpsURL, series)
			}
			return sum >= 4
		})
		after := do(t, "GET", loc, nil, map[string]string{"X-API-Key": key})
		if after.status != 202 || after.json(t)["status"] != "approved" || strings.Contains(string(after.body), "evil") {
			t.Errorf("after the forgeries the department sees %d %s; want it still approved", after.status, after.body)
		}
		if !strings.Contains(logged.String(), "refused") {
			t.Error("the refusals were not logged")
		}
	})
}
