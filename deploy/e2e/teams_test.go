package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// TestTeamsCardsAndCancel sets the demo department's policy to post to the stack's Teams stand-in, requests
// a post, and cancels it through the connector API: the channel gets the request card (the text, who asked,
// a button to Herald) and then the outcome, and the approver's link says the post was cancelled.
func TestTeamsCardsAndCancel(t *testing.T) {
	st := start(t)
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	admin := approvalv1.NewAdminServiceClient(conn)
	ds, err := admin.ListDepartments(ctx, &approvalv1.ListDepartmentsRequest{})
	if err != nil || len(ds.GetDepartments()) != 1 {
		t.Fatalf("ListDepartments = %v, %v", ds, err)
	}
	pol, err := admin.SetPolicy(ctx, &approvalv1.SetPolicyRequest{Policy: &approvalv1.Policy{
		DepartmentId: ds.GetDepartments()[0].GetId(), Mode: "first", Expiry: durationpb.New(24 * time.Hour),
		TeamsWebhookUrl: st.Info.TeamsWebhookURL,
	}})
	if err != nil || len(pol.GetAsks()) != 1 || pol.GetAsks()[0] != stack.DemoApprover {
		t.Fatalf("SetPolicy = %v, %v; want it to ask the demo approver", pol, err)
	}

	text := fmt.Sprintf("Shown in Teams %d", time.Now().UnixNano())
	r := postJSON(t, st, st.Info.DemoAPIKey, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo@contoso.example"}`, text))
	if r.status != http.StatusAccepted {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	link := approvalLink(t, st, text)
	cardWith := func(want ...string) func() bool {
		return func() bool {
			for _, c := range st.Teams.Cards() {
				var all strings.Builder
				for _, b := range c.Body {
					all.WriteString(b.Text + "\n")
					for _, f := range b.Facts {
						all.WriteString(f.Title + ": " + f.Value + "\n")
					}
				}
				for _, a := range c.Actions {
					all.WriteString(a.Title + " " + a.URL + "\n")
				}
				ok := true
				for _, w := range want {
					ok = ok && strings.Contains(all.String(), w)
				}
				if ok {
					return true
				}
			}
			return false
		}
	}
	eventually(t, "the request card", cardWith(text, "Requested by: jo@contoso.example", "Review in Herald "+st.Info.GatewayURL+"/approvals/"))

	location := r.header.Get("Location")
	del := do(t, "DELETE", location, nil, map[string]string{"X-API-Key": st.Info.DemoAPIKey})
	if del.status != http.StatusOK || !strings.Contains(string(del.body), `"status":"cancelled"`) {
		t.Fatalf("DELETE = %d %s; want 200 cancelled", del.status, del.body)
	}
	if again := do(t, "DELETE", location, nil, map[string]string{"X-API-Key": st.Info.DemoAPIKey}); again.status != http.StatusConflict {
		t.Errorf("second DELETE = %d %s; want 409", again.status, again.body)
	}
	eventually(t, "the outcome card", cardWith(text, "cancelled"))
	page := do(t, "GET", link, nil, nil)
	if !strings.Contains(string(page.body), "This post was cancelled") {
		t.Errorf("the approval link after cancelling says:\n%s", page.body)
	}
	final := do(t, "GET", location, nil, map[string]string{"X-API-Key": st.Info.DemoAPIKey})
	if final.status != http.StatusOK || !strings.Contains(string(final.body), `"status":"cancelled"`) {
		t.Errorf("status after cancelling = %d %s", final.status, final.body)
	}
}
