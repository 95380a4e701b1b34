package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/heraldhq/herald/gateway/internal/httpapi"
	"github.com/heraldhq/herald/gateway/internal/idempotency"
	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/ops"
	"github.com/heraldhq/herald/services/heraldshared/requestid"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// The fake approval service's departments, keys and approval links.
const (
	hrKey      = "hk_hr_0123456789"
	financeKey = "hk_finance_0123456789"
	hrID       = "d-hr"
	financeID  = "d-finance"

	openLink = "tok-open"
	// mediaLink shows fakeApprovals.mediaPost.
	mediaLink = "tok-media"
	usedLink  = "tok-used"
	// racedLink shows an open form, but another approver decides the post before this one submits.
	racedLink = "tok-raced"
	// publishedLink was used to approve the post, which is now published; closedLink's post was rejected
	// by another approver before this link was used.
	publishedLink = "tok-published"
	closedLink    = "tok-closed"
	// oddURLLink and scriptURLLink were used on published posts whose publication URL needs escaping, or
	// is no web address at all.
	oddURLLink    = "tok-odd-url"
	scriptURLLink = "tok-script-url"
)

var (
	created = time.Date(2026, 11, 23, 14, 23, 2, 0, time.UTC)
	decided = created.Add(7 * time.Second)

	// Fixed (version 4) ids: the handler's "recently issued, maybe still in flight" path is for version 7
	// ids only, and has its own cases below.
	pendingID   = "11111111-1111-4111-8111-111111111111"
	approvedID  = "22222222-2222-4222-8222-222222222222"
	publishedID = "33333333-3333-4333-8333-333333333333"
	rejectedID  = "44444444-4444-4444-8444-444444444444"
	failedID    = "55555555-5555-4555-8555-555555555555"
	unknownID   = "66666666-6666-4666-8666-666666666666"
	financeOnly = "77777777-7777-4777-8777-777777777777"

	// replayKey and reusedKey already made posts: the ids the intake derives for them are in the fake.
	// Two keys, since the route tests run in parallel and share the idempotency bucket: one case retries
	// its key with the same body, the other with another body.
	replayKey = "flow-run-1"
	reusedKey = "flow-run-2"
)

// fakeApprovals implements the approval service's gRPC API over a fixed set of posts and links, and
// records the decisions it was asked for.
type fakeApprovals struct {
	approvalv1.UnimplementedApprovalServiceServer
	posts map[string]*approvalv1.Post
	// mediaPost is what mediaLink shows: a pending post with pictures.
	mediaPost *approvalv1.Post

	mu        sync.Mutex
	decisions []*approvalv1.DecideRequest
	subs      map[string]*approvalv1.Subscription // see subscriptions_test.go
}

func newFakeApprovals() *fakeApprovals {
	decision := func(o approvalv1.Outcome, comment string) *approvalv1.Decision {
		return &approvalv1.Decision{Outcome: o, Approver: "comms@example.com", DecidedAt: timestamppb.New(decided), Comment: comment}
	}
	post := func(id, dept string, st approvalv1.PostStatus) *approvalv1.Post {
		return &approvalv1.Post{Id: id, DepartmentId: dept, Text: "Welcome!", RequestedBy: "jo@contoso.example", Status: st, CreatedAt: timestamppb.New(created)}
	}
	f := &fakeApprovals{posts: map[string]*approvalv1.Post{}}
	for _, p := range []*approvalv1.Post{
		post(pendingID, hrID, approvalv1.PostStatus_POST_STATUS_PENDING),
		post(approvedID, hrID, approvalv1.PostStatus_POST_STATUS_APPROVED),
		post(publishedID, hrID, approvalv1.PostStatus_POST_STATUS_PUBLISHED),
		post(rejectedID, hrID, approvalv1.PostStatus_POST_STATUS_REJECTED),
		post(failedID, hrID, approvalv1.PostStatus_POST_STATUS_FAILED),
		post(unknownID, hrID, approvalv1.PostStatus_POST_STATUS_UNKNOWN),
		post(financeOnly, financeID, approvalv1.PostStatus_POST_STATUS_PENDING),
		post(intake.PostID(hrID, replayKey), hrID, approvalv1.PostStatus_POST_STATUS_PENDING),
		post(intake.PostID(hrID, reusedKey), hrID, approvalv1.PostStatus_POST_STATUS_PENDING),
	} {
		f.posts[p.Id] = p
	}
	f.posts[approvedID].Decision = decision(approvalv1.Outcome_OUTCOME_APPROVE, "")
	f.posts[publishedID].Decision = decision(approvalv1.Outcome_OUTCOME_APPROVE, "Lovely")
	f.posts[publishedID].Publication = &approvalv1.Publication{Channel: "x", RemoteId: "185", Url: "https://x.com/i/web/status/185", PublishedAt: timestamppb.New(decided.Add(time.Second))}
	f.posts[rejectedID].Decision = decision(approvalv1.Outcome_OUTCOME_REJECT, "Not on a Friday")
	f.posts[failedID].Decision = decision(approvalv1.Outcome_OUTCOME_APPROVE, "")
	f.posts[failedID].FailureReason = "X refused the post: duplicate content"
	f.posts[unknownID].Decision = decision(approvalv1.Outcome_OUTCOME_APPROVE, "")
	f.posts[unknownID].FailureReason = "the call to X timed out; ops will check whether it went out"
	return f
}

func (f *fakeApprovals) AuthenticateKey(_ context.Context, req *approvalv1.AuthenticateKeyRequest) (*approvalv1.AuthenticateKeyResponse, error) {
	switch req.GetApiKey() {
	case hrKey:
		return &approvalv1.AuthenticateKeyResponse{DepartmentId: hrID, DepartmentName: "HR", KeyId: "k-hr"}, nil
	case financeKey:
		return &approvalv1.AuthenticateKeyResponse{DepartmentId: financeID, DepartmentName: "Finance", KeyId: "k-fin"}, nil
	}
	return nil, status.Error(codes.NotFound, "no valid API key matches")
}

func (f *fakeApprovals) GetPost(_ context.Context, req *approvalv1.GetPostRequest) (*approvalv1.GetPostResponse, error) {
	if req.GetDepartmentId() == "" {
		// As the approval service answers the gateway's token: it reads one department's posts only.
		return nil, status.Error(codes.PermissionDenied, "department_id is required")
	}
	p, ok := f.posts[req.GetPostId()]
	if ok && p.GetDepartmentId() != req.GetDepartmentId() {
		return nil, status.Error(codes.PermissionDenied, "the post belongs to another department")
	}
	if !ok {
		return nil, status.Error(codes.NotFound, "post not found")
	}
	return &approvalv1.GetPostResponse{Post: p}, nil
}

// CancelPost cancels as the approval service does: the department's own pending post only.
func (f *fakeApprovals) CancelPost(_ context.Context, req *approvalv1.CancelPostRequest) (*approvalv1.CancelPostResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.posts[req.GetPostId()]
	switch {
	case req.GetDepartmentId() == "":
		return nil, status.Error(codes.PermissionDenied, "department_id is required")
	case !ok:
		return nil, status.Error(codes.NotFound, "post not found")
	case p.GetDepartmentId() != req.GetDepartmentId():
		return nil, status.Error(codes.PermissionDenied, "the post belongs to another department")
	case p.GetStatus() != approvalv1.PostStatus_POST_STATUS_PENDING:
		return nil, status.Error(codes.FailedPrecondition, "cancel: this post was already decided")
	}
	c := proto.CloneOf(p)
	c.Status = approvalv1.PostStatus_POST_STATUS_CANCELLED
	f.posts[c.Id] = c
	return &approvalv1.CancelPostResponse{Post: c}, nil
}

func (f *fakeApprovals) GetApproval(_ context.Context, req *approvalv1.GetApprovalRequest) (*approvalv1.GetApprovalResponse, error) {
	resp := &approvalv1.GetApprovalResponse{
		Post: f.posts[pendingID], ApproverEmail: "comms@example.com", DepartmentName: "HR", ExpiresAt: timestamppb.New(created.Add(72 * time.Hour)),
	}
	switch req.GetToken() {
	case openLink, racedLink:
		resp.State = approvalv1.ApprovalState_APPROVAL_STATE_OPEN
	case usedLink:
		resp.State = approvalv1.ApprovalState_APPROVAL_STATE_USED
	case mediaLink:
		f.mu.Lock()
		resp.State, resp.Post = approvalv1.ApprovalState_APPROVAL_STATE_OPEN, f.mediaPost
		f.mu.Unlock()
	case publishedLink:
		resp.State, resp.Post = approvalv1.ApprovalState_APPROVAL_STATE_USED, f.posts[publishedID]
	case closedLink:
		resp.State, resp.Post = approvalv1.ApprovalState_APPROVAL_STATE_CLOSED, f.posts[rejectedID]
	case oddURLLink, scriptURLLink:
		p := proto.CloneOf(f.posts[publishedID])
		p.Publication.Url = `https://x.com/i/web/status/185?q="><script>alert(1)</script>`
		if req.GetToken() == scriptURLLink {
			p.Publication.Url = "javascript:alert(1)"
		}
		resp.State, resp.Post = approvalv1.ApprovalState_APPROVAL_STATE_USED, p
	default:
		return nil, status.Error(codes.NotFound, "approval link not found")
	}
	return resp, nil
}

func (f *fakeApprovals) Decide(_ context.Context, req *approvalv1.DecideRequest) (*approvalv1.DecideResponse, error) {
	f.mu.Lock()
	f.decisions = append(f.decisions, req)
	f.mu.Unlock()
	switch req.GetToken() {
	case openLink:
		return &approvalv1.DecideResponse{Post: f.posts[pendingID]}, nil
	case usedLink, racedLink:
		return nil, status.Error(codes.FailedPrecondition, "this post was already decided")
	}
	return nil, status.Error(codes.NotFound, "approval link not found")
}

// env is a gateway handler on a fake approval service (over bufconn) and a real JetStream.
type env struct {
	handler   http.Handler
	approvals *fakeApprovals
	js        jetstream.JetStream
	media     *media.Store
}

// options change what setup builds.
type options struct {
	// natsDown closes the intake's NATS connection before the handler serves, so that nothing can be
	// queued.
	natsDown bool
	ready    func(context.Context) error
	// publicURL is the gateway's HERALD_PUBLIC_URL; empty keeps Location relative.
	publicURL string
	// trustedProxies are passed to the handler's Config.
	trustedProxies []netip.Prefix
	// xAccount is the gateway's HERALD_X_ACCOUNT.
	xAccount string
	// maxBody is the body limit; 1024 when zero.
	maxBody int64
}

func setup(t *testing.T, opt options) *env {
	t.Helper()
	fake := newFakeApprovals()
	gs := grpc.NewServer()
	approvalv1.RegisterApprovalServiceServer(gs, fake)
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := approvalv1.NewApprovalServiceClient(conn)

	nc, js, err := eventbus.Connect(context.Background(), natstest.Embedded(t), "gateway-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, err := eventbus.NewPublisher(js, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	idem := idemStore(t, js)
	pics, err := media.Open(context.Background(), js, eventbus.MediaBucket(""))
	if err != nil {
		t.Fatal(err)
	}
	if opt.natsDown {
		nc.Close()
	}
	in, err := intake.New(pub, pics)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyauth.New(client, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if opt.ready == nil {
		opt.ready = func(context.Context) error { return nil }
	}
	if opt.maxBody == 0 {
		opt.maxBody = 1024
	}
	h, err := httpapi.New(httpapi.Config{MaxBodyBytes: opt.maxBody, RetryAfter: 5 * time.Second, RetryAfterPending: time.Minute, CSRFKey: []byte(strings.Repeat("k", 32)), PublicURL: opt.publicURL, TrustedProxies: opt.trustedProxies, XAccount: opt.xAccount}, httpapi.Deps{
		Intake: in, Keys: keys, Idempotency: idem, Approvals: client, Media: pics, Ready: opt.ready, Log: slog.New(slog.DiscardHandler), Registry: ops.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{handler: h, approvals: fake, js: js, media: pics}
}

// serve runs one request through the handler.
func (e *env) serve(t *testing.T, method, target string, header http.Header, body string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	return w.Result()
}

// routeTest is one request and what its answer must hold.
type routeTest struct {
	name   string
	method string
	target string
	header http.Header
	body   string

	wantStatus int
	// wantHeader lists headers and their exact values; an empty value means the header must be absent.
	wantHeader map[string]string
	// wantJSON is the body, compared as JSON; wantText lists substrings of a non-JSON body.
	wantJSON string
	wantText []string
}

func (tt routeTest) check(t *testing.T, resp *http.Response) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != tt.wantStatus {
		t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	for k, want := range tt.wantHeader {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if tt.wantJSON != "" {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type %q, want JSON", ct)
		}
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, body)
		}
		if err := json.Unmarshal([]byte(tt.wantJSON), &want); err != nil {
			t.Fatalf("bad wantJSON: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
	}
	for _, s := range tt.wantText {
		if !strings.Contains(html.UnescapeString(string(body)), s) {
			t.Errorf("body does not contain %q:\n%s", s, body)
		}
	}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func errJSON(code, message, target string) string {
	e := map[string]string{"code": code, "message": message}
	if target != "" {
		e["target"] = target
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return string(b)
}

func TestPostsRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	hrJSON := func(kv ...string) http.Header {
		return hdr(append([]string{"X-API-Key", hrKey, "Content-Type", "application/json"}, kv...)...)
	}
	newID := intake.PostID(hrID, "flow-run-new")
	replayID := intake.PostID(hrID, replayKey)
	recentUnknown := uuid.Must(uuid.NewV7()).String()
	recentFinance := uuid.Must(uuid.NewV7()).String()
	e.approvals.posts[recentFinance] = &approvalv1.Post{Id: recentFinance, DepartmentId: financeID, Text: "Finance only", Status: approvalv1.PostStatus_POST_STATUS_PENDING}
	oldUnknown := "99999999-9999-4999-8999-999999999999"

	tests := []routeTest{
		{
			name: "request a post", method: "POST", target: "/v1/posts", header: hrJSON("Idempotency-Key", "flow-run-new"),
			body:       `{"tweet": "Please welcome our new joiners!", "requestedby": "jo@contoso.example"}`,
			wantStatus: 202, wantHeader: map[string]string{"Location": "/v1/posts/" + newID, "Retry-After": "60"},
			wantJSON: `{"id": "` + newID + `", "status": "pending", "tweet": "Please welcome our new joiners!", "requestedby": "jo@contoso.example"}`,
		},
		{
			name: "request a post with the key in the query", method: "POST", target: "/v1/posts?api_key=" + hrKey,
			header: hdr("Content-Type", "application/json; charset=utf-8", "Idempotency-Key", "flow-run-query"),
			body:   `{"tweet": "Hi", "requestedby": "jo"}`, wantStatus: 202,
			wantHeader: map[string]string{"Location": "/v1/posts/" + intake.PostID(hrID, "flow-run-query")},
			wantJSON:   `{"id": "` + intake.PostID(hrID, "flow-run-query") + `", "status": "pending", "tweet": "Hi", "requestedby": "jo"}`,
		},
		{
			name: "retry with the same Idempotency-Key answers the existing post", method: "POST", target: "/v1/posts",
			header: hrJSON("Idempotency-Key", replayKey), body: `{"tweet": "Welcome!", "requestedby": "jo@contoso.example"}`,
			wantStatus: 202, wantHeader: map[string]string{"Location": "/v1/posts/" + replayID, "Retry-After": "60"},
			wantJSON: `{"id": "` + replayID + `", "status": "pending", "tweet": "Welcome!", "requestedby": "jo@contoso.example"}`,
		},
		{
			name: "Idempotency-Key reused for another tweet", method: "POST", target: "/v1/posts",
			header: hrJSON("Idempotency-Key", reusedKey), body: `{"tweet": "Something else", "requestedby": "jo"}`,
			wantStatus: 422, wantJSON: errJSON("idempotency_key_reused", "this Idempotency-Key was already used for a different tweet", "Idempotency-Key"),
		},
		{
			name: "malformed JSON", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": `,
			wantStatus: 400, wantJSON: errJSON("invalid_json", "the body is empty or cut short", ""),
		},
		{
			name: "syntax error", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet" "x"}`,
			wantStatus: 400, wantJSON: errJSON("invalid_json", `malformed JSON at byte 9: invalid character '"' after object name (expecting ':')`, ""),
		},
		{
			name: "unknown field", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": "x", "requestedby": "jo", "colour": "red"}`,
			wantStatus: 400, wantJSON: errJSON("unknown_field", `unknown field "colour"; the fields are tweet, requestedby and media (names are case-sensitive)`, "colour"),
		},
		{
			name: "tweet of the wrong type", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": 7, "requestedby": "jo"}`,
			wantStatus: 400, wantJSON: errJSON("invalid_json", "tweet must be a string, not a number", "tweet"),
		},
		{
			name: "two JSON values", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": "x", "requestedby": "jo"} {}`,
			wantStatus: 400, wantJSON: errJSON("invalid_json", "the body must hold exactly one JSON object", ""),
		},
		{
			name: "missing tweet", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"requestedby": "jo"}`,
			wantStatus: 400, wantJSON: errJSON("invalid_request", "tweet is required and must not be blank", "tweet"),
		},
		{
			name: "blank requestedby", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": "x", "requestedby": "  "}`,
			wantStatus: 400, wantJSON: errJSON("invalid_request", "requestedby is required: say who in the department asks for this post", "requestedby"),
		},
		{
			name: "tweet over 280 characters", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": "` + strings.Repeat("é", 281) + `", "requestedby": "jo"}`,
			wantStatus: 400, wantJSON: errJSON("invalid_request", "tweet is 281 characters long as X counts them (a URL counts 23, CJK characters and emoji 2); X allows at most 280", "tweet"),
		},
		{
			name: "media by URL", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": "x", "requestedby": "jo", "media": [{"url": "https://example.com/a.png"}]}`,
			wantStatus: 400, wantJSON: errJSON("unknown_field", `unknown field "url" in a media item; its fields are $content-type and $content`, "url"),
		},
		{
			name: "no API key", method: "POST", target: "/v1/posts", header: hdr("Content-Type", "application/json"), body: `{"tweet": "x", "requestedby": "jo"}`,
			wantStatus: 401, wantJSON: errJSON("unauthorized", "missing API key: send it in the X-API-Key header", ""),
		},
		{
			name: "wrong API key", method: "POST", target: "/v1/posts", header: hdr("X-API-Key", "hk_wrong", "Content-Type", "application/json"), body: `{"tweet": "x", "requestedby": "jo"}`,
			wantStatus: 401, wantJSON: errJSON("unauthorized", "the API key is not valid (unknown or revoked)", ""),
		},
		{
			name: "body over the limit", method: "POST", target: "/v1/posts", header: hrJSON(), body: `{"tweet": "` + strings.Repeat("x", 1100) + `", "requestedby": "jo"}`,
			wantStatus: 413, wantJSON: errJSON("too_large", "the body is larger than 1024 bytes", ""),
		},
		{
			name: "not JSON", method: "POST", target: "/v1/posts", header: hdr("X-API-Key", hrKey, "Content-Type", "text/plain"), body: `tweet=x`,
			wantStatus: 415, wantJSON: errJSON("unsupported_media_type", "send the post as JSON with Content-Type: application/json", ""),
		},
		{
			name: "no Content-Type", method: "POST", target: "/v1/posts", header: hdr("X-API-Key", hrKey), body: `{"tweet": "x", "requestedby": "jo"}`,
			wantStatus: 415, wantJSON: errJSON("unsupported_media_type", "send the post as JSON with Content-Type: application/json", ""),
		},
		{
			name: "pending post", method: "GET", target: "/v1/posts/" + pendingID, header: hdr("X-API-Key", hrKey),
			wantStatus: 202, wantHeader: map[string]string{"Location": "/v1/posts/" + pendingID, "Retry-After": "60"},
			wantJSON: `{"id": "` + pendingID + `", "status": "pending", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z"}`,
		},
		{
			name: "approved post on its way out", method: "GET", target: "/v1/posts/" + approvedID, header: hdr("X-API-Key", hrKey),
			wantStatus: 202, wantHeader: map[string]string{"Retry-After": "5"},
			wantJSON: `{"id": "` + approvedID + `", "status": "approved", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z",
				"decision": {"outcome": "approved", "approver": "comms@example.com", "decided_at": "2026-11-23T14:23:09Z", "comment": ""}}`,
		},
		{
			name: "published post", method: "GET", target: "/v1/posts/" + publishedID + "?api_key=" + hrKey,
			wantStatus: 200, wantHeader: map[string]string{"Retry-After": "", "Location": ""},
			wantJSON: `{"id": "` + publishedID + `", "status": "published", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z",
				"decision": {"outcome": "approved", "approver": "comms@example.com", "decided_at": "2026-11-23T14:23:09Z", "comment": "Lovely"},
				"publication": {"channel": "x", "remote_id": "185", "url": "https://x.com/i/web/status/185", "published_at": "2026-11-23T14:23:10Z"}}`,
		},
		{
			name: "rejected post", method: "GET", target: "/v1/posts/" + rejectedID, header: hdr("X-API-Key", hrKey),
			wantStatus: 200, wantHeader: map[string]string{"Retry-After": ""},
			wantJSON: `{"id": "` + rejectedID + `", "status": "rejected", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z",
				"decision": {"outcome": "rejected", "approver": "comms@example.com", "decided_at": "2026-11-23T14:23:09Z", "comment": "Not on a Friday"}}`,
		},
		{
			name: "failed post", method: "GET", target: "/v1/posts/" + failedID, header: hdr("X-API-Key", hrKey),
			wantStatus: 200, wantHeader: map[string]string{"Retry-After": ""},
			wantJSON: `{"id": "` + failedID + `", "status": "failed", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z",
				"decision": {"outcome": "approved", "approver": "comms@example.com", "decided_at": "2026-11-23T14:23:09Z", "comment": ""},
				"failure_reason": "X refused the post: duplicate content"}`,
		},
		{
			name: "post in an unknown state", method: "GET", target: "/v1/posts/" + unknownID, header: hdr("X-API-Key", hrKey),
			wantStatus: 200, wantHeader: map[string]string{"Retry-After": ""},
			wantJSON: `{"id": "` + unknownID + `", "status": "unknown", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z",
				"decision": {"outcome": "approved", "approver": "comms@example.com", "decided_at": "2026-11-23T14:23:09Z", "comment": ""},
				"failure_reason": "the call to X timed out; ops will check whether it went out"}`,
		},
		{
			name: "another department's post", method: "GET", target: "/v1/posts/" + financeOnly, header: hdr("X-API-Key", hrKey),
			wantStatus: 404, wantJSON: errJSON("not_found", "no such post", ""),
		},
		{
			name: "the department's own post, seen by that department", method: "GET", target: "/v1/posts/" + financeOnly, header: hdr("X-API-Key", financeKey),
			wantStatus: 202, wantHeader: map[string]string{"Retry-After": "60"},
			wantJSON: `{"id": "` + financeOnly + `", "status": "pending", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z"}`,
		},
		{
			name: "another department's post issued moments ago", method: "GET", target: "/v1/posts/" + recentFinance, header: hdr("X-API-Key", hrKey),
			wantStatus: 404, wantJSON: errJSON("not_found", "no such post", ""),
		},
		{
			name: "an id issued moments ago, not recorded yet", method: "GET", target: "/v1/posts/" + recentUnknown, header: hdr("X-API-Key", hrKey),
			wantStatus: 202, wantHeader: map[string]string{"Location": "/v1/posts/" + recentUnknown, "Retry-After": "60"},
			wantJSON: `{"id": "` + recentUnknown + `", "status": "pending"}`,
		},
		{
			name: "an unknown old id", method: "GET", target: "/v1/posts/" + oldUnknown, header: hdr("X-API-Key", hrKey),
			wantStatus: 404, wantJSON: errJSON("not_found", "no such post", ""),
		},
		{
			name: "not an id", method: "GET", target: "/v1/posts/nope", header: hdr("X-API-Key", hrKey),
			wantStatus: 404, wantJSON: errJSON("not_found", "no such post", ""),
		},
		{
			name: "status without a key", method: "GET", target: "/v1/posts/" + pendingID,
			wantStatus: 401, wantJSON: errJSON("unauthorized", "missing API key: send it in the X-API-Key header", ""),
		},
		{
			name: "unknown endpoint", method: "GET", target: "/v2/posts",
			wantStatus: 404, wantJSON: errJSON("not_found", "no such endpoint: GET /v2/posts", ""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, e.serve(t, tt.method, tt.target, tt.header, tt.body))
		})
	}
}

// TestAcceptedPostIsQueued checks what the 202 promises: the request is on JetStream, under the id the
// answer gives, before the answer.
func TestAcceptedPostIsQueued(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	resp := e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), `{"tweet": "Hello", "requestedby": "jo"}`)
	var body struct{ ID, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 202 || body.Status != "pending" || resp.Header.Get("Location") != "/v1/posts/"+body.ID {
		t.Fatalf("answer %d %+v, Location %q", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	if _, err := uuid.Parse(body.ID); err != nil {
		t.Errorf("id %q: %v", body.ID, err)
	}
	stream, err := e.js.Stream(context.Background(), eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), eventbus.SubjectRequested)
	if err != nil {
		t.Fatalf("nothing queued on %s: %v", eventbus.SubjectRequested, err)
	}
	if got, want := msg.Header.Get(jetstream.MsgIDHeader), eventbus.MsgID(body.ID, "requested"); got != want {
		t.Errorf("queued message id %q, want %q", got, want)
	}
	if got := msg.Header.Get(requestid.BusHeader); got != resp.Header.Get("X-Request-Id") {
		t.Errorf("queued request id %q, want the answer's %q", got, resp.Header.Get("X-Request-Id"))
	}
	var ev eventsv1.PostRequested
	if err := proto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetApiKeyId() != "k-hr" || ev.GetDepartmentId() != hrID {
		t.Errorf("queued request names key %q of department %q, want k-hr of %s", ev.GetApiKeyId(), ev.GetDepartmentId(), hrID)
	}
}

func TestPostWhileJetStreamIsDown(t *testing.T) {
	t.Parallel()
	e := setup(t, options{natsDown: true})
	tt := routeTest{
		wantStatus: 503, wantHeader: map[string]string{"Retry-After": "5", "Location": ""},
		wantJSON: errJSON("unavailable", "Herald cannot accept posts right now; nothing was queued. Retry later.", ""),
	}
	tt.check(t, e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), `{"tweet": "Hello", "requestedby": "jo"}`))
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfFor opens the approval page of token and returns its form's CSRF token.
func csrfFor(t *testing.T, e *env, token string) string {
	t.Helper()
	resp := e.serve(t, "GET", "/approvals/"+token, nil, "")
	body, _ := io.ReadAll(resp.Body)
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the page of %s:\n%s", token, body)
	}
	return html.UnescapeString(string(m[1]))
}

func TestApprovalRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	csrf := csrfFor(t, e, openLink)
	if again := csrfFor(t, e, openLink); again != csrf {
		t.Fatalf("CSRF tokens of one link differ: %q, %q", csrf, again)
	}
	racedCSRF := csrfFor(t, e, racedLink)
	form := hdr("Content-Type", "application/x-www-form-urlencoded")
	pageHeaders := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": httpapi.ContentSecurityPolicy,
	}
	tests := []routeTest{
		{
			name: "open link shows the post and the form", method: "GET", target: "/approvals/" + openLink,
			wantStatus: 200, wantHeader: pageHeaders,
			wantText: []string{"Welcome!", "comms@example.com", `value="approve"`, `value="reject"`, `name="csrf" value="` + csrf + `"`},
		},
		{
			name: "the email's Approve link preselects approval and decides nothing", method: "GET", target: "/approvals/" + openLink + "?choice=approve",
			wantStatus: 200, wantHeader: pageHeaders,
			wantText: []string{"You chose to approve in the email", `value="approve" autofocus>Confirm: approve and publish`, `value="reject">Reject`},
		},
		{
			name: "the email's Reject link preselects rejection", method: "GET", target: "/approvals/" + openLink + "?choice=reject",
			wantStatus: 200, wantHeader: pageHeaders,
			wantText: []string{"You chose to reject in the email", `value="reject" autofocus>Confirm: reject`},
		},
		{
			name: "used link says so", method: "GET", target: "/approvals/" + usedLink,
			wantStatus: 200, wantHeader: pageHeaders, wantText: []string{"You already answered through this link."},
		},
		{
			name: "unknown link", method: "GET", target: "/approvals/nope",
			wantStatus: 404, wantHeader: pageHeaders, wantText: []string{"This approval link is not valid."},
		},
		{
			name: "approve", method: "POST", target: "/approvals/" + openLink, header: form,
			body: "csrf=" + csrf + "&decision=approve&comment=Lovely", wantStatus: 200, wantHeader: pageHeaders,
			wantText: []string{"Approved. Herald is publishing the post now.", "once the post is published, the page links to it"},
		},
		{
			name: "reject", method: "POST", target: "/approvals/" + openLink, header: form,
			body: "csrf=" + csrf + "&decision=reject", wantStatus: 200, wantHeader: pageHeaders,
			wantText: []string{"Rejected. Nothing will be posted"},
		},
		{
			name: "decision on a post another approver decided meanwhile", method: "POST", target: "/approvals/" + racedLink, header: form,
			body: "csrf=" + racedCSRF + "&decision=approve", wantStatus: 409, wantHeader: pageHeaders,
			wantText: []string{"this post was already decided"},
		},
		{
			name: "form without its CSRF token", method: "POST", target: "/approvals/" + openLink, header: form,
			body: "decision=approve", wantStatus: 403, wantText: []string{"did not come from Herald's approval page"},
		},
		{
			name: "CSRF token of another link", method: "POST", target: "/approvals/" + racedLink, header: form,
			body: "csrf=" + csrf + "&decision=approve", wantStatus: 403, wantText: []string{"did not come from Herald's approval page"},
		},
		{
			name: "cross-site form post", method: "POST", target: "/approvals/" + openLink,
			header: hdr("Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"),
			body:   "csrf=" + csrf + "&decision=approve", wantStatus: 403,
		},
		{
			name: "no decision", method: "POST", target: "/approvals/" + openLink, header: form,
			body: "csrf=" + csrf, wantStatus: 400, wantText: []string{"Choose Approve or Reject."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, e.serve(t, tt.method, tt.target, tt.header, tt.body))
		})
	}

	// The approval service heard exactly the decisions that passed the form checks, with the approver's
	// comment and address.
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	type decision struct{ Token, Outcome, Comment, Origin string }
	var got []decision
	for _, d := range e.approvals.decisions {
		got = append(got, decision{d.GetToken(), d.GetOutcome().String(), d.GetComment(), d.GetOrigin()})
	}
	want := []decision{
		{openLink, "OUTCOME_APPROVE", "Lovely", "192.0.2.1"},
		{openLink, "OUTCOME_REJECT", "", "192.0.2.1"},
		{racedLink, "OUTCOME_APPROVE", "", "192.0.2.1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions sent to the approval service (-want +got):\n%s", diff)
	}
}

func TestOpsRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	down := setup(t, options{ready: func(context.Context) error { return errors.New("nats: not connected") }})
	// A request first, so that the metrics have something to count.
	e.serve(t, "GET", "/v1/posts/"+pendingID, hdr("X-API-Key", hrKey), "")
	tests := []struct {
		routeTest
		env *env
	}{
		{routeTest{name: "healthz", method: "GET", target: "/healthz", wantStatus: 200, wantJSON: `{"status": "ok"}`}, e},
		{routeTest{name: "readyz", method: "GET", target: "/readyz", wantStatus: 200, wantJSON: `{"status": "ready"}`}, e},
		{routeTest{name: "readyz while NATS is down", method: "GET", target: "/readyz", wantStatus: 503, wantJSON: `{"status": "not ready", "reason": "nats: not connected"}`}, down},
		{routeTest{name: "healthz while NATS is down", method: "GET", target: "/healthz", wantStatus: 200, wantJSON: `{"status": "ok"}`}, down},
		{routeTest{
			name: "metrics", method: "GET", target: "/metrics", wantStatus: 200,
			wantText: []string{
				`herald_gateway_requests_total{code="202",route="GET /v1/posts/{id}"} 1`,
				`herald_gateway_request_duration_seconds_count{route="GET /v1/posts/{id}"} 1`,
				"go_goroutines",
			},
		}, e},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, tt.env.serve(t, tt.method, tt.target, tt.header, tt.body))
		})
	}
}

// idemStore binds to the idempotency bucket that eventbus.Connect created beside the stream.
func idemStore(t testing.TB, js jetstream.JetStream) *idempotency.Store {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), eventbus.IdempotencyBucket(""))
	if err != nil {
		t.Fatal(err)
	}
	s, err := idempotency.New(kv, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCancelPostRoute: DELETE /v1/posts/{id} cancels the department's own undecided post. It has its own
// fake, since cancelling changes the posts the other route tests read.
func TestCancelPostRoute(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	key := hdr("X-API-Key", hrKey)
	recent := uuid.Must(uuid.NewV7()).String()
	tests := []routeTest{
		{
			name: "cancel a pending post", method: "DELETE", target: "/v1/posts/" + pendingID, header: key,
			wantStatus: 200, wantJSON: `{"id": "` + pendingID + `", "status": "cancelled", "tweet": "Welcome!", "requestedby": "jo@contoso.example", "created_at": "2026-11-23T14:23:02Z"}`,
		},
		{
			name: "cancel it again", method: "DELETE", target: "/v1/posts/" + pendingID, header: key,
			wantStatus: 409, wantJSON: errJSON("conflict", "cancel: this post was already decided", ""),
		},
		{
			name: "cancel a decided post", method: "DELETE", target: "/v1/posts/" + rejectedID, header: key,
			wantStatus: 409, wantJSON: errJSON("conflict", "cancel: this post was already decided", ""),
		},
		{
			name: "cancel another department's post", method: "DELETE", target: "/v1/posts/" + financeOnly, header: key,
			wantStatus: 404, wantJSON: errJSON("not_found", "no such post", ""),
		},
		{
			name: "cancel a post still on its way", method: "DELETE", target: "/v1/posts/" + recent, header: key,
			wantStatus: 409, wantJSON: errJSON("conflict", "the post is still being recorded; retry the cancellation in a few seconds", ""),
		},
		{
			name: "cancel without a key", method: "DELETE", target: "/v1/posts/" + pendingID,
			wantStatus: 401, wantJSON: errJSON("unauthorized", "missing API key: send it in the X-API-Key header", ""),
		},
	}
	// In order: the second case depends on the first.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, e.serve(t, tt.method, tt.target, tt.header, tt.body))
		})
	}
	if got := e.approvals.posts[financeOnly].GetStatus(); got != approvalv1.PostStatus_POST_STATUS_PENDING {
		t.Errorf("another department's post is %s; want it untouched", got)
	}
}

// TestApprovalPageScriptMatchesItsHash: the page's one inline script is exactly the one the CSP allows by
// hash (a browser would refuse anything else), and the editable text starts as the requested text with its
// weighted count.
func TestApprovalPageScriptMatchesItsHash(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	resp := e.serve(t, "GET", "/approvals/"+openLink, nil, "")
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(body)
	start, end := strings.Index(page, "<script>"), strings.Index(page, "</script>")
	if start < 0 || end < start {
		t.Fatalf("no inline script on the page:\n%s", page)
	}
	sum := sha256.Sum256([]byte(page[start+len("<script>") : end]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src "+hash+";") {
		t.Errorf("CSP %q does not allow the page's script (%s)", csp, hash)
	}
	for _, want := range []string{`<textarea id="text" name="text"`, ">Welcome!</textarea>", "8 of 280 characters as X counts them"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestUsedLinkShowsTheOutcome: once a link can no longer decide, its page says what was decided, by whom,
// when and with which comment, and links to the published post once it is out, escaped like any other
// text and only when it is a web address.
func TestUsedLinkShowsTheOutcome(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	tests := []struct {
		name, token string
		// want are substrings of the raw page; wantNot must not be in it.
		want, wantNot []string
	}{
		{
			name: "used link of a published post", token: publishedLink,
			want: []string{
				"You already answered through this link.",
				`<p id="decided">Approved by comms@example.com on 23 Nov 2026 14:23 UTC, with the comment: Lovely.</p>`,
				`<p id="published">Published: <a href="https://x.com/i/web/status/185" rel="noreferrer">https://x.com/i/web/status/185</a></p>`,
			},
			wantNot: []string{"<form"},
		},
		{
			name: "link closed by another approver's rejection", token: closedLink,
			want: []string{
				"This post was already decided: it is rejected.",
				`<p id="decided">Rejected by comms@example.com on 23 Nov 2026 14:23 UTC, with the comment: Not on a Friday.</p>`,
			},
			wantNot: []string{`id="published"`, "<form"},
		},
		{
			name: "a used link of a pending post has nothing settled to show", token: usedLink,
			want:    []string{"You already answered through this link."},
			wantNot: []string{`id="decided"`, `id="published"`},
		},
		{
			name: "a publication URL is escaped in the link and its text", token: oddURLLink,
			want: []string{
				`<a href="https://x.com/i/web/status/185?q=%22%3e%3cscript%3ealert%281%29%3c/script%3e" rel="noreferrer">`,
				`>https://x.com/i/web/status/185?q=&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</a>`,
			},
			wantNot: []string{"<script>alert"},
		},
		{
			name: "a publication URL that is no web address is not linked", token: scriptURLLink,
			want:    []string{`id="decided"`},
			wantNot: []string{`id="published"`, "javascript:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.serve(t, "GET", "/approvals/"+tt.token, nil, "")
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != httpapi.ContentSecurityPolicy {
				t.Errorf("CSP %q, want %q", got, httpapi.ContentSecurityPolicy)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(body), s) {
					t.Errorf("page does not contain %q:\n%s", s, body)
				}
			}
			for _, s := range tt.wantNot {
				if strings.Contains(string(body), s) {
					t.Errorf("page contains %q:\n%s", s, body)
				}
			}
		})
	}
}

// TestApprovalPageShowsTheAccount: the open page says which account approving publishes as, when the
// gateway was told (HERALD_X_ACCOUNT), escaped; without it, the page names none.
func TestApprovalPageShowsTheAccount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, account, want string
	}{
		{"set", "@contoso", `<p class="meta" id="account">Approving publishes it on X as <strong>@contoso</strong>.</p>`},
		{"escaped", "@<b>x</b>", `<strong>@&lt;b&gt;x&lt;/b&gt;</strong>`},
		{"unset", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, options{xAccount: tt.account})
			body, err := io.ReadAll(e.serve(t, "GET", "/approvals/"+openLink, nil, "").Body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" && strings.Contains(string(body), `id="account"`) {
				t.Errorf("the page names an account without HERALD_X_ACCOUNT:\n%s", body)
			}
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("page does not contain %q:\n%s", tt.want, body)
			}
		})
	}
}
