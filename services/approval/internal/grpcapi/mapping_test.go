package grpcapi

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/testenv/enumtest"
)

// checkMapping holds a domain → proto mapping (to) and its reverse (from, nil when there is none) to
// every constant of the domain type declared in the approval package and every value of the generated
// proto enum (names, its _name map): each domain value maps to the value want names, no two domain values
// share a proto value, each proto value but 0 (UNSPECIFIED) comes from a domain value, and the reverse
// mapping takes each back. A value added on either side and forgotten in the mapping fails here.
func checkMapping[D ~string, P ~int32](t *testing.T, domainType string, to map[D]P, from map[P]D, names map[int32]string, want map[D]P) {
	t.Helper()
	for _, s := range enumtest.StringConsts(t, "../approval", domainType) {
		d := D(s)
		t.Run(domainType+"/"+s, func(t *testing.T) {
			got, ok := to[d]
			if !ok || got == 0 {
				t.Fatalf("approval.%s %q has no proto value", domainType, s)
			}
			w, ok := want[d]
			if !ok {
				t.Fatalf("approval.%s %q is missing from this test's table", domainType, s)
			}
			if got != w {
				t.Errorf("approval.%s %q becomes %s, want %s", domainType, s, names[int32(got)], names[int32(w)])
			}
			if from != nil && from[got] != d {
				t.Errorf("%s comes back as %q, want %q", names[int32(got)], from[got], s)
			}
		})
	}
	seen := map[P]D{}
	for d, p := range to {
		if prev, dup := seen[p]; dup {
			t.Errorf("%q and %q both become %s", prev, d, names[int32(p)])
		}
		seen[p] = d
	}
	for n, name := range names {
		if _, ok := seen[P(n)]; !ok && n != 0 {
			t.Errorf("no approval.%s becomes %s", domainType, name)
		}
		if from != nil && n == 0 {
			if _, ok := from[P(n)]; ok {
				t.Errorf("%s must not map to a domain value", name)
			}
		}
	}
}

func TestPostStatusMapping(t *testing.T) {
	t.Parallel()
	checkMapping(t, "Status", toProtoStatus, fromProtoStatus, approvalv1.PostStatus_name, map[approval.Status]approvalv1.PostStatus{
		approval.StatusPending:   approvalv1.PostStatus_POST_STATUS_PENDING,
		approval.StatusApproved:  approvalv1.PostStatus_POST_STATUS_APPROVED,
		approval.StatusRejected:  approvalv1.PostStatus_POST_STATUS_REJECTED,
		approval.StatusPublished: approvalv1.PostStatus_POST_STATUS_PUBLISHED,
		approval.StatusFailed:    approvalv1.PostStatus_POST_STATUS_FAILED,
		approval.StatusUnknown:   approvalv1.PostStatus_POST_STATUS_UNKNOWN,
		approval.StatusExpired:   approvalv1.PostStatus_POST_STATUS_EXPIRED,
		approval.StatusCancelled: approvalv1.PostStatus_POST_STATUS_CANCELLED,
	})
}

func TestLinkStateMapping(t *testing.T) {
	t.Parallel()
	checkMapping(t, "LinkState", linkStates, nil, approvalv1.ApprovalState_name, map[approval.LinkState]approvalv1.ApprovalState{
		approval.LinkOpen:      approvalv1.ApprovalState_APPROVAL_STATE_OPEN,
		approval.LinkCancelled: approvalv1.ApprovalState_APPROVAL_STATE_CANCELLED,
		approval.LinkReplaced:  approvalv1.ApprovalState_APPROVAL_STATE_REPLACED,
		approval.LinkUsed:      approvalv1.ApprovalState_APPROVAL_STATE_USED,
		approval.LinkExpired:   approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED,
		approval.LinkClosed:    approvalv1.ApprovalState_APPROVAL_STATE_CLOSED,
	})
}

func TestOutcomeMapping(t *testing.T) {
	t.Parallel()
	checkMapping(t, "Outcome", toProtoOutcome, fromProtoOutcome, approvalv1.Outcome_name, map[approval.Outcome]approvalv1.Outcome{
		approval.OutcomeApprove: approvalv1.Outcome_OUTCOME_APPROVE,
		approval.OutcomeReject:  approvalv1.Outcome_OUTCOME_REJECT,
	})
}

// TestToProtoPostCarriesTheDecision checks the mapping where it is used: a rejected post's decision says
// rejected, an approved one's approved.
func TestToProtoPostCarriesTheDecision(t *testing.T) {
	t.Parallel()
	for d, want := range map[approval.Outcome]approvalv1.Outcome{
		approval.OutcomeApprove: approvalv1.Outcome_OUTCOME_APPROVE,
		approval.OutcomeReject:  approvalv1.Outcome_OUTCOME_REJECT,
	} {
		if got := toProtoPost(approval.Post{ID: "p", Decision: d}).GetDecision().GetOutcome(); got != want {
			t.Errorf("decision %q becomes %v, want %v", d, got, want)
		}
	}
	if got := toProtoPost(approval.Post{ID: "p"}).GetDecision(); got != nil {
		t.Errorf("an undecided post has a decision: %v", got)
	}
}

// TestToStatus: each domain error becomes the code the gateway turns into the approver's plain answer.
func TestToStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", approval.ErrNotFound), codes.NotFound},
		{approval.ErrInvalid, codes.InvalidArgument},
		{approval.ErrTokenUsed, codes.FailedPrecondition},
		{approval.ErrTokenExpired, codes.FailedPrecondition},
		{approval.ErrClosed, codes.FailedPrecondition},
		{approval.ErrLinkRevoked, codes.FailedPrecondition},
		{errors.New("sql: connection reset"), codes.Internal},
	}
	for _, tt := range tests {
		st := status.Convert(toStatus(tt.err))
		if st.Code() != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, st.Code(), tt.want)
		}
		if tt.want == codes.FailedPrecondition && st.Message() != tt.err.Error() {
			t.Errorf("toStatus(%v) says %q; the approver should read the domain's words", tt.err, st.Message())
		}
	}
}

func TestWebhookEventMapping(t *testing.T) {
	t.Parallel()
	checkMapping(t, "WebhookEvent", toProtoEvent, fromProtoEvent, approvalv1.WebhookEvent_name, map[approval.WebhookEvent]approvalv1.WebhookEvent{
		approval.EventPublished: approvalv1.WebhookEvent_WEBHOOK_EVENT_PUBLISHED,
		approval.EventRejected:  approvalv1.WebhookEvent_WEBHOOK_EVENT_REJECTED,
		approval.EventFailed:    approvalv1.WebhookEvent_WEBHOOK_EVENT_FAILED,
		approval.EventExpired:   approvalv1.WebhookEvent_WEBHOOK_EVENT_EXPIRED,
	})
}
