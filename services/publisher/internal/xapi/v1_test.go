package xapi_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

func v1Setup(t *testing.T, cfg xsandbox.Config, c xapi.Credentials) (*xsandbox.Sandbox, *xapi.V1Client) {
	t.Helper()
	cfg.ConsumerKey, cfg.ConsumerSecret, cfg.AccessToken, cfg.AccessTokenSecret = creds.ConsumerKey, creds.ConsumerSecret, creds.AccessToken, creds.AccessTokenSecret
	sb, err := xsandbox.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	cl, err := xapi.NewV1(srv.URL, c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return sb, cl
}

// TestV1PostsThroughGoTwitterToTheSandbox shows the transport at work: go-twitter addresses
// api.twitter.com, the request reaches the sandbox, and the sandbox verifies the signature (form
// parameters included) over its own URL.
func TestV1PostsThroughGoTwitterToTheSandbox(t *testing.T) {
	t.Parallel()
	sb, cl := v1Setup(t, xsandbox.Config{}, creds)
	ctx := context.Background()
	me, err := cl.Me(ctx)
	if err != nil || me.Username != "contoso" || me.ID != "1850000000000000001" {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	sent := "Hello from v1.1 & friends https://example.com/a"
	res, err := cl.Post(ctx, sent, nil)
	if err != nil {
		t.Fatal(err)
	}
	tweets := sb.Tweets()
	if len(tweets) != 1 || tweets[0].ID != res.RemoteID || tweets[0].Text != sent || tweets[0].ConsumerKey != creds.ConsumerKey {
		t.Fatalf("sandbox = %+v, result %+v", tweets, res)
	}
	posts, err := cl.Recent(ctx, ledger.TimelineQuery{After: tweets[0].CreatedAt.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(posts) != 1 || posts[0].ID != res.RemoteID || !ledger.SameText(posts[0].Text, sent) || posts[0].Text == sent {
		t.Errorf("Recent = %+v; want the post as X stores it", posts)
	}
	if rs := cl.RateState(); rs.Limit != 100 || rs.Remaining != 99 {
		t.Errorf("rate state after one post = %+v", rs)
	}
}

func TestV1Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      xsandbox.Config
		creds    xapi.Credentials
		prepare  func(sb *xsandbox.Sandbox, cl *xapi.V1Client)
		wantKind ledger.ErrorKind
		wantMsg  string
	}{
		{name: "self-serve account: error 453 said plainly", cfg: xsandbox.Config{SelfServe: true},
			wantKind: ledger.Rejected, wantMsg: "X does not let this account post through API v1.1 (error 453"},
		{name: "duplicate: code 187", prepare: func(_ *xsandbox.Sandbox, cl *xapi.V1Client) { _, _ = cl.Post(context.Background(), "same", nil) },
			wantKind: ledger.Duplicate, wantMsg: "X API v1.1 403: Status is a duplicate. (code 187)"},
		{name: "wrong secret: code 32", creds: xapi.Credentials{ConsumerKey: creds.ConsumerKey, ConsumerSecret: "wrong", AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret},
			wantKind: ledger.Rejected, wantMsg: "X API v1.1 401: Could not authenticate you. (code 32)"},
		{name: "503 over capacity: ambiguous", prepare: func(sb *xsandbox.Sandbox, _ *xapi.V1Client) { sb.InjectFault(xsandbox.Fault{Status: 503}) },
			wantKind: ledger.Ambiguous, wantMsg: "X API v1.1 503: Over capacity (code 130)"},
		{name: "created then dropped: ambiguous", prepare: func(sb *xsandbox.Sandbox, _ *xapi.V1Client) {
			sb.InjectFault(xsandbox.Fault{Mode: xsandbox.ModeCreateThenDrop})
		}, wantKind: ledger.Ambiguous, wantMsg: "no answer from X"},
		{name: "429: code 88, retryable", prepare: func(sb *xsandbox.Sandbox, _ *xapi.V1Client) {
			sb.InjectFault(xsandbox.Fault{Status: 429, RetryAfterSeconds: 60})
		}, wantKind: ledger.Retryable, wantMsg: "X API v1.1 429: Rate limit exceeded (code 88)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := creds
			if tt.creds.ConsumerKey != "" {
				c = tt.creds
			}
			sb, cl := v1Setup(t, tt.cfg, c)
			if tt.prepare != nil {
				tt.prepare(sb, cl)
			}
			_, err := cl.Post(context.Background(), "a", nil)
			if tt.name == "duplicate: code 187" {
				_, err = cl.Post(context.Background(), "same", nil)
			}
			ce := channelError(t, err)
			if ce.Kind != tt.wantKind || !strings.HasPrefix(ce.Message, tt.wantMsg) {
				t.Errorf("error = kind %d %q; want kind %d %q", ce.Kind, ce.Message, tt.wantKind, tt.wantMsg)
			}
		})
	}
}
