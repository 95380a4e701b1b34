package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/heraldhq/herald/gateway/internal/httpapi"
	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/ops"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// keyServer answers the gateway's key checks; nothing else of the approval service is involved here.
type keyServer struct {
	approvalv1.UnimplementedApprovalServiceServer
}

func (keyServer) AuthenticateKey(context.Context, *approvalv1.AuthenticateKeyRequest) (*approvalv1.AuthenticateKeyResponse, error) {
	return &approvalv1.AuthenticateKeyResponse{DepartmentId: "bench", DepartmentName: "Bench"}, nil
}

// BenchmarkGatewayIntake isolates the gateway: POST /v1/posts through the real handler, intake and
// JetStream publisher, against a bare JetStream publish of the same event to the same embedded server,
// with no consumer running. scripts/bench.sh prints the ratio.
func BenchmarkGatewayIntake(b *testing.B) {
	nc, js, err := eventbus.Connect(context.Background(), natstest.Embedded(b), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	approvalv1.RegisterApprovalServiceServer(gs, keyServer{})
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	approvals := approvalv1.NewApprovalServiceClient(conn)
	keys, _ := keyauth.New(approvals, time.Minute)
	pics, err := media.Open(context.Background(), js, eventbus.MediaBucket(""))
	if err != nil {
		b.Fatal(err)
	}
	in, _ := intake.New(pub, pics)
	h, err := httpapi.New(httpapi.Config{CSRFKey: make([]byte, 32)}, httpapi.Deps{
		Intake: in, Keys: keys, Idempotency: idemStore(b, js), Approvals: approvals, Media: pics, Log: slog.New(slog.DiscardHandler), Registry: ops.NewRegistry(),
		Ready: func(context.Context) error { return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	b.Run("jetstream", func(b *testing.B) {
		for i := range b.N {
			id := uuid.NewString()
			ev := &eventsv1.PostRequested{PostId: id, DepartmentId: "bench", Text: fmt.Sprintf("bench %d", i), RequestedBy: "bench"}
			if err := pub.PublishProto(context.Background(), eventbus.SubjectRequested, eventbus.MsgID(id, "requested"), ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gateway", func(b *testing.B) {
		client := srv.Client()
		for i := range b.N {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"tweet": "bench %d", "requestedby": "bench"}`, i)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", "hk_bench")
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
