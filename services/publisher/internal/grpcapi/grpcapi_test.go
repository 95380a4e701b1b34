package grpcapi_test

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	publisherv1 "github.com/heraldhq/herald/proto/herald/publisher/v1"
	"github.com/heraldhq/herald/services/heraldshared/grpcauth"
	"github.com/heraldhq/herald/services/publisher/internal/grpcapi"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/sqlite"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

const adminToken = "admin-token-0123456789"

var t0 = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

// setup serves the publisher's gRPC API over bufconn, on a real SQLite ledger holding one published and
// one failed post, and returns a client.
func setup(t *testing.T) publisherv1.PublisherServiceClient {
	t.Helper()
	return publisherv1.NewPublisherServiceClient(setupConn(t))
}

// setupConn is setup's connection.
func setupConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	return setupEnv(t).conn
}

// announcements records what the ledger announced.
type announcements struct {
	mu   sync.Mutex
	list []ledger.Publication
}

func (a *announcements) Announce(_ context.Context, p ledger.Publication) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, p)
	return nil
}

func (a *announcements) states(postID string) []ledger.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []ledger.State
	for _, p := range a.list {
		if p.PostID == postID {
			out = append(out, p.State)
		}
	}
	return out
}

type env struct {
	conn      *grpc.ClientConn
	store     *sqlite.Store
	sandbox   *xsandbox.Sandbox
	x         *xapi.Client
	announced *announcements
}

// setupEnv is setup with everything behind it: the ledger service posting to the X sandbox through the
// real client, and a recording announcer.
func setupEnv(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, p := range []ledger.Publication{
		{PostID: "p1", Channel: "x", Text: "first", CreatedAt: t0, UpdatedAt: t0},
		{PostID: "p2", Channel: "x", Text: "second", CreatedAt: t0.Add(time.Minute), UpdatedAt: t0.Add(time.Minute)},
	} {
		p.State, p.Attempts = ledger.StateAttempting, 1
		if _, _, err := store.Begin(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Finish(ctx, ledger.Publication{PostID: "p1", State: ledger.StatePublished, RemoteID: "185", URL: "https://x.com/i/web/status/185", UpdatedAt: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := store.Finish(ctx, ledger.Publication{PostID: "p2", State: ledger.StateFailed, Error: "duplicate content", UpdatedAt: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}

	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats", TweetsPerWindow: 50}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	xsrv := httptest.NewServer(sb.Handler())
	t.Cleanup(xsrv.Close)
	x, err := xapi.New(xsrv.URL, xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	me, err := x.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	announced := &announcements{}
	// The sandbox shows tweets at once, so the ledger need not wait for them: its waits return at once.
	svc, err := ledger.NewService(store, x, announced, slog.New(slog.DiscardHandler),
		ledger.WithClock(time.Now, func(ctx context.Context, _ time.Duration) error { return ctx.Err() }))
	if err != nil {
		t.Fatal(err)
	}
	channels := func() []grpcapi.ChannelInfo {
		rs := x.RateState()
		return []grpcapi.ChannelInfo{{Name: x.Name(), Username: me.Username, AccountID: me.ID,
			Rate: grpcapi.RateLimit{Limit: rs.Limit, Remaining: rs.Remaining, Reset: rs.Reset, InFlight: rs.InFlight}}}
	}
	srv, hs, err := grpcapi.NewServer(grpcapi.Deps{Store: store, Ops: svc, Channels: channels}, adminToken, grpcauth.ServerTransport{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	lis := bufconn.Listen(1 << 20)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Cleanup(func() {
		// Health stays open: probes carry no token.
		if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health check without a token: %v", err)
		}
	})
	return env{conn: conn, store: store, sandbox: sb, x: x, announced: announced}
}

func as(token string) context.Context {
	if token == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

var (
	published = &publisherv1.Publication{
		PostId: "p1", Channel: "x", State: publisherv1.PublicationState_PUBLICATION_STATE_PUBLISHED, Text: "first",
		RemoteId: "185", Url: "https://x.com/i/web/status/185", CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0.Add(time.Second)),
	}
	failed = &publisherv1.Publication{
		PostId: "p2", Channel: "x", State: publisherv1.PublicationState_PUBLICATION_STATE_FAILED, Text: "second",
		Error: "duplicate content", CreatedAt: timestamppb.New(t0.Add(time.Minute)), UpdatedAt: timestamppb.New(t0.Add(2 * time.Minute)),
	}
)

func TestPublisherService(t *testing.T) {
	t.Parallel()
	client := setup(t)
	tests := []struct {
		name     string
		call     func(ctx context.Context) (any, error)
		token    string
		want     any
		wantCode codes.Code
	}{
		{
			name: "list without a token",
			call: func(ctx context.Context) (any, error) {
				return client.ListPublications(ctx, &publisherv1.ListPublicationsRequest{})
			},
			wantCode: codes.Unauthenticated,
		},
		{
			name: "list with a wrong token",
			call: func(ctx context.Context) (any, error) {
				return client.ListPublications(ctx, &publisherv1.ListPublicationsRequest{})
			},
			token:    adminToken + "x",
			wantCode: codes.Unauthenticated,
		},
		{
			name: "list, newest first",
			call: func(ctx context.Context) (any, error) {
				return client.ListPublications(ctx, &publisherv1.ListPublicationsRequest{})
			},
			token: adminToken,
			want:  &publisherv1.ListPublicationsResponse{Publications: []*publisherv1.Publication{failed, published}},
		},
		{
			name: "list one page",
			call: func(ctx context.Context) (any, error) {
				return client.ListPublications(ctx, &publisherv1.ListPublicationsRequest{PageSize: 1})
			},
			token: adminToken,
			want:  &publisherv1.ListPublicationsResponse{Publications: []*publisherv1.Publication{failed}},
		},
		{
			name: "get a published post",
			call: func(ctx context.Context) (any, error) {
				return client.GetPublication(ctx, &publisherv1.GetPublicationRequest{PostId: "p1"})
			},
			token: adminToken,
			want:  &publisherv1.GetPublicationResponse{Publication: published},
		},
		{
			name: "get a failed post",
			call: func(ctx context.Context) (any, error) {
				return client.GetPublication(ctx, &publisherv1.GetPublicationRequest{PostId: "p2"})
			},
			token: adminToken,
			want:  &publisherv1.GetPublicationResponse{Publication: failed},
		},
		{
			name: "get without a token",
			call: func(ctx context.Context) (any, error) {
				return client.GetPublication(ctx, &publisherv1.GetPublicationRequest{PostId: "p1"})
			},
			wantCode: codes.Unauthenticated,
		},
		{
			name: "get an unknown post",
			call: func(ctx context.Context) (any, error) {
				return client.GetPublication(ctx, &publisherv1.GetPublicationRequest{PostId: "nope"})
			},
			token:    adminToken,
			wantCode: codes.NotFound,
		},
		{
			name: "get without a post id",
			call: func(ctx context.Context) (any, error) {
				return client.GetPublication(ctx, &publisherv1.GetPublicationRequest{})
			},
			token:    adminToken,
			wantCode: codes.InvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.call(as(tt.token))
			if code := status.Code(err); code != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", code, err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				return
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReflectionIsOpen lists the services through server reflection, a streaming call, without a token,
// as `grpcurl -plaintext localhost:9091 list` does.
func TestReflectionIsOpen(t *testing.T) {
	t.Parallel()
	conn := setupConn(t)
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection without a token: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, publisherv1.PublisherService_ServiceDesc.ServiceName) {
		t.Errorf("reflection lists %v, without the PublisherService", names)
	}
}

func TestNewServerRefusesShortTokens(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ops := func() []grpcapi.ChannelInfo { return nil }
	if _, _, err := grpcapi.NewServer(grpcapi.Deps{Store: store, Ops: fakeOps{}, Channels: ops}, "short", grpcauth.ServerTransport{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("NewServer accepted a 5-character admin token")
	}
}

type fakeOps struct{ grpcapi.Ops }
