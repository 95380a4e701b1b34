package grpcapi_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

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

func (nopEvents) PostApproved(context.Context, approval.Post) error  { return nil }
func (nopEvents) PostRejected(context.Context, approval.Post) error  { return nil }
func (nopEvents) PostExpired(context.Context, approval.Post) error   { return nil }
func (nopEvents) PostCancelled(context.Context, approval.Post) error { return nil }

func dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, _ := dialService(t)
	return conn
}

// dialService is dial that also returns the domain service behind the server, to set up posts.
func dialService(t *testing.T) (*grpc.ClientConn, *approval.Service) {
	t.Helper()
	return dialServiceWith(t, approval.Config{PublicURL: "http://gw"})
}

// dialServiceWith is dialService with the domain service configured by cfg.
func dialServiceWith(t *testing.T, cfg approval.Config) (*grpc.ClientConn, *approval.Service) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// Mail and events are not exercised here: these tests are about who may call what.
	svc, err := approval.NewService(store, nopMailer{}, nopEvents{}, cfg, slog.New(slog.DiscardHandler))
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
	return conn, svc
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
		// The gateway's token lists one department's posts only (see TestGatewayReadsOneDepartment).
		{"approval call with the gateway's token", listPosts, gatewayToken, codes.PermissionDenied},
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

// TestGatewayReadsOneDepartment: the gateway's token reads and lists posts only naming a department, and
// never another department's; only the admin token (ops) lists across departments.
func TestGatewayReadsOneDepartment(t *testing.T) {
	conn, svc := dialService(t)
	admin := approvalv1.NewAdminServiceClient(conn)
	approvals := approvalv1.NewApprovalServiceClient(conn)
	ctx := context.Background()
	var depts [2]string
	var posts [2]string
	for i, name := range []string{"HR", "Finance"} {
		d, err := svc.CreateDepartment(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := svc.CreateAPIKey(ctx, d.ID, "flow")
		if err != nil {
			t.Fatal(err)
		}
		depts[i], posts[i] = d.ID, uuid.NewString()
		if err := svc.Submit(ctx, approval.Request{PostID: posts[i], DepartmentID: d.ID, Text: "Hello from " + name, RequestedBy: "jo", APIKeyID: k.ID}); err != nil {
			t.Fatal(err)
		}
	}
	hr, finance := depts[0], depts[1]
	hrPost, financePost := posts[0], posts[1]

	get := func(token, post, dept string) func() ([]string, error) {
		return func() ([]string, error) {
			resp, err := approvals.GetPost(as(token), &approvalv1.GetPostRequest{PostId: post, DepartmentId: dept})
			return []string{resp.GetPost().GetId()}, err
		}
	}
	list := func(token, dept string) func() ([]string, error) {
		return func() ([]string, error) {
			resp, err := approvals.ListPosts(as(token), &approvalv1.ListPostsRequest{DepartmentId: dept})
			var ids []string
			for _, p := range resp.GetPosts() {
				ids = append(ids, p.GetId())
			}
			return ids, err
		}
	}
	count := func(token, dept string) func() ([]string, error) {
		return func() ([]string, error) {
			_, err := approvals.CountUndecided(as(token), &approvalv1.CountUndecidedRequest{DepartmentId: dept})
			return nil, err
		}
	}
	tests := []struct {
		name     string
		call     func() ([]string, error)
		wantCode codes.Code
		wantIDs  []string
	}{
		{"gateway gets its department's post", get(gatewayToken, hrPost, hr), codes.OK, []string{hrPost}},
		{"gateway gets another department's post", get(gatewayToken, financePost, hr), codes.PermissionDenied, nil},
		{"gateway gets an unknown post", get(gatewayToken, uuid.NewString(), hr), codes.NotFound, nil},
		{"gateway gets a post without naming a department", get(gatewayToken, financePost, ""), codes.PermissionDenied, nil},
		{"gateway lists one department", list(gatewayToken, finance), codes.OK, []string{financePost}},
		{"gateway lists across departments", list(gatewayToken, ""), codes.PermissionDenied, nil},
		{"admin gets any post", get(adminToken, financePost, ""), codes.OK, []string{financePost}},
		{"admin lists across departments", list(adminToken, ""), codes.OK, []string{financePost, hrPost}},
		{"gateway counts one department's undecided posts", count(gatewayToken, hr), codes.OK, nil},
		{"gateway counts across departments", count(gatewayToken, ""), codes.PermissionDenied, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := tt.call()
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			if err != nil {
				return
			}
			slices.Sort(ids)
			want := slices.Sorted(slices.Values(tt.wantIDs))
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("posts (-want +got):\n%s", diff)
			}
		})
	}

	// AdminService stays the admin's: the gateway cannot read the audit trail either.
	if _, err := admin.ListAuditEvents(as(gatewayToken), &approvalv1.ListAuditEventsRequest{PostId: hrPost}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("audit with the gateway's token: %v, want Unauthenticated", err)
	}
}

// TestAuditShowsTheRequestsAPIKey: the "requested" row of a post's audit trail names the key that asked.
func TestAuditShowsTheRequestsAPIKey(t *testing.T) {
	conn, svc := dialService(t)
	admin := approvalv1.NewAdminServiceClient(conn)
	ctx := context.Background()
	d, err := svc.CreateDepartment(ctx, "HR")
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := svc.CreateAPIKey(ctx, d.ID, "flow")
	if err != nil {
		t.Fatal(err)
	}
	post := uuid.NewString()
	if err := svc.Submit(ctx, approval.Request{PostID: post, DepartmentID: d.ID, Text: "Hello", RequestedBy: "jo", APIKeyID: k.ID}); err != nil {
		t.Fatal(err)
	}
	resp, err := admin.ListAuditEvents(as(adminToken), &approvalv1.ListAuditEventsRequest{PostId: post})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEvents()) != 1 || resp.GetEvents()[0].GetAction() != "requested" || resp.GetEvents()[0].GetApiKeyId() != k.ID {
		t.Errorf("audit = %v, want one requested row with api_key_id %s", resp.GetEvents(), k.ID)
	}
}
