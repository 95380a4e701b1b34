// Package xapi is the publisher's channel to X: a small X API v2 client over net/http, with requests signed
// by OAuth 1.0a user context through github.com/dghubble/oauth1. Its base URL is configurable so that it
// can talk to the sandbox as well as to api.x.com.
package xapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dghubble/oauth1"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// DefaultBaseURL is the real X API.
const DefaultBaseURL = "https://api.x.com"

// Credentials are the app's consumer key and the account's access token, with their secrets.
type Credentials struct {
	ConsumerKey       string
	ConsumerSecret    string
	AccessToken       string
	AccessTokenSecret string
}

// Client posts to X for one account through the v2 API. Its calls to POST /2/tweets go through a
// per-account rate gate.
type Client struct {
	settings
	base string
	http *http.Client
	gate *gate

	mu sync.Mutex
	me User // the account, once known
}

var _ ledger.Channel = (*Client)(nil)

// settings are what Options set, for both clients.
type settings struct {
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	concurrency int
	maxWait     time.Duration
	window      WindowStore
	// chunk is the size of a media upload's APPEND segments; maxProcessing bounds the wait while X
	// processes an upload.
	chunk         int
	maxProcessing time.Duration
}

// WithChunkSize sets the size of media upload segments (default 1 MiB; X takes up to 5 MB), for tests.
func WithChunkSize(n int) Option {
	return func(s *settings) { s.chunk = max(n, 1) }
}

func newSettings(opts []Option) settings {
	s := settings{now: time.Now, sleep: sleep, concurrency: 2, maxWait: 30 * time.Second, chunk: 1 << 20, maxProcessing: 2 * time.Minute}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// Option configures a Client or a V1Client.
type Option func(*settings)

// WithClock replaces the clock and the wait of the rate gate, for tests.
func WithClock(now func() time.Time, sleep func(context.Context, time.Duration) error) Option {
	return func(s *settings) { s.now, s.sleep = now, sleep }
}

// WithConcurrency bounds how many posts are sent to X at once for the account (default 2, at most 4:
// X counts posts per account, and parallel posts only reach the window's end sooner).
func WithConcurrency(n int) Option {
	return func(s *settings) { s.concurrency = min(max(n, 1), 4) }
}

// WithMaxRateWait is how long a post waits in the gate for the rate-limit window to reset (default 30s);
// a longer wait is answered as Retryable with the time to the reset, so the approval comes back then.
func WithMaxRateWait(d time.Duration) Option {
	return func(s *settings) { s.maxWait = d }
}

// New returns a client for the API at baseURL. timeout bounds each request.
func New(baseURL string, c Credentials, timeout time.Duration, opts ...Option) (*Client, error) {
	if c.ConsumerKey == "" || c.ConsumerSecret == "" || c.AccessToken == "" || c.AccessTokenSecret == "" {
		return nil, errors.New("x: all four credentials are required")
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// oauth1 takes only the transport of a context client, so the timeout goes on the client it returns.
	ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})
	hc := oauth1.NewConfig(c.ConsumerKey, c.ConsumerSecret).Client(ctx, oauth1.NewToken(c.AccessToken, c.AccessTokenSecret))
	hc.Timeout = timeout
	cl := &Client{settings: newSettings(opts), base: strings.TrimRight(baseURL, "/"), http: hc}
	cl.gate = newGate(cl.settings)
	return cl, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Name implements ledger.Channel.
func (c *Client) Name() string { return "x" }

// URL implements ledger.Channel.
func (c *Client) URL(remoteID string) string { return statusURL(remoteID) }

// statusURL is a post's public address, whichever API made it.
func statusURL(remoteID string) string { return "https://x.com/i/web/status/" + remoteID }

// RateState is what X last said about the account's posting window.
func (c *Client) RateState() RateState { return c.gate.state() }

// Post implements ledger.Channel with POST /2/tweets, once the rate gate lets it through. The pictures
// are uploaded first (see upload), each time: a media id from an attempt that may have failed is never
// reused, and uploading again posts nothing.
func (c *Client) Post(ctx context.Context, text string, pics []ledger.Attachment) (ledger.Result, error) {
	var ids []string
	for i, a := range pics {
		id, err := c.upload(ctx, a)
		if err != nil {
			return ledger.Result{}, uploadError(i, err)
		}
		ids = append(ids, id)
	}
	done, err := c.gate.acquire(ctx)
	if err != nil {
		return ledger.Result{}, err
	}
	req := map[string]any{"text": text}
	if len(ids) > 0 {
		req["media"] = map[string][]string{"media_ids": ids}
	}
	body, _ := json.Marshal(req)
	var out struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	resp, err := c.do(ctx, http.MethodPost, "/2/tweets", nil, body, &out)
	done(resp)
	if err != nil {
		return ledger.Result{}, err
	}
	if out.Data.ID == "" {
		return ledger.Result{}, &ledger.ChannelError{Kind: ledger.Ambiguous, Message: "X accepted the post but returned no id"}
	}
	return ledger.Result{RemoteID: out.Data.ID, URL: c.URL(out.Data.ID)}, nil
}

// Recent implements ledger.Timeline with GET /2/users/{id}/tweets. X refuses since_id together with
// start_time, so it sends since_id when there is one and start_time otherwise, and drops posts created
// before q.After itself.
func (c *Client) Recent(ctx context.Context, q ledger.TimelineQuery) ([]ledger.RemotePost, error) {
	me, err := c.account(ctx)
	if err != nil {
		return nil, err
	}
	params := url.Values{"max_results": {"100"}, "tweet.fields": {"created_at"}}
	if q.SinceID != "" {
		params.Set("since_id", q.SinceID)
	} else if !q.After.IsZero() {
		params.Set("start_time", q.After.UTC().Format(time.RFC3339))
	}
	var posts []ledger.RemotePost
	// Ten pages of 100 are far more than one account posts between an attempt and its reconciliation.
	for range 10 {
		var page struct {
			Data []struct {
				ID        string    `json:"id"`
				Text      string    `json:"text"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"data"`
			Meta struct {
				NextToken string `json:"next_token"`
			} `json:"meta"`
		}
		if _, err := c.do(ctx, http.MethodGet, "/2/users/"+url.PathEscape(me.ID)+"/tweets", params, nil, &page); err != nil {
			return nil, fmt.Errorf("x: timeline: %w", err)
		}
		for _, t := range page.Data {
			if !t.CreatedAt.IsZero() && t.CreatedAt.Before(q.After) {
				continue
			}
			posts = append(posts, ledger.RemotePost{ID: t.ID, Text: t.Text, URL: c.URL(t.ID), CreatedAt: t.CreatedAt})
		}
		if page.Meta.NextToken == "" {
			return posts, nil
		}
		params.Set("pagination_token", page.Meta.NextToken)
	}
	return posts, nil
}

// account is the account the credentials act for, asked of X once.
func (c *Client) account(ctx context.Context) (User, error) {
	c.mu.Lock()
	me := c.me
	c.mu.Unlock()
	if me.ID != "" {
		return me, nil
	}
	return c.Me(ctx)
}

// User is an X account.
type User struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Username string `json:"username"`
}

// Me returns the account the credentials act for (GET /2/users/me); the publisher checks it at start.
func (c *Client) Me(ctx context.Context) (User, error) {
	var out struct {
		Data User `json:"data"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/2/users/me", nil, nil, &out); err != nil {
		return User{}, err
	}
	if out.Data.ID == "" {
		return User{}, errors.New("x: /2/users/me answered without an account id")
	}
	c.mu.Lock()
	c.me = out.Data
	c.mu.Unlock()
	return out.Data, nil
}

// do sends one request and decodes a 2xx answer into out. It returns the response (its body closed) when
// there was one, so that the rate gate can read its headers.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) (*http.Response, error) {
	return c.send(ctx, method, path, query, "application/json", body, out)
}

// send is do with a body of any content type (the media upload's multipart chunks). A nil out ignores the
// body of a 2xx answer (APPEND's, which says nothing Herald uses).
func (c *Client) send(ctx context.Context, method, path string, query url.Values, contentType string, body []byte, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &ledger.ChannelError{Kind: ledger.Rejected, Message: "x: " + err.Error()}
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent.
		return nil, &ledger.ChannelError{Kind: ledger.Retryable, Message: "not sent: " + err.Error()}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp, &ledger.ChannelError{Kind: ledger.Ambiguous, Message: fmt.Sprintf("X answered %d but the body was cut off: %v", resp.StatusCode, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return resp, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp, &ledger.ChannelError{Kind: ledger.Ambiguous, Message: fmt.Sprintf("X answered %d with an unreadable body", resp.StatusCode)}
		}
		return resp, nil
	}
	return resp, c.apiError(resp, data)
}

// apiError turns an X error response into a ChannelError with X's own explanation.
func (c *Client) apiError(resp *http.Response, data []byte) error {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(data, &p)
	msg := p.Detail
	if len(p.Errors) > 0 && p.Errors[0].Message != "" {
		msg = strings.TrimSuffix(msg+" "+p.Errors[0].Message, " ")
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	msg = fmt.Sprintf("X API %d: %s", resp.StatusCode, strings.TrimSpace(msg))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		// X refused the request before doing anything with it.
		return &ledger.ChannelError{Kind: ledger.Retryable, Message: msg, RetryAfter: c.untilReset(resp.Header.Get("x-rate-limit-reset"))}
	case resp.StatusCode >= 500:
		// A 5xx can come from a proxy or X's edge after the post was created behind it: nothing says it was
		// not, so the ledger reconciles before sending again.
		return &ledger.ChannelError{Kind: ledger.Ambiguous, Message: msg}
	case resp.StatusCode == http.StatusForbidden && strings.Contains(p.Detail, "duplicate content"):
		// {"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank",
		// "title":"Forbidden","status":403}: the account already has this text.
		return &ledger.ChannelError{Kind: ledger.Duplicate, Message: msg}
	default:
		// 400, 401 and the other 403s: X refused the request and created nothing.
		return &ledger.ChannelError{Kind: ledger.Rejected, Message: msg}
	}
}

func (s settings) untilReset(header string) time.Duration {
	reset, err := strconv.ParseInt(header, 10, 64)
	if err != nil {
		return time.Minute
	}
	return max(time.Unix(reset, 0).Sub(s.now()), time.Second)
}

// transportError classifies a failure to get an answer. Only a failure to connect proves that the post
// was not sent; anything later (a timeout while waiting) leaves the outcome unknown.
func transportError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &ledger.ChannelError{Kind: ledger.Retryable, Message: "cannot reach X: " + op.Err.Error()}
	}
	return &ledger.ChannelError{Kind: ledger.Ambiguous, Message: "no answer from X: " + err.Error()}
}
