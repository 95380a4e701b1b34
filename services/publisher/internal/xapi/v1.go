package xapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dghubble/go-twitter/twitter"
	"github.com/dghubble/oauth1"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// V1Client posts to X through the v1.1 API (statuses/update, account/verify_credentials,
// statuses/user_timeline) with github.com/dghubble/go-twitter, for enterprise accounts and v1.1-compatible
// services. go-twitter is deprecated upstream and v1.1-only, which is all it is used for here. X answers
// v1.1 posting from self-serve accounts with error 453; the channel says so plainly.
type V1Client struct {
	settings
	base    *url.URL
	signer  http.RoundTripper
	timeout time.Duration
	gate    *gate

	mu sync.Mutex
	me User
}

var _ ledger.Channel = (*V1Client)(nil)

// NewV1 returns a v1.1 client whose requests go to baseURL (X itself at https://api.x.com, a
// v1.1-compatible service or the sandbox) although go-twitter addresses them to api.twitter.com.
func NewV1(baseURL string, c Credentials, timeout time.Duration, opts ...Option) (*V1Client, error) {
	if c.ConsumerKey == "" || c.ConsumerSecret == "" || c.AccessToken == "" || c.AccessTokenSecret == "" {
		return nil, errors.New("x: all four credentials are required")
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("x: base url %q is not an absolute URL", baseURL)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})
	signer := oauth1.NewConfig(c.ConsumerKey, c.ConsumerSecret).Client(ctx, oauth1.NewToken(c.AccessToken, c.AccessTokenSecret)).Transport
	cl := &V1Client{settings: newSettings(opts), base: base, signer: signer, timeout: timeout}
	cl.gate = newGate(cl.settings)
	return cl, nil
}

// rewrite sends go-twitter's requests, which it addresses to the fixed https://api.twitter.com/1.1/, to
// the configured base instead, and gives them the caller's context (go-twitter takes none). It sits in
// front of the OAuth 1.0a signer, so the signature covers the URL the request actually goes to: the
// server that receives it (a v1.1-compatible service, the sandbox) verifies the signature against its own
// address, as X verifies it against api.twitter.com. Behind the signer, every signature would be over
// api.twitter.com and only a server pretending to be it could check them.
type rewrite struct {
	ctx  context.Context
	base *url.URL
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(r.ctx)
	out.URL.Scheme, out.URL.Host = r.base.Scheme, r.base.Host
	out.URL.Path = r.base.Path + req.URL.Path
	out.URL.RawPath = ""
	out.Host = ""
	return r.next.RoundTrip(out)
}

func (c *V1Client) api(ctx context.Context) *twitter.Client {
	return twitter.NewClient(&http.Client{Transport: rewrite{ctx: ctx, base: c.base, next: c.signer}, Timeout: c.timeout})
}

// Name implements ledger.Channel: the same network as the v2 client, so the ledger's entries and events
// do not depend on the API used.
func (c *V1Client) Name() string { return "x" }

// URL implements ledger.Channel.
func (c *V1Client) URL(remoteID string) string { return statusURL(remoteID) }

// RateState is what X last said about the account's posting window.
func (c *V1Client) RateState() RateState { return c.gate.state() }

// Post implements ledger.Channel with POST statuses/update. Pictures are not uploaded through v1.1 yet
// (upload.twitter.com's INIT/APPEND/FINALIZE): a post with pictures is refused, before anything is sent,
// rather than published without them.
func (c *V1Client) Post(ctx context.Context, text string, pics []ledger.Attachment) (ledger.Result, error) {
	if len(pics) > 0 {
		return ledger.Result{}, &ledger.ChannelError{Kind: ledger.Rejected, Message: "the X v1.1 channel does not post pictures; use the v2 channel"}
	}
	done, err := c.gate.acquire(ctx)
	if err != nil {
		return ledger.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		done(nil)
		return ledger.Result{}, &ledger.ChannelError{Kind: ledger.Retryable, Message: "not sent: " + err.Error()}
	}
	tw, resp, err := c.api(ctx).Statuses.Update(text, nil)
	done(resp)
	if err != nil {
		return ledger.Result{}, c.v1Error(resp, err)
	}
	if tw.IDStr == "" {
		return ledger.Result{}, &ledger.ChannelError{Kind: ledger.Ambiguous, Message: "X accepted the post but returned no id"}
	}
	return ledger.Result{RemoteID: tw.IDStr, URL: c.URL(tw.IDStr)}, nil
}

// Me returns the account the credentials act for (GET account/verify_credentials).
func (c *V1Client) Me(ctx context.Context) (User, error) {
	u, resp, err := c.api(ctx).Accounts.VerifyCredentials(&twitter.AccountVerifyParams{SkipStatus: twitter.Bool(true)})
	if err != nil {
		return User{}, c.v1Error(resp, err)
	}
	if u.IDStr == "" {
		return User{}, errors.New("x: verify_credentials answered without an account id")
	}
	me := User{ID: u.IDStr, Name: u.Name, Username: u.ScreenName}
	c.mu.Lock()
	c.me = me
	c.mu.Unlock()
	return me, nil
}

// Recent implements ledger.Timeline with GET statuses/user_timeline (tweet_mode=extended for the full
// text), from q.SinceID, paging back with max_id until posts are older than q.After.
func (c *V1Client) Recent(ctx context.Context, q ledger.TimelineQuery) ([]ledger.RemotePost, error) {
	c.mu.Lock()
	me := c.me
	c.mu.Unlock()
	if me.ID == "" {
		var err error
		if me, err = c.Me(ctx); err != nil {
			return nil, err
		}
	}
	uid, err := strconv.ParseInt(me.ID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("x: account id %q: %w", me.ID, err)
	}
	params := &twitter.UserTimelineParams{UserID: uid, Count: 200, TrimUser: twitter.Bool(true), IncludeRetweets: twitter.Bool(false), TweetMode: "extended"}
	if q.SinceID != "" {
		if params.SinceID, err = strconv.ParseInt(q.SinceID, 10, 64); err != nil {
			return nil, fmt.Errorf("x: since_id %q: %w", q.SinceID, err)
		}
	}
	var posts []ledger.RemotePost
	for range 5 {
		tweets, resp, err := c.api(ctx).Timelines.UserTimeline(params)
		if err != nil {
			return nil, fmt.Errorf("x: user_timeline: %w", c.v1Error(resp, err))
		}
		older := false
		for _, t := range tweets {
			created, _ := t.CreatedAtTime()
			if created.Before(q.After) {
				older = true
				continue
			}
			text := t.FullText
			if text == "" {
				text = t.Text
			}
			posts = append(posts, ledger.RemotePost{ID: t.IDStr, Text: text, URL: c.URL(t.IDStr), CreatedAt: created})
			params.MaxID = t.ID - 1
		}
		if older || len(tweets) < params.Count {
			break
		}
	}
	return posts, nil
}

// The v1.1 error codes the channel tells apart.
const (
	v1RateLimited = 88
	v1Duplicate   = 187
	v1SelfServe   = 453
)

// v1Error classifies a v1.1 failure like apiError does for v2, from the HTTP status and X's error code.
func (c *V1Client) v1Error(resp *http.Response, err error) error {
	if resp == nil {
		return transportError(err)
	}
	var apiErr twitter.APIError
	code, detail := 0, http.StatusText(resp.StatusCode)
	if errors.As(err, &apiErr) && !apiErr.Empty() {
		code, detail = apiErr.Errors[0].Code, apiErr.Errors[0].Message
	}
	msg := fmt.Sprintf("X API v1.1 %d: %s", resp.StatusCode, detail)
	if code != 0 {
		msg = fmt.Sprintf("X API v1.1 %d: %s (code %d)", resp.StatusCode, detail, code)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || code == v1RateLimited:
		return &ledger.ChannelError{Kind: ledger.Retryable, Message: msg, RetryAfter: c.untilReset(resp.Header.Get("x-rate-limit-reset"))}
	case code == v1Duplicate:
		return &ledger.ChannelError{Kind: ledger.Duplicate, Message: msg}
	case code == v1SelfServe:
		return &ledger.ChannelError{Kind: ledger.Rejected, Message: "X does not let this account post through API v1.1 (error 453: self-serve access levels only have v2); set HERALD_X_CHANNEL=v2. " + msg}
	case resp.StatusCode >= 500:
		return &ledger.ChannelError{Kind: ledger.Ambiguous, Message: msg}
	default:
		return &ledger.ChannelError{Kind: ledger.Rejected, Message: msg}
	}
}
