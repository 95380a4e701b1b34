// Package postresult is the one definition of a post's result object as departments see it: the body
// of the gateway's GET /v1/posts/{id} (the status the connector polls) and the data of every webhook
// delivery about the post. Both are made from the approval service's Post message by FromProto, so a
// flow reads the same fields whether it polled or was triggered.
package postresult

import (
	"encoding/json"
	"time"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// Result is how a post looks to the department that asked for it.
type Result struct {
	ID            string       `json:"id"`
	Status        string       `json:"status"`
	Tweet         string       `json:"tweet,omitempty"`
	RequestedBy   string       `json:"requestedby,omitempty"`
	CreatedAt     *time.Time   `json:"created_at,omitempty"`
	Decision      *Decision    `json:"decision,omitempty"`
	Publication   *Publication `json:"publication,omitempty"`
	FailureReason string       `json:"failure_reason,omitempty"`
	// FinalTweet is the text published when an approver edited it (Tweet stays the requested one).
	FinalTweet string `json:"final_tweet,omitempty"`
	// StatusDetail says what a pending post waits for when nobody could be asked yet.
	StatusDetail string `json:"status_detail,omitempty"`
	// Decisions are every approver's answers, in the all and quorum modes.
	Decisions []Decision `json:"decisions,omitempty"`
}

// Decision is one approver's answer.
type Decision struct {
	Outcome   string    `json:"outcome"`
	Approver  string    `json:"approver"`
	DecidedAt time.Time `json:"decided_at"`
	Comment   string    `json:"comment"`
}

// Publication is where the post went out.
type Publication struct {
	Channel     string     `json:"channel"`
	RemoteID    string     `json:"remote_id"`
	URL         string     `json:"url"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
}

// StatusNames and OutcomeNames are the one place where the approval service's enums become the
// connector API's strings; the gateway's tests hold them to every value of the generated enums.
var StatusNames = map[approvalv1.PostStatus]string{
	approvalv1.PostStatus_POST_STATUS_PENDING:   "pending",
	approvalv1.PostStatus_POST_STATUS_APPROVED:  "approved",
	approvalv1.PostStatus_POST_STATUS_REJECTED:  "rejected",
	approvalv1.PostStatus_POST_STATUS_PUBLISHED: "published",
	approvalv1.PostStatus_POST_STATUS_FAILED:    "failed",
	approvalv1.PostStatus_POST_STATUS_UNKNOWN:   "unknown",
	approvalv1.PostStatus_POST_STATUS_EXPIRED:   "expired",
	approvalv1.PostStatus_POST_STATUS_CANCELLED: "cancelled",
}

// OutcomeNames: see StatusNames.
var OutcomeNames = map[approvalv1.Outcome]string{
	approvalv1.Outcome_OUTCOME_APPROVE: "approved",
	approvalv1.Outcome_OUTCOME_REJECT:  "rejected",
}

// FromProto returns the result object of p.
func FromProto(p *approvalv1.Post) Result {
	v := Result{ID: p.GetId(), Status: StatusNames[p.GetStatus()], Tweet: p.GetText(), RequestedBy: p.GetRequestedBy(), FailureReason: p.GetFailureReason()}
	if p.GetCreatedAt() != nil {
		t := p.GetCreatedAt().AsTime()
		v.CreatedAt = &t
	}
	if d := p.GetDecision(); d != nil {
		v.Decision = &Decision{Outcome: OutcomeNames[d.GetOutcome()], Approver: d.GetApprover(), DecidedAt: d.GetDecidedAt().AsTime(), Comment: d.GetComment()}
	}
	v.FinalTweet, v.StatusDetail = p.GetFinalText(), p.GetWaitingFor()
	for _, d := range p.GetDecisions() {
		v.Decisions = append(v.Decisions, Decision{Outcome: OutcomeNames[d.GetOutcome()], Approver: d.GetApprover(), DecidedAt: d.GetDecidedAt().AsTime(), Comment: d.GetComment()})
	}
	if pub := p.GetPublication(); pub != nil {
		v.Publication = &Publication{Channel: pub.GetChannel(), RemoteID: pub.GetRemoteId(), URL: pub.GetUrl()}
		if pub.GetPublishedAt() != nil {
			t := pub.GetPublishedAt().AsTime()
			v.Publication.PublishedAt = &t
		}
	}
	return v
}

// Event is a webhook delivery's body: the Standard Webhooks envelope, whose data is the post's result
// object.
type Event struct {
	// Type is "post." and the event: post.published, post.rejected, post.failed, post.expired.
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Result    `json:"data"`
}

// MarshalEvent returns the body of a delivery of event ("published", ...) about p, made at at.
func MarshalEvent(event string, at time.Time, p *approvalv1.Post) ([]byte, error) {
	return json.Marshal(Event{Type: "post." + event, Timestamp: at.UTC(), Data: FromProto(p)})
}
