package xapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

var creds = xapi.Credentials{ConsumerKey: "ck-sandbox", ConsumerSecret: "cs-secret", AccessToken: "at-sandbox", AccessTokenSecret: "ats-secret"}

func setup(t *testing.T) (*xsandbox.Sandbox, *httptest.Server) {
	t.Helper()
	sb, err := xsandbox.New(xsandbox.Config{
		ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		TweetsPerWindow: 3,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return sb, srv
}

func client(t *testing.T, base string, c xapi.Credentials) *xapi.Client {
	t.Helper()
	cl, err := xapi.New(base, c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func channelError(t *testing.T, err error) *ledger.ChannelError {
	t.Helper()
	var ce *ledger.ChannelError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ledger.ChannelError", err, err)
	}
	return ce
}

func TestPostSignsWithOAuth1AndReturnsTheTweet(t *testing.T) {
	sb, srv := setup(t)
	cl := client(t, srv.URL, creds)
	res, err := cl.Post(context.Background(), "Hello from HR 👋 https://example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	tweets := sb.Tweets()
	if len(tweets) != 1 || tweets[0].Text != "Hello from HR 👋 https://example.com" || tweets[0].ID != res.RemoteID {
		t.Fatalf("sandbox timeline = %+v, result %+v", tweets, res)
	}
	if tweets[0].ConsumerKey != creds.ConsumerKey || res.URL != "https://x.com/i/web/status/"+res.RemoteID {
		t.Errorf("tweet %+v, url %q", tweets[0], res.URL)
	}
	me, err := cl.Me(context.Background())
	if err != nil || me.Username != "contoso" {
		t.Errorf("Me = %+v, %v", me, err)
	}
}

func TestPostErrors(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(sb *xsandbox.Sandbox, cl *xapi.Client)
		creds    xapi.Credentials
		text     string
		wantKind ledger.ErrorKind
		wantMsg  string
		created  bool // the fault created the tweet before failing
	}{
		{name: "duplicate text", text: "same", prepare: func(_ *xsandbox.Sandbox, cl *xapi.Client) { _, _ = cl.Post(context.Background(), "same", nil) },
			wantKind: ledger.Duplicate, wantMsg: "X API 403: You are not allowed to create a Tweet with duplicate content."},
		{name: "wrong consumer secret", text: "a", creds: xapi.Credentials{ConsumerKey: creds.ConsumerKey, ConsumerSecret: "wrong", AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret},
			wantKind: ledger.Rejected, wantMsg: "X API 401: Unauthorized"},
		{name: "wrong consumer key", text: "a", creds: xapi.Credentials{ConsumerKey: "other", ConsumerSecret: creds.ConsumerSecret, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret},
			wantKind: ledger.Rejected, wantMsg: "X API 401: Unauthorized"},
		{name: "too long", text: strings.Repeat("a", 281), wantKind: ledger.Rejected, wantMsg: "X API 403: Your Tweet text is too long."},
		{name: "server error", text: "b", prepare: func(sb *xsandbox.Sandbox, _ *xapi.Client) { sb.InjectFault(xsandbox.Fault{Status: 503}) },
			wantKind: ledger.Ambiguous, wantMsg: "X API 503: Service Unavailable"},
		{name: "created then 500", text: "b", prepare: func(sb *xsandbox.Sandbox, _ *xapi.Client) {
			sb.InjectFault(xsandbox.Fault{Mode: xsandbox.ModeCreateThenStatus, Status: 500})
		}, wantKind: ledger.Ambiguous, wantMsg: "X API 500: Internal Server Error", created: true},
		{name: "created then dropped", text: "b", prepare: func(sb *xsandbox.Sandbox, _ *xapi.Client) {
			sb.InjectFault(xsandbox.Fault{Mode: xsandbox.ModeCreateThenDrop})
		}, wantKind: ledger.Ambiguous, wantMsg: "no answer from X", created: true},
		{name: "rate limited", text: "c", prepare: func(_ *xsandbox.Sandbox, cl *xapi.Client) {
			for _, s := range []string{"1", "2", "3"} {
				_, _ = cl.Post(context.Background(), s, nil)
			}
		}, wantKind: ledger.Retryable, wantMsg: "X API 429: Too Many Requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := setup(t)
			c := creds
			if tt.creds.ConsumerKey != "" {
				c = tt.creds
			}
			if tt.prepare != nil {
				tt.prepare(sb, client(t, srv.URL, creds))
			}
			before := len(sb.Tweets())
			_, err := client(t, srv.URL, c).Post(context.Background(), tt.text, nil)
			ce := channelError(t, err)
			if ce.Kind != tt.wantKind || !strings.HasPrefix(ce.Message, tt.wantMsg) {
				t.Errorf("error = kind %d %q; want kind %d %q", ce.Kind, ce.Message, tt.wantKind, tt.wantMsg)
			}
			if created := len(sb.Tweets()) != before; created != tt.created {
				t.Errorf("timeline changed: %v, want %v", created, tt.created)
			}
		})
	}
}

func TestRateLimitCarriesTheReset(t *testing.T) {
	sb, srv := setup(t)
	sb.InjectFault(xsandbox.Fault{Status: 429, RetryAfterSeconds: 90})
	_, err := client(t, srv.URL, creds).Post(context.Background(), "x", nil)
	ce := channelError(t, err)
	if ce.RetryAfter < 80*time.Second || ce.RetryAfter > 91*time.Second {
		t.Errorf("RetryAfter = %v, want about 90s from x-rate-limit-reset", ce.RetryAfter)
	}
}

func TestTransportFailures(t *testing.T) {
	// Nothing listens: the post certainly did not go out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = client(t, "http://"+addr, creds).Post(context.Background(), "x", nil)
	if ce := channelError(t, err); ce.Kind != ledger.Retryable {
		t.Errorf("connection refused: kind %d (%s), want Retryable", ce.Kind, ce.Message)
	}

	// The server takes the request and never answers: it may have posted.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	_, err = client(t, hang.URL, creds).Post(context.Background(), "x", nil)
	if ce := channelError(t, err); ce.Kind != ledger.Ambiguous {
		t.Errorf("timeout: kind %d (%s), want Ambiguous", ce.Kind, ce.Message)
	}
}

func TestRecentReadsTheTimelineAsXStoresIt(t *testing.T) {
	sb, srv := setup(t)
	cl := client(t, srv.URL, creds)
	ctx := context.Background()
	first, err := cl.Post(ctx, "Before", nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := "Jobs & more at https://example.com/jobs <3"
	res, err := cl.Post(ctx, sent, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []ledger.TimelineQuery{{SinceID: first.RemoteID}, {After: sb.Tweets()[1].CreatedAt.Add(-time.Second)}} {
		posts, err := cl.Recent(ctx, q)
		if err != nil {
			t.Fatalf("Recent(%+v): %v", q, err)
		}
		// start_time has second granularity, so "Before" may come too; since_id excludes it.
		if len(posts) == 0 || posts[0].ID != res.RemoteID || q.SinceID != "" && len(posts) != 1 {
			t.Fatalf("Recent(%+v) = %+v, want %s first", q, posts, res.RemoteID)
		}
		if posts[0].Text == sent || !strings.Contains(posts[0].Text, "https://t.co/") || !strings.Contains(posts[0].Text, "&amp;") {
			t.Errorf("timeline text %q is not as X stores it", posts[0].Text)
		}
		if !ledger.SameText(posts[0].Text, sent) {
			t.Errorf("SameText(%q, %q) = false", posts[0].Text, sent)
		}
	}
}

func TestSameText(t *testing.T) {
	tests := []struct {
		stored, sent string
		want         bool
	}{
		{"Hello", "Hello", true},
		{"See https://t.co/AbC123xyZ0.", "See https://example.com/a?b=1.", true},
		{"See https://t.co/AbC123xyZ0 now", "See example.com now", true},
		{"Fish &amp; chips &lt;3", "Fish & chips <3", true},
		{"Caf\u00e9", "Cafe\u0301", true}, // NFC
		{"  padded  ", "padded", true},
		{"Hello", "Hello!", false},
		{"See https://t.co/AbC123xyZ0", "See", false},
	}
	for _, tt := range tests {
		if got := ledger.SameText(tt.stored, tt.sent); got != tt.want {
			t.Errorf("SameText(%q, %q) = %v, want %v", tt.stored, tt.sent, got, tt.want)
		}
	}
}
