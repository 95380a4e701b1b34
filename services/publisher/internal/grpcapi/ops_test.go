package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	publisherv1 "github.com/heraldhq/herald/proto/herald/publisher/v1"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// unknown adds an entry the publisher could not settle.
func (e env) unknown(t *testing.T, postID, text string) {
	t.Helper()
	ctx := context.Background()
	p := ledger.Publication{PostID: postID, Channel: "x", State: ledger.StateAttempting, Text: text, Attempts: 3, CreatedAt: t0, UpdatedAt: t0}
	if _, _, err := e.store.Begin(ctx, p); err != nil {
		t.Fatal(err)
	}
	u := p
	u.State, u.Error, u.UpdatedAt = ledger.StateUnknown, "no answer from X", t0.Add(time.Minute)
	if err := e.store.Update(ctx, p, u, nil); err != nil {
		t.Fatal(err)
	}
}

// attempting adds an entry whose attempt began at began and never finished.
func (e env) attempting(t *testing.T, postID, text string, began time.Time) {
	t.Helper()
	p := ledger.Publication{PostID: postID, Channel: "x", State: ledger.StateAttempting, Text: text, Attempts: 1, CreatedAt: began, UpdatedAt: began}
	if _, _, err := e.store.Begin(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func TestListChannels(t *testing.T) {
	t.Parallel()
	e := setupEnv(t)
	client := publisherv1.NewPublisherServiceClient(e.conn)
	if _, err := client.ListChannels(as(""), &publisherv1.ListChannelsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListChannels without a token: %v", err)
	}
	before, err := client.ListChannels(as(adminToken), &publisherv1.ListChannelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &publisherv1.ListChannelsResponse{Channels: []*publisherv1.Channel{{Name: "x", Username: "contoso", AccountId: "1850000000000000001",
		RateLimit: &publisherv1.RateLimit{Limit: -1, Remaining: -1}}}}
	if diff := cmp.Diff(want, before, protocmp.Transform()); diff != "" {
		t.Errorf("before any post (-want +got):\n%s", diff)
	}
	if _, err := e.x.Post(context.Background(), "one", nil); err != nil {
		t.Fatal(err)
	}
	after, err := client.ListChannels(as(adminToken), &publisherv1.ListChannelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rl := after.GetChannels()[0].GetRateLimit()
	if rl.GetLimit() != 50 || rl.GetRemaining() != 49 || !rl.GetResetsAt().AsTime().After(time.Now()) {
		t.Errorf("after one post the rate limit is %v; want 49 of 50 left and a reset ahead", rl)
	}
}

func TestOpsActions(t *testing.T) {
	t.Parallel()
	e := setupEnv(t)
	client := publisherv1.NewPublisherServiceClient(e.conn)
	ctx := as(adminToken)
	e.unknown(t, "u-published", "Went out after all")
	e.unknown(t, "u-not-sent", "Never went out")
	e.unknown(t, "u-retry", "Try me again")
	e.unknown(t, "u-on-x", "Already on X")
	e.attempting(t, "a-stale", "Cut short", t0)
	e.attempting(t, "a-fresh", "Being posted", time.Now())
	onX, err := e.x.Post(context.Background(), "Already on X", nil)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		call      func(ctx context.Context) (*publisherv1.Publication, error)
		token     string
		wantCode  codes.Code
		postID    string
		wantState ledger.State
		wantAudit string
	}{
		{name: "retry without a token", token: "-", wantCode: codes.Unauthenticated, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "u-retry"})
			return r.GetPublication(), err
		}},
		{name: "resolve without a token", token: "-", wantCode: codes.Unauthenticated, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.ResolvePublication(ctx, &publisherv1.ResolvePublicationRequest{PostId: "u-published", Verdict: &publisherv1.ResolvePublicationRequest_NotSent{NotSent: true}})
			return r.GetPublication(), err
		}},
		{name: "retry a published post", wantCode: codes.FailedPrecondition, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "p1"})
			return r.GetPublication(), err
		}},
		{name: "retry an unknown post id", wantCode: codes.NotFound, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "nope"})
			return r.GetPublication(), err
		}},
		{name: "resolve without a verdict", wantCode: codes.InvalidArgument, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.ResolvePublication(ctx, &publisherv1.ResolvePublicationRequest{PostId: "u-published"})
			return r.GetPublication(), err
		}},
		{name: "resolve with a remote id that is no post id", wantCode: codes.InvalidArgument, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.ResolvePublication(ctx, &publisherv1.ResolvePublicationRequest{PostId: "u-published", Verdict: &publisherv1.ResolvePublicationRequest_PublishedRemoteId{PublishedRemoteId: "https://x.com/1"}})
			return r.GetPublication(), err
		}},
		{name: "resolve a failed post", wantCode: codes.FailedPrecondition, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.ResolvePublication(ctx, &publisherv1.ResolvePublicationRequest{PostId: "p2", Verdict: &publisherv1.ResolvePublicationRequest_NotSent{NotSent: true}})
			return r.GetPublication(), err
		}},
		{name: "resolve as published", postID: "u-published", wantState: ledger.StatePublished, wantAudit: "resolve_published", call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.ResolvePublication(ctx, &publisherv1.ResolvePublicationRequest{PostId: "u-published", Verdict: &publisherv1.ResolvePublicationRequest_PublishedRemoteId{PublishedRemoteId: "1850000000000000999"}, Note: "seen on x.com"})
			return r.GetPublication(), err
		}},
		{name: "resolve as not sent", postID: "u-not-sent", wantState: ledger.StateFailed, wantAudit: "resolve_not_sent", call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.ResolvePublication(ctx, &publisherv1.ResolvePublicationRequest{PostId: "u-not-sent", Verdict: &publisherv1.ResolvePublicationRequest_NotSent{NotSent: true}, Note: "not on the account"})
			return r.GetPublication(), err
		}},
		{name: "retry an unknown post: posted", postID: "u-retry", wantState: ledger.StatePublished, wantAudit: "retry", call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "u-retry", Note: "checked the account"})
			return r.GetPublication(), err
		}},
		{name: "retry a failed post: posted", postID: "p2", wantState: ledger.StatePublished, wantAudit: "retry", call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "p2", Note: "X was down"})
			return r.GetPublication(), err
		}},
		{name: "retry a post being attempted now", wantCode: codes.FailedPrecondition, call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "a-fresh"})
			return r.GetPublication(), err
		}},
		{name: "retry a stale attempting post: reconciled, then posted", postID: "a-stale", wantState: ledger.StatePublished, wantAudit: "retry", call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "a-stale", Note: "stuck for two days"})
			return r.GetPublication(), err
		}},
		{name: "retry a post that is on X after all: found, not posted twice", postID: "u-on-x", wantState: ledger.StatePublished, wantAudit: "retry", call: func(ctx context.Context) (*publisherv1.Publication, error) {
			r, err := client.RetryPublication(ctx, &publisherv1.RetryPublicationRequest{PostId: "u-on-x", Note: "looked too early"})
			return r.GetPublication(), err
		}},
	}
	for _, tt := range tests {
		// One after another: they share one ledger and sandbox.
		t.Run(tt.name, func(t *testing.T) {
			token := adminToken
			if tt.token == "-" {
				token = ""
			}
			got, err := tt.call(as(token))
			if code := status.Code(err); code != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", code, err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				return
			}
			if got.GetState() != states[tt.wantState] {
				t.Errorf("state %v (%s), want %s", got.GetState(), got.GetError(), tt.wantState)
			}
			if s := e.announced.states(tt.postID); len(s) != 1 || s[0] != tt.wantState {
				t.Errorf("announced %v, want [%s]", s, tt.wantState)
			}
			full, err := client.GetPublication(ctx, &publisherv1.GetPublicationRequest{PostId: tt.postID})
			if err != nil {
				t.Fatal(err)
			}
			audit := full.GetAudit()
			if len(audit) != 1 || audit[0].GetActor() != "ops" || audit[0].GetAction() != tt.wantAudit || audit[0].GetNote() == "" || !audit[0].GetAt().IsValid() {
				t.Errorf("audit = %v, want one %s by ops with the note", audit, tt.wantAudit)
			}
		})
	}
	copies := 0
	for _, tw := range e.sandbox.Tweets() {
		if tw.Text == "Already on X" {
			copies++
		}
	}
	got, _ := e.store.Get(context.Background(), "u-on-x")
	if copies != 1 || got.RemoteID != onX.RemoteID {
		t.Errorf("retrying a post that was on X: %d copies, remote id %s want %s", copies, got.RemoteID, onX.RemoteID)
	}
	if got, _ := e.store.Get(context.Background(), "u-published"); got.URL != "https://x.com/i/web/status/1850000000000000999" {
		t.Errorf("resolved url = %q", got.URL)
	}
}

var states = map[ledger.State]publisherv1.PublicationState{
	ledger.StatePublished: publisherv1.PublicationState_PUBLICATION_STATE_PUBLISHED,
	ledger.StateFailed:    publisherv1.PublicationState_PUBLICATION_STATE_FAILED,
	ledger.StateUnknown:   publisherv1.PublicationState_PUBLICATION_STATE_UNKNOWN,
}
