package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// client is what a department's flow and an approver's browser do, over the gateway's public API.
type client struct {
	http    *http.Client
	baseURL string
	apiKey  string
	runID   string
}

func newClient(baseURL, apiKey, runID string, conns int) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &client{http: &http.Client{Transport: tr, Timeout: 15 * time.Second}, baseURL: baseURL, apiKey: apiKey, runID: runID}
}

// tweet is request n's text: the run and the number make it unique, so that the sandbox's timeline and
// the emails can be traced back to the request.
func (c *client) tweet(n int) string {
	return fmt.Sprintf("Chaos run %s, post #%d: the quarterly newsletter is out.", c.runID, n)
}

var requestNumber = regexp.MustCompile(`Chaos run ([0-9a-f]+), post #(\d+):`)

// numberIn finds the request number of this run in text, or -1.
func (c *client) numberIn(text string) int {
	for _, m := range requestNumber.FindAllStringSubmatch(text, -1) {
		if m[1] == c.runID {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	return -1
}

// outcome is one attempt's result.
type outcome struct {
	status int
	id     string
	err    error
}

// post sends request n once, with an Idempotency-Key, so that a retry after a lost answer yields the
// same post.
func (c *client) post(ctx context.Context, n int) outcome {
	body, _ := json.Marshal(map[string]string{"tweet": c.tweet(n), "requestedby": "chaos@example.com"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/v1/posts", bytes.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("chaos-%s-%d", c.runID, n))
	resp, err := c.http.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" {
			return outcome{status: resp.StatusCode, err: fmt.Errorf("202 without an id: %.200s", raw)}
		}
	}
	return outcome{status: resp.StatusCode, id: out.ID}
}

// postStatus is what GET /v1/posts/{id} says.
type postStatus struct {
	http   int
	status string
}

func (c *client) status(ctx context.Context, id string) (postStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/v1/posts/"+url.PathEscape(id), nil)
	if err != nil {
		return postStatus{}, err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return postStatus{}, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(raw, &out)
	return postStatus{http: resp.StatusCode, status: out.Status}, nil
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	linkIn    = regexp.MustCompile(`https?://\S+/approvals/[A-Za-z0-9_-]+`)
)

// decision is what approving through a link came to.
type decision int

const (
	decisionRetry   decision = iota // the gateway or the approval service did not answer: try again
	decisionDone                    // this POST approved
	decisionAlready                 // the page has no form any more: decided (by an earlier attempt whose answer was lost)
)

// approve does what an approver's browser does with the emailed link: GET the page, POST its form
// with the CSRF token, from the page's own origin.
func (c *client) approve(ctx context.Context, link string) (decision, error) {
	u, err := url.Parse(link)
	if err != nil {
		return decisionAlready, fmt.Errorf("link %q: %w", link, err)
	}
	// The link names the public URL, which is the balancer: the harness follows it as it is.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return decisionAlready, err
	}
	req.Header.Set("Sec-Fetch-Site", "none")
	resp, err := c.http.Do(req)
	if err != nil {
		return decisionRetry, err
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return decisionRetry, fmt.Errorf("GET approval page: %d", resp.StatusCode)
	}
	m := csrfField.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		return decisionAlready, nil
	}
	form := url.Values{"csrf": {string(m[1])}, "decision": {"approve"}, "comment": {"chaos run"}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader(form.Encode()))
	if err != nil {
		return decisionAlready, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = c.http.Do(req)
	if err != nil {
		return decisionRetry, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode < 400:
		return decisionDone, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return decisionRetry, fmt.Errorf("POST approval: %d", resp.StatusCode)
	default:
		// 409 and friends: decided meanwhile. The final status check says whether it really was.
		return decisionAlready, nil
	}
}

// lockedWriter serialises writes from several processes' output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withParam adds a query parameter to a database URL.
func withParam(raw, key, value string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
