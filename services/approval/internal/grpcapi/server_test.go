package grpcapi_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/grpcapi"
	"github.com/heraldhq/herald/services/approval/internal/store/sqlite"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
)

const (
	adminToken   = "admin-token-0123456789"
	gatewayToken = "gateway-token-0123456789"
)

type nopMailer struct{}

func (nopMailer) SendApprovalRequest(context.Context, approval.ApprovalEmail) error { return nil }

type nopEvents struct{}

func (nopEvents) PostApproved(context.Context, approval.Post) error { return nil }
func (nopEvents) PostRejected(context.Context, approval.Post) error { return nil }

func dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// Mail and events are not exercised here: these tests are about who may call what.
	svc, err := approval.NewService(store, nopMailer{}, nopEvents{}, approval.Config{PublicURL: "http://gw"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, hs, err := grpcapi.NewServer(svc, grpcapi.Tokens{Admin: adminToken, Gateway: gatewayToken}, grpcauth.ServerTransport{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	lis := bufconn.Listen(1 << 20)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func as(token string) context.Context {
	ctx := context.Background()
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func TestWhoMayCallWhat(t *testing.T) {
	conn := dial(t)
	admin := approvalv1.NewAdminServiceClient(conn)
	approvals := approvalv1.NewApprovalServiceClient(conn)
	health := healthpb.NewHealthClient(conn)

	checkHealth := func(ctx context.Context) error {
		_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	listDepartments := func(ctx context.Context) error {
		_, err := admin.ListDepartments(ctx, &approvalv1.ListDepartmentsRequest{})
		return err
	}
	listPosts := func(ctx context.Context) error {
		_, err := approvals.ListPosts(ctx, &approvalv1.ListPostsRequest{})
		return err
	}
	tests := []struct {
		name  string
		call  func(ctx context.Context) error
		token string
		want  codes.Code
	}{
		{"health without a token", checkHealth, "", codes.OK},
		{"admin call without a token", listDepartments, "", codes.Unauthenticated},
		{"admin call with the gateway's token", listDepartments, gatewayToken, codes.Unauthenticated},
		{"admin call with a wrong token", listDepartments, adminToken + "x", codes.Unauthenticated},
		{"admin call with the admin token", listDepartments, adminToken, codes.OK},
		{"approval call without a token", listPosts, "", codes.Unauthenticated},
		{"approval call with the gateway's token", listPosts, gatewayToken, codes.OK},
		{"approval call with the admin token", listPosts, adminToken, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call(as(tt.token))); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorsMapToCodes(t *testing.T) {
	conn := dial(t)
	admin := approvalv1.NewAdminServiceClient(conn)
	approvals := approvalv1.NewApprovalServiceClient(conn)
	ctx := as(adminToken)
	if _, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "HR"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"duplicate department", second(admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "HR"})), codes.AlreadyExists},
		{"blank department", second(admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: " "})), codes.InvalidArgument},
		{"key for an unknown department", second(admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: "nope"})), codes.NotFound},
		{"bad approver email", second(admin.CreateApprover(ctx, &approvalv1.CreateApproverRequest{Email: "not an email"})), codes.InvalidArgument},
		{"unknown post", second(approvals.GetPost(ctx, &approvalv1.GetPostRequest{PostId: "nope"})), codes.NotFound},
		{"audit of an unknown post", second(admin.ListAuditEvents(ctx, &approvalv1.ListAuditEventsRequest{PostId: "nope"})), codes.NotFound},
		{"unknown key", second(approvals.AuthenticateKey(ctx, &approvalv1.AuthenticateKeyRequest{ApiKey: "hk_nope"})), codes.NotFound},
		{"unknown approval link", second(approvals.Decide(ctx, &approvalv1.DecideRequest{Token: "nope", Outcome: approvalv1.Outcome_OUTCOME_APPROVE})), codes.NotFound},
		{"decision without an outcome", second(approvals.Decide(ctx, &approvalv1.DecideRequest{Token: "nope"})), codes.InvalidArgument},
	}
	for _, tt := range tests {
		if got := status.Code(tt.err); got != tt.want {
			t.Errorf("%s: code %v (%v), want %v", tt.name, got, tt.err, tt.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestAPIKeyLifecycle(t *testing.T) {
	conn := dial(t)
	admin := approvalv1.NewAdminServiceClient(conn)
	approvals := approvalv1.NewApprovalServiceClient(conn)
	ctx := as(adminToken)
	d, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "HR"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: d.GetDepartment().GetId(), Label: "flow"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := approvals.AuthenticateKey(as(gatewayToken), &approvalv1.AuthenticateKeyRequest{ApiKey: k.GetSecret()})
	if err != nil || got.GetDepartmentId() != d.GetDepartment().GetId() || got.GetDepartmentName() != "HR" {
		t.Fatalf("AuthenticateKey = %v, %v", got, err)
	}
	list, err := admin.ListAPIKeys(ctx, &approvalv1.ListAPIKeysRequest{DepartmentId: d.GetDepartment().GetId()})
	if err != nil || len(list.GetApiKeys()) != 1 || list.GetApiKeys()[0].GetPrefix() == "" {
		t.Fatalf("ListAPIKeys = %v, %v", list, err)
	}
	if _, err := admin.RevokeAPIKey(ctx, &approvalv1.RevokeAPIKeyRequest{Id: k.GetApiKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := approvals.AuthenticateKey(as(gatewayToken), &approvalv1.AuthenticateKeyRequest{ApiKey: k.GetSecret()}); status.Code(err) != codes.NotFound {
		t.Errorf("revoked key: %v, want NotFound", err)
	}
}
