package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// BenchmarkIntake compares the gateway's POST /v1/posts (HTTP, key check, validation, JetStream publish
// with acknowledgement) with a bare JetStream publish of the same event to the same server, in one run.
// Both sides' events are for the demo department, so the approval service does the same work behind
// each (store the post, mail the approver) and the difference is the gateway's own.
// scripts/bench.sh prints the ratio; the absolute numbers depend on the machine.
func BenchmarkIntake(b *testing.B) {
	st, _, dataDir := startWithLogs(b)
	dept := demoDepartmentID(b, st)

	b.Run("jetstream", func(b *testing.B) {
		// As the gateway's NATS user, the only one allowed to publish requests.
		nc, js, err := eventbus.Connect(context.Background(), st.Info.NATSURL, "bench", eventbus.AsService(eventbus.ServiceGateway),
			eventbus.WithNATSOptions(nats.UserInfo("herald-gateway", natsPassword(b, dataDir, eventbus.ServiceGateway))))
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		pub, _ := eventbus.NewPublisher(js, 5*time.Second)
		b.ResetTimer()
		for i := range b.N {
			id := uuid.NewString()
			ev := &eventsv1.PostRequested{PostId: id, DepartmentId: dept, Text: fmt.Sprintf("bench %d", i), RequestedBy: "bench"}
			if err := pub.PublishProto(context.Background(), eventbus.SubjectRequested, eventbus.MsgID(id, "requested"), ev); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("gateway", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		url := st.Info.GatewayURL + "/v1/posts"
		b.ResetTimer()
		for i := range b.N {
			req, _ := http.NewRequest("POST", url, strings.NewReader(fmt.Sprintf(`{"tweet": "bench %d", "requestedby": "bench"}`, i)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", st.Info.DemoAPIKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

func demoDepartmentID(b testing.TB, st *stack.Stack) string {
	b.Helper()
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	list, err := approvalv1.NewAdminServiceClient(conn).ListDepartments(ctx, &approvalv1.ListDepartmentsRequest{})
	if err != nil || len(list.GetDepartments()) != 1 {
		b.Fatalf("departments: %v, %v", list, err)
	}
	return list.GetDepartments()[0].GetId()
}
