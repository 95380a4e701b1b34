package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
)

var toProtoEvent = map[approval.WebhookEvent]approvalv1.WebhookEvent{
	approval.EventPublished: approvalv1.WebhookEvent_WEBHOOK_EVENT_PUBLISHED,
	approval.EventRejected:  approvalv1.WebhookEvent_WEBHOOK_EVENT_REJECTED,
	approval.EventFailed:    approvalv1.WebhookEvent_WEBHOOK_EVENT_FAILED,
	approval.EventExpired:   approvalv1.WebhookEvent_WEBHOOK_EVENT_EXPIRED,
}

var fromProtoEvent = invert(toProtoEvent)

func (s *approvalServer) CreateSubscription(ctx context.Context, req *approvalv1.CreateSubscriptionRequest) (*approvalv1.CreateSubscriptionResponse, error) {
	// A subscription always belongs to one department, whoever asks.
	if req.GetDepartmentId() == "" {
		return nil, status.Error(codes.InvalidArgument, "department_id is required")
	}
	evs := make([]approval.WebhookEvent, 0, len(req.GetEvents()))
	for _, e := range req.GetEvents() {
		ev, ok := fromProtoEvent[e]
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "events: %v is not an event a subscription can ask for", e)
		}
		evs = append(evs, ev)
	}
	sub, secret, err := s.svc.CreateSubscription(ctx, req.GetDepartmentId(), req.GetUrl(), evs)
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.CreateSubscriptionResponse{Subscription: toProtoSubscription(sub), Secret: secret}, nil
}

func (s *approvalServer) ListSubscriptions(ctx context.Context, req *approvalv1.ListSubscriptionsRequest) (*approvalv1.ListSubscriptionsResponse, error) {
	dept, err := departmentScope(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	subs, err := s.svc.ListSubscriptions(ctx, dept, false)
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.ListSubscriptionsResponse{Subscriptions: toProtoSubscriptions(subs)}, nil
}

func (s *approvalServer) DeleteSubscription(ctx context.Context, req *approvalv1.DeleteSubscriptionRequest) (*approvalv1.DeleteSubscriptionResponse, error) {
	dept, err := departmentScope(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	if err := s.svc.DeleteSubscription(ctx, req.GetSubscriptionId(), dept); err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.DeleteSubscriptionResponse{}, nil
}

func (s *adminServer) ListWebhookSubscriptions(ctx context.Context, req *approvalv1.ListWebhookSubscriptionsRequest) (*approvalv1.ListWebhookSubscriptionsResponse, error) {
	subs, err := s.svc.ListSubscriptions(ctx, req.GetDepartmentId(), req.GetFailingOnly())
	if err != nil {
		return nil, toStatus(err)
	}
	return &approvalv1.ListWebhookSubscriptionsResponse{Subscriptions: toProtoSubscriptions(subs)}, nil
}

func toProtoSubscriptions(subs []approval.Subscription) []*approvalv1.Subscription {
	out := make([]*approvalv1.Subscription, len(subs))
	for i, sub := range subs {
		out[i] = toProtoSubscription(sub)
	}
	return out
}

// toProtoSubscription never carries the secret: the one answer that does sets it beside.
func toProtoSubscription(sub approval.Subscription) *approvalv1.Subscription {
	out := &approvalv1.Subscription{
		Id: sub.ID, DepartmentId: sub.DepartmentID, Url: sub.URL, CreatedAt: ts(sub.CreatedAt),
		FailingSince: ts(sub.FailingSince), LastError: sub.LastError,
	}
	for _, e := range sub.Events {
		out.Events = append(out.Events, toProtoEvent[e])
	}
	return out
}

// PostProto is the approval service's Post message for p: what GetPost answers, and so what webhook
// deliveries carry as their data.
func PostProto(p approval.Post) *approvalv1.Post { return toProtoPost(p) }
