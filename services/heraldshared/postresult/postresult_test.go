package postresult

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// TestEventCarriesTheResult: a delivery's body is the Standard Webhooks envelope whose data is, field for
// field, the result object FromProto makes (what GET /v1/posts/{id} answers).
func TestEventCarriesTheResult(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	p := &approvalv1.Post{
		Id: "p1", Text: "Hello", RequestedBy: "jo", Status: approvalv1.PostStatus_POST_STATUS_PUBLISHED, CreatedAt: timestamppb.New(at),
		Decision:    &approvalv1.Decision{Outcome: approvalv1.Outcome_OUTCOME_APPROVE, Approver: "comms@example.com", DecidedAt: timestamppb.New(at), Comment: "ok"},
		Publication: &approvalv1.Publication{Channel: "x", RemoteId: "9", Url: "https://x.com/i/web/status/9", PublishedAt: timestamppb.New(at)},
	}
	b, err := MarshalEvent("published", at.Add(time.Second), p)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(FromProto(p))
	var wantData map[string]any
	_ = json.Unmarshal(want, &wantData)
	if got["type"] != "post.published" || got["timestamp"] != "2026-11-25T04:00:01Z" {
		t.Errorf("envelope %s", b)
	}
	if diff := cmp.Diff(wantData, got["data"]); diff != "" {
		t.Errorf("data (-result +delivered):\n%s", diff)
	}
	if wantData["status"] != "published" || wantData["publication"].(map[string]any)["url"] != "https://x.com/i/web/status/9" {
		t.Errorf("result %s", want)
	}
}
