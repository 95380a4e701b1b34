package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// decideResult is decision to post on one database: from the approver's POST to the sandbox's receipt
// of the tweet (the sandbox runs in this process, so its timestamps share this clock).
type decideResult struct {
	Database string `json:"database"`
	Posts    int    `json:"posts"`
	Clients  int    `json:"clients"`
	Posted   int    `json:"posted"`
	// Rounds is how many fresh Heralds the posts went through (see sandboxWindow).
	Rounds int     `json:"rounds"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	// DecideP50ms is the approval POST's own answer time: what the approver waits for.
	DecideP50ms float64 `json:"decide_post_p50_ms"`
}

var (
	linkPattern = regexp.MustCompile(`http://\S+/approvals/[A-Za-z0-9_-]+`)
	csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// sandboxWindow is how many tweets the X sandbox accepts per 15-minute window (its default, which the
// local stack keeps): like X, it answers 429 after that, and the publisher rightly waits for the reset.
// Decision to post is therefore measured in rounds of at most this many posts, each on a fresh Herald.
const sandboxWindow = 100

// benchDecide requests o.decidePosts posts, waits for their approval emails, approves each through its
// page with o.decideClients approvers at once, and times each tweet's arrival in the sandbox.
func benchDecide(ctx context.Context, o options, db string) (decideResult, error) {
	res := decideResult{Database: db, Posts: o.decidePosts, Clients: o.decideClients}
	var lat, answer []time.Duration
	for done := 0; done < o.decidePosts; done += sandboxWindow {
		l, a, err := decideRound(ctx, o, db, min(sandboxWindow, o.decidePosts-done))
		if err != nil {
			return res, err
		}
		lat, answer = append(lat, l...), append(answer, a...)
		res.Rounds++
	}
	slices.Sort(lat)
	slices.Sort(answer)
	res.Posted = len(lat)
	res.P50ms, res.P99ms, res.MaxMs = ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), ms(quantile(lat, 1))
	res.DecideP50ms = ms(quantile(answer, 0.5))
	fmt.Printf("  decide on %s: %d posted in %d rounds, p50 %.1f ms, p99 %.1f ms (approval POST answered in %.1f ms p50)\n",
		db, res.Posted, res.Rounds, res.P50ms, res.P99ms, res.DecideP50ms)
	return res, nil
}

// decideRound measures n posts on a fresh Herald: each one's decision to post, and the approval POST's
// answer time.
func decideRound(ctx context.Context, o options, db string, n int) ([]time.Duration, []time.Duration, error) {
	h, err := startHeraldOn(ctx, o, db)
	if err != nil {
		return nil, nil, err
	}
	defer h.close()
	client := newClient(16)
	tag := randomSuffix()
	load := runLoad(ctx, 16, time.Minute, int64(n), postTo(client, h.st.Info.GatewayURL+"/v1/posts", h.st.Info.DemoAPIKey, tag))
	if load.Accepted != n {
		return nil, nil, fmt.Errorf("%d of %d posts accepted: %v %s", load.Accepted, n, load.Statuses, load.FirstError)
	}
	if err := waitFor(ctx, o.drainTimeout, "the approval emails", func() (bool, error) {
		m, err := h.mailCount()
		return m >= n, err
	}); err != nil {
		return nil, nil, err
	}
	links, err := approvalLinks(ctx, client, h.st.Info.MailboxURL, tag)
	if err != nil {
		return nil, nil, err
	}
	if len(links) != n {
		return nil, nil, fmt.Errorf("found %d approval links for %d posts", len(links), n)
	}

	// Approve: the page first (for its form token), then the clock starts and the decision is posted.
	var mu sync.Mutex
	sentAt := map[int64]time.Time{}
	var answer []time.Duration
	var firstErr error
	work := make(chan int64)
	var wg sync.WaitGroup
	for range o.decideClients {
		wg.Go(func() {
			for seq := range work {
				t0, took, err := approve(ctx, client, links[seq])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				sentAt[seq] = t0
				answer = append(answer, took)
				mu.Unlock()
			}
		})
	}
	for seq := range links {
		work <- seq
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, nil, firstErr
	}

	var tweets []struct {
		Text      string    `json:"text"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := waitFor(ctx, o.drainTimeout, "the tweets", func() (bool, error) {
		if err := getJSON(ctx, client, h.st.Info.SandboxURL+"/_sandbox/tweets", &tweets); err != nil {
			return false, err
		}
		return len(tweets) >= n, nil
	}); err != nil {
		return nil, nil, err
	}
	var lat []time.Duration
	for _, t := range tweets {
		seq, ok := seqOf(t.Text, tag)
		if !ok || sentAt[seq].IsZero() {
			continue
		}
		lat = append(lat, t.CreatedAt.Sub(sentAt[seq]))
	}
	return lat, answer, nil
}

// approvalLinks reads the mailbox once and returns each post's approval link by its tweet's number.
func approvalLinks(ctx context.Context, client *http.Client, mailboxURL, tag string) (map[int64]string, error) {
	var msgs []struct {
		Text string `json:"text"`
	}
	if err := getJSON(ctx, client, mailboxURL+"/api/messages", &msgs); err != nil {
		return nil, err
	}
	links := map[int64]string{}
	for _, m := range msgs {
		seq, ok := seqOf(m.Text, tag)
		if link := linkPattern.FindString(m.Text); ok && link != "" {
			links[seq] = link
		}
	}
	return links, nil
}

// seqOf finds the number tweet gave a text of this run.
func seqOf(text, tag string) (int64, bool) {
	marker := "Herald load test " + tag + " #"
	i := strings.Index(text, marker)
	if i < 0 || len(text) < i+len(marker)+9 {
		return 0, false
	}
	n, err := strconv.ParseInt(text[i+len(marker):i+len(marker)+9], 10, 64)
	return n, err == nil
}

// approve opens the approval page and approves; it returns when the decision was sent and how long its
// answer took.
func approve(ctx context.Context, client *http.Client, link string) (time.Time, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return time.Time{}, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("approval page: %w", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfPattern.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		return time.Time{}, 0, fmt.Errorf("approval page: %d, no form", resp.StatusCode)
	}
	form := url.Values{"csrf": {string(m[1])}, "decision": {"approve"}, "comment": {"bench"}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader(form.Encode()))
	if err != nil {
		return time.Time{}, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	t0 := time.Now()
	resp, err = client.Do(req)
	if err != nil {
		return t0, 0, fmt.Errorf("approve: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		return t0, took, fmt.Errorf("approve: status %d", resp.StatusCode)
	}
	return t0, took, nil
}

func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	return nil
}

// waitFor polls done every 100 ms until it reports true, fails, or limit passes.
func waitFor(ctx context.Context, limit time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := done()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: still not there after %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
