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
	"strconv"
	"strings"
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

// Client posts to X.
type Client struct {
	base string
	http *http.Client
	now  func() time.Time
}

var _ ledger.Channel = (*Client)(nil)

// New returns a client for the API at baseURL. timeout bounds each request.
func New(baseURL string, c Credentials, timeout time.Duration) (*Client, error) {
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
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc, now: time.Now}, nil
}

// Name implements ledger.Channel.
func (c *Client) Name() string { return "x" }

// Post implements ledger.Channel with POST /2/tweets.
func (c *Client) Post(ctx context.Context, text string) (ledger.Result, error) {
	body, _ := json.Marshal(map[string]string{"text": text})
	var out struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := c.do(ctx, http.MethodPost, "/2/tweets", body, &out); err != nil {
		return ledger.Result{}, err
	}
	if out.Data.ID == "" {
		return ledger.Result{}, &ledger.ChannelError{Kind: ledger.Ambiguous, Message: "X accepted the post but returned no id"}
	}
	return ledger.Result{RemoteID: out.Data.ID, URL: "https://x.com/i/web/status/" + out.Data.ID}, nil
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
	if err := c.do(ctx, http.MethodGet, "/2/users/me", nil, &out); err != nil {
		return User{}, err
	}
	return out.Data, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("x: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &ledger.ChannelError{Kind: ledger.Ambiguous, Message: fmt.Sprintf("X answered %d but the body was cut off: %v", resp.StatusCode, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return &ledger.ChannelError{Kind: ledger.Ambiguous, Message: fmt.Sprintf("X answered %d with an unreadable body", resp.StatusCode)}
		}
		return nil
	}
	return c.apiError(resp, data)
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
		return &ledger.ChannelError{Kind: ledger.Retryable, Message: msg, RetryAfter: c.untilReset(resp.Header.Get("x-rate-limit-reset"))}
	case resp.StatusCode >= 500:
		// X's 5xx answers come from its edge before the post is created; retrying is what X advises.
		return &ledger.ChannelError{Kind: ledger.Retryable, Message: msg}
	default:
		return &ledger.ChannelError{Kind: ledger.Rejected, Message: msg}
	}
}

func (c *Client) untilReset(header string) time.Duration {
	reset, err := strconv.ParseInt(header, 10, 64)
	if err != nil {
		return time.Minute
	}
	return max(time.Until(time.Unix(reset, 0)), time.Second)
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
