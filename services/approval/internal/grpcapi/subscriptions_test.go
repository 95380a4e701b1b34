package grpcapi_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/webhook"
)

// TestSubscriptionsOverGRPC: the gateway's token subscribes and lists one department at a time; the
// secret comes back in the creation's answer only, never in a list (the admin's included); ops see every
// department's and the failing ones; without webhooks configured the calls are UNIMPLEMENTED.
func TestSubscriptionsOverGRPC(t *testing.T) {
	guard := webhook.Guard{Lookup: func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	}}
	conn, svc := dialServiceWith(t, approval.Config{PublicURL: "http://gw", Webhooks: &approval.WebhookConfig{Sender: webhook.NewSender(guard), Payload: webhook.Payload}})
	approvals := approvalv1.NewApprovalServiceClient(conn)
	admin := approvalv1.NewAdminServiceClient(conn)
	ctx := context.Background()
	hr, _ := svc.CreateDepartment(ctx, "HR")
	fin, _ := svc.CreateDepartment(ctx, "Finance")
	pub := []approvalv1.WebhookEvent{approvalv1.WebhookEvent_WEBHOOK_EVENT_PUBLISHED}
	var secrets []string
	for _, d := range []string{hr.ID, fin.ID} {
		resp, err := approvals.CreateSubscription(as(gatewayToken), &approvalv1.CreateSubscriptionRequest{DepartmentId: d, Url: "https://hooks.example.com/" + d, Events: pub})
		if err != nil || !strings.HasPrefix(resp.GetSecret(), "whsec_") || resp.GetSubscription().GetDepartmentId() != d {
			t.Fatalf("CreateSubscription = %v, %v", resp, err)
		}
		secrets = append(secrets, resp.GetSecret())
	}
	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"no department", func() error {
			_, err := approvals.CreateSubscription(as(gatewayToken), &approvalv1.CreateSubscriptionRequest{Url: "https://hooks.example.com/x", Events: pub})
			return err
		}, codes.InvalidArgument},
		{"unspecified event", func() error {
			_, err := approvals.CreateSubscription(as(gatewayToken), &approvalv1.CreateSubscriptionRequest{DepartmentId: hr.ID, Url: "https://hooks.example.com/x", Events: []approvalv1.WebhookEvent{0}})
			return err
		}, codes.InvalidArgument},
		{"metadata address", func() error {
			_, err := approvals.CreateSubscription(as(gatewayToken), &approvalv1.CreateSubscriptionRequest{DepartmentId: hr.ID, Url: "https://169.254.169.254/", Events: pub})
			return err
		}, codes.InvalidArgument},
		{"gateway lists every department", func() error {
			_, err := approvals.ListSubscriptions(as(gatewayToken), &approvalv1.ListSubscriptionsRequest{})
			return err
		}, codes.PermissionDenied},
		{"gateway calls the admin listing", func() error {
			_, err := admin.ListWebhookSubscriptions(as(gatewayToken), &approvalv1.ListWebhookSubscriptionsRequest{})
			return err
		}, codes.Unauthenticated}, // AdminService takes the admin token only
	} {
		if got := status.Code(tc.call()); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	own, err := approvals.ListSubscriptions(as(gatewayToken), &approvalv1.ListSubscriptionsRequest{DepartmentId: hr.ID})
	if err != nil || len(own.GetSubscriptions()) != 1 || own.GetSubscriptions()[0].GetDepartmentId() != hr.ID {
		t.Fatalf("HR's list = %v, %v", own, err)
	}
	all, err := admin.ListWebhookSubscriptions(as(adminToken), &approvalv1.ListWebhookSubscriptionsRequest{})
	if err != nil || len(all.GetSubscriptions()) != 2 {
		t.Fatalf("ops' list = %v, %v", all, err)
	}
	for _, m := range []*approvalv1.ListSubscriptionsResponse{own} {
		b, _ := protojson.Marshal(m)
		for _, s := range secrets {
			if strings.Contains(string(b), strings.TrimPrefix(s, "whsec_")) {
				t.Errorf("a list carries a secret: %s", b)
			}
		}
	}
	b, _ := protojson.Marshal(all)
	for _, s := range secrets {
		if strings.Contains(string(b), strings.TrimPrefix(s, "whsec_")) {
			t.Errorf("the admin list carries a secret: %s", b)
		}
	}
	if failing, err := admin.ListWebhookSubscriptions(as(adminToken), &approvalv1.ListWebhookSubscriptionsRequest{FailingOnly: true}); err != nil || len(failing.GetSubscriptions()) != 0 {
		t.Errorf("failing = %v, %v; want none", failing, err)
	}
	if _, err := approvals.DeleteSubscription(as(gatewayToken), &approvalv1.DeleteSubscriptionRequest{DepartmentId: fin.ID, SubscriptionId: own.GetSubscriptions()[0].GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("Finance deleting HR's: %v, want NOT_FOUND", err)
	}

	off := dial(t)
	_, err = approvalv1.NewApprovalServiceClient(off).CreateSubscription(as(gatewayToken), &approvalv1.CreateSubscriptionRequest{DepartmentId: hr.ID, Url: "https://hooks.example.com/x", Events: pub})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("webhooks off: %v, want UNIMPLEMENTED", err)
	}
}
