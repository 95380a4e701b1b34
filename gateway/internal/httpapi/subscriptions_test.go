package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// CreateSubscription, ListSubscriptions and DeleteSubscription keep subscriptions per department, as the
// approval service does (its own tests hold it to that against real storage); a URL on 10.0.0.0/8
// stands for one its guard refuses.
func (f *fakeApprovals) CreateSubscription(_ context.Context, req *approvalv1.CreateSubscriptionRequest) (*approvalv1.CreateSubscriptionResponse, error) {
	if strings.Contains(req.GetUrl(), "://10.") {
		return nil, status.Error(codes.InvalidArgument, "invalid argument: the notification URL is refused: 10.0.0.1 is a private address")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[string]*approvalv1.Subscription{}
	}
	sub := &approvalv1.Subscription{Id: uuid.NewString(), DepartmentId: req.GetDepartmentId(), Url: req.GetUrl(), Events: req.GetEvents(), CreatedAt: timestamppb.New(created)}
	f.subs[sub.Id] = sub
	return &approvalv1.CreateSubscriptionResponse{Subscription: sub, Secret: "whsec_c2VjcmV0LW9mLSIrc3ViLklkKyI="}, nil
}

func (f *fakeApprovals) ListSubscriptions(_ context.Context, req *approvalv1.ListSubscriptionsRequest) (*approvalv1.ListSubscriptionsResponse, error) {
	if req.GetDepartmentId() == "" {
		return nil, status.Error(codes.PermissionDenied, "department_id is required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &approvalv1.ListSubscriptionsResponse{}
	for _, s := range f.subs {
		if s.GetDepartmentId() == req.GetDepartmentId() {
			resp.Subscriptions = append(resp.Subscriptions, s)
		}
	}
	return resp, nil
}

func (f *fakeApprovals) DeleteSubscription(_ context.Context, req *approvalv1.DeleteSubscriptionRequest) (*approvalv1.DeleteSubscriptionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.subs[req.GetSubscriptionId()]
	if !ok || req.GetDepartmentId() == "" || s.GetDepartmentId() != req.GetDepartmentId() {
		return nil, status.Error(codes.NotFound, "not found")
	}
	delete(f.subs, s.Id)
	return &approvalv1.DeleteSubscriptionResponse{}, nil
}

// TestSubscriptionRoutes: subscribe (201, Location, the secret once), list (own department only, no
// secret), delete (only one's own; 204, then 404), and the refusals of bad input.
func TestSubscriptionRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t, options{publicURL: "https://herald.example.com"})
	hr, fin := hdr("X-API-Key", hrKey, "Content-Type", "application/json"), hdr("X-API-Key", financeKey)

	resp := e.serve(t, http.MethodPost, "/v1/subscriptions", hr, `{"url": "https://flows.example.com/hook?sig=abc", "events": ["published", "rejected"]}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}
	var created struct {
		ID     string   `json:"id"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Secret string   `json:"secret"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Location") != "https://herald.example.com/v1/subscriptions/"+created.ID || !strings.HasPrefix(created.Secret, "whsec_") ||
		strings.Join(created.Events, ",") != "published,rejected" || created.URL != "https://flows.example.com/hook?sig=abc" {
		t.Fatalf("subscribe answered Location %q, %s", resp.Header.Get("Location"), body)
	}
	// Events default to published: the trigger "When a post is published".
	resp = e.serve(t, http.MethodPost, "/v1/subscriptions", hr, `{"url": "https://flows.example.com/other"}`)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"events":["published"]`) {
		t.Fatalf("subscribe without events: %d %s", resp.StatusCode, body)
	}

	list := func(h http.Header) string {
		resp := e.serve(t, http.MethodGet, "/v1/subscriptions", h, "")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if got := list(hr); strings.Count(got, `"id"`) != 2 || strings.Contains(got, "whsec_") {
		t.Errorf("HR's list %s; want its two subscriptions, no secret", got)
	}
	if got := list(fin); got != "{\"subscriptions\":[]}\n" {
		t.Errorf("Finance's list %s; want none of HR's", got)
	}
	if resp := e.serve(t, http.MethodDelete, "/v1/subscriptions/"+created.ID, fin, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("Finance deleting HR's subscription: %d, want 404", resp.StatusCode)
	}
	if resp := e.serve(t, http.MethodDelete, "/v1/subscriptions/"+created.ID, hr, ""); resp.StatusCode != http.StatusNoContent {
		t.Errorf("HR deleting its own: %d, want 204", resp.StatusCode)
	}
	if resp := e.serve(t, http.MethodDelete, "/v1/subscriptions/"+created.ID, hr, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting again: %d, want 404", resp.StatusCode)
	}

	for _, tt := range []routeTest{
		{name: "no key", method: http.MethodPost, target: "/v1/subscriptions", body: `{"url": "https://a.example.com"}`, wantStatus: 401},
		{name: "no url", method: http.MethodPost, target: "/v1/subscriptions", header: hr, body: `{"events": ["published"]}`, wantStatus: 400,
			wantJSON: errJSON("invalid_request", "url is required: the address Herald delivers events to", "url")},
		{name: "unknown event", method: http.MethodPost, target: "/v1/subscriptions", header: hr, body: `{"url": "https://a.example.com", "events": ["cancelled"]}`, wantStatus: 400,
			wantJSON: errJSON("invalid_request", `events: "cancelled" is not one of published, rejected, failed, expired`, "events")},
		{name: "unknown field", method: http.MethodPost, target: "/v1/subscriptions", header: hr, body: `{"url": "https://a.example.com", "URL": "x"}`, wantStatus: 400,
			wantJSON: errJSON("unknown_field", `unknown field "URL"; the fields are url and events (names are case-sensitive)`, "URL")},
		{name: "events not an array", method: http.MethodPost, target: "/v1/subscriptions", header: hr, body: `{"url": "https://a.example.com", "events": "published"}`, wantStatus: 400,
			wantJSON: errJSON("invalid_json", "url must be a string and events an array of strings", "events")},
		{name: "private address", method: http.MethodPost, target: "/v1/subscriptions", header: hr, body: `{"url": "https://10.0.0.1/hook"}`, wantStatus: 400,
			wantJSON: errJSON("invalid_request", "invalid argument: the notification URL is refused: 10.0.0.1 is a private address", "")},
		{name: "too large", method: http.MethodPost, target: "/v1/subscriptions", header: hr, body: `{"url": "https://a.example.com/` + strings.Repeat("a", 17<<10) + `"}`, wantStatus: 413},
		{name: "not a uuid", method: http.MethodDelete, target: "/v1/subscriptions/nope", header: hr, wantStatus: 404},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, e.serve(t, tt.method, tt.target, tt.header, tt.body)) })
	}
}
