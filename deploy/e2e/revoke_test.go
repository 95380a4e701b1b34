package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// TestRevokedKeyIsRefusedWithinASecond: a department's request is audited with the key that made it; once
// ops revoke the key through AdminService, the gateway refuses it within a second, although it cached the
// key for 30 s: the approval service announces the revocation on NATS.
func TestRevokedKeyIsRefusedWithinASecond(t *testing.T) {
	st := start(t)
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := approvalv1.NewAdminServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	d, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "Comms"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: d.GetDepartment().GetId(), Label: "to revoke"})
	if err != nil {
		t.Fatal(err)
	}
	key := k.GetSecret()

	r := postJSON(t, st, key, `{"tweet": "Before the revocation", "requestedby": "jo"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("post with the new key: %d %s", r.status, r.body)
	}
	loc := r.header.Get("Location")
	postID := loc[strings.LastIndex(loc, "/")+1:]
	var audit *approvalv1.ListAuditEventsResponse
	eventually(t, "the request's audit row", func() bool {
		audit, err = admin.ListAuditEvents(ctx, &approvalv1.ListAuditEventsRequest{PostId: postID})
		return err == nil
	})
	if err != nil || len(audit.GetEvents()) == 0 || audit.GetEvents()[0].GetApiKeyId() != k.GetApiKey().GetId() {
		t.Errorf("audit of %s = %v, %v; want its requested row to name key %s", postID, audit.GetEvents(), err, k.GetApiKey().GetId())
	}

	// The key is now in the gateway's cache.
	status := func() int {
		return do(t, "GET", st.Info.GatewayURL+"/v1/posts/"+postID, nil, map[string]string{"X-API-Key": key}).status
	}
	if s := status(); s != http.StatusAccepted {
		t.Fatalf("polling with the key: %d", s)
	}
	if _, err := admin.RevokeAPIKey(ctx, &approvalv1.RevokeAPIKeyRequest{Id: k.GetApiKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for s := status(); s != http.StatusUnauthorized; s = status() {
		if time.Since(revoked) > time.Second {
			t.Fatalf("revoked key still answered %d a second after RevokeAPIKey", s)
		}
	}
}
