// Package e2e drives a whole Herald, started as deploy/local starts it but on free ports, through its
// public surfaces only: the connector API, the mailbox, the approval pages, the X sandbox and gRPC.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/heraldhq/herald/deploy/stack"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// logs keeps everything the stack logged, so that tests can check what never appears in it.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func start(t testing.TB) *stack.Stack {
	st, _, _ := startWithLogs(t)
	return st
}

// startWithLogs starts Herald on free ports and returns it with what it logs and its data directory.
func startWithLogs(t testing.TB) (*stack.Stack, *logs, string) {
	return startWithEnv(t, nil)
}

// startWithEnv is startWithLogs with more variables set (or the defaults' replaced).
func startWithEnv(t testing.TB, extra map[string]string) (*stack.Stack, *logs, string) {
	t.Helper()
	dataDir := t.TempDir()
	env := map[string]string{
		"HERALD_DATA_DIR": dataDir, "HERALD_GATEWAY_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_GRPC_ADDR": "127.0.0.1:0",
		"HERALD_PUBLISHER_GRPC_ADDR": "127.0.0.1:0", "HERALD_APPROVAL_HTTP_ADDR": "127.0.0.1:0", "HERALD_PUBLISHER_HTTP_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_SMTP_ADDR": "127.0.0.1:0", "HERALD_LOCAL_MAILBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_SANDBOX_ADDR": "127.0.0.1:0", "HERALD_LOCAL_TEAMS_ADDR": "127.0.0.1:0",
		"HERALD_LOCAL_NATS_ADDR": "127.0.0.1:0", "HERALD_CONSUMER_PREFIX": "e2e",
	}
	maps.Copy(env, extra)
	// The same parsing as deploy/local, from a fixed environment rather than the test process's.
	cfg, err := stack.ParseConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	captured := &logs{}
	var out io.Writer = captured
	if testing.Verbose() {
		out = io.MultiWriter(captured, &testWriter{t})
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := stack.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start herald: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("stop herald: %v", err)
		}
		// After the test's traffic, so the mail, the sandbox's timeline and the WAL files exist.
		checkPrivate(t, dataDir)
	})
	return st, captured, dataDir
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return m
}

func do(t *testing.T, method, u string, body io.Reader, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func postJSON(t *testing.T, st *stack.Stack, key, body string) response {
	return do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(body), map[string]string{"X-API-Key": key, "Content-Type": "application/json"})
}

// eventually polls fn until it returns true or the deadline passes.
func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type mail struct {
	To   []string `json:"to"`
	Text string   `json:"text"`
}

var linkPattern = regexp.MustCompile(`http://\S+/approvals/[A-Za-z0-9_-]+`)

// approvalLink waits for the approval email about text and returns the link in it.
func approvalLink(t *testing.T, st *stack.Stack, text string) string {
	t.Helper()
	var link string
	eventually(t, "the approval email", func() bool {
		var msgs []mail
		r := do(t, "GET", st.Info.MailboxURL+"/api/messages", nil, nil)
		if err := json.Unmarshal(r.body, &msgs); err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if strings.Contains(m.Text, text) {
				if len(m.To) != 1 || m.To[0] != stack.DemoApprover {
					t.Fatalf("approval email went to %v, want %s", m.To, stack.DemoApprover)
				}
				link = linkPattern.FindString(m.Text)
				return link != ""
			}
		}
		return false
	})
	return link
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func decide(t *testing.T, link, decision, comment string) response {
	t.Helper()
	page := do(t, "GET", link, nil, nil)
	m := csrfPattern.FindSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		t.Fatalf("approval page: %d, no form:\n%s", page.status, page.body)
	}
	form := url.Values{"csrf": {string(m[1])}, "decision": {decision}, "comment": {comment}}
	return do(t, "POST", link, strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

type sandboxTweet struct {
	Media           []string `json:"media"`
	ID              string   `json:"id"`
	Text            string   `json:"text"`
	ConsumerKey     string   `json:"consumer_key"`
	SignatureMethod string   `json:"signature_method"`
}

func tweetsWithText(t *testing.T, st *stack.Stack, text string) []sandboxTweet {
	t.Helper()
	var all, out []sandboxTweet
	if err := json.Unmarshal(do(t, "GET", st.Info.SandboxURL+"/_sandbox/tweets", nil, nil).body, &all); err != nil {
		t.Fatal(err)
	}
	for _, tw := range all {
		if tw.Text == text {
			out = append(out, tw)
		}
	}
	return out
}

// pollFinal polls the post's status until it stops answering 202 and returns the final answer.
func pollFinal(t *testing.T, st *stack.Stack, key, location string) response {
	t.Helper()
	var r response
	eventually(t, "a final status for "+location, func() bool {
		// Location is absolute (HERALD_PUBLIC_URL, the gateway's URL locally), as Logic Apps requires.
		r = do(t, "GET", location, nil, map[string]string{"X-API-Key": key})
		if r.status == http.StatusAccepted {
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("202 without Retry-After")
			}
			return false
		}
		return true
	})
	return r
}

func TestApproveRejectAndBadInput(t *testing.T) {
	st, logged, dataDir := startWithLogs(t)
	key := st.Info.DemoAPIKey
	var links []string
	t.Cleanup(func() {
		// Secrets are used, never logged: the department's key, the approval links' tokens, and every
		// credential the local stack generated (admin and gateway tokens, CSRF key, X secrets).
		text := logged.String()
		secrets := append([]string{key}, links...)
		var generated map[string]any
		raw, err := os.ReadFile(filepath.Join(dataDir, "secrets.json"))
		if err != nil || json.Unmarshal(raw, &generated) != nil {
			t.Fatalf("read the stack's secrets: %v", err)
		}
		for _, name := range []string{"admin_token", "gateway_token", "csrf_key", "x_consumer_secret", "x_access_token_secret"} {
			v, _ := generated[name].(string)
			if v == "" {
				t.Fatalf("secrets.json has no %s", name)
			}
			secrets = append(secrets, v)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s[strings.LastIndex(s, "/")+1:]) {
				t.Errorf("a secret appears in the logs: %.12s…", s[strings.LastIndex(s, "/")+1:])
			}
		}
		if !strings.Contains(text, "post requested") {
			t.Errorf("the log capture saw nothing; the check above proves nothing")
		}
		// A department's request id leads from the gateway into the approval service's handling.
		if !regexp.MustCompile(`service=approval .*request_id=flow-run-7`).MatchString(text) {
			t.Errorf("the approval service's logs do not carry the request id the department sent")
		}
	})

	t.Run("a post with a picture shows it to the approver and posts it", func(t *testing.T) {
		text := fmt.Sprintf("Our new office, pictured %d", time.Now().UnixNano())
		var img bytes.Buffer
		pic := image.NewRGBA(image.Rect(0, 0, 8, 8))
		pic.Set(3, 3, color.RGBA{R: 200, A: 255})
		if err := png.Encode(&img, pic); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"tweet": text, "requestedby": "jo@contoso.example",
			"media": []map[string]string{{"$content-type": "image/png", "$content": base64.StdEncoding.EncodeToString(img.Bytes())}}})
		r := postJSON(t, st, key, string(body))
		if r.status != http.StatusAccepted {
			t.Fatalf("POST /v1/posts with a picture = %d %s", r.status, r.body)
		}
		link := approvalLink(t, st, text)
		// The email carries the picture.
		var msgs []struct {
			Text        string `json:"text"`
			Attachments []struct {
				ContentType string `json:"content_type"`
				Size        int    `json:"size"`
			} `json:"attachments"`
		}
		_ = json.Unmarshal(do(t, "GET", st.Info.MailboxURL+"/api/messages", nil, nil).body, &msgs)
		attached := false
		for _, m := range msgs {
			if strings.Contains(m.Text, text) && len(m.Attachments) == 1 && m.Attachments[0].ContentType == "image/png" && m.Attachments[0].Size == img.Len() {
				attached = true
			}
		}
		if !attached {
			t.Error("the approval email does not carry the picture")
		}
		// The page shows it from the gateway itself.
		page := do(t, "GET", link, nil, nil)
		if !bytes.Contains(page.body, []byte(`<img src="/approvals/`)) {
			t.Fatalf("the approval page shows no picture:\n%s", page.body)
		}
		shown := do(t, "GET", link+"/media/0", nil, nil)
		if shown.status != http.StatusOK || !bytes.Equal(shown.body, img.Bytes()) || shown.header.Get("Content-Type") != "image/png" || shown.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("the page's picture: %d %v", shown.status, shown.header)
		}
		if d := decide(t, link, "approve", ""); d.status != http.StatusOK {
			t.Fatalf("approve: %d\n%s", d.status, d.body)
		}
		if final := pollFinal(t, st, key, r.header.Get("Location")); final.json(t)["status"] != "published" {
			t.Fatalf("final status %s, want published", final.body)
		}
		tweets := tweetsWithText(t, st, text)
		if len(tweets) != 1 || len(tweets[0].Media) != 1 {
			t.Fatalf("sandbox tweets with the text: %+v, want one with one picture", tweets)
		}
		posted := do(t, "GET", st.Info.SandboxURL+"/_sandbox/media/"+tweets[0].Media[0], nil, nil)
		if !bytes.Equal(posted.body, img.Bytes()) {
			t.Error("the sandbox holds other bytes than the picture the department sent")
		}
		if page := do(t, "GET", st.Info.SandboxURL+"/", nil, nil); !bytes.Contains(page.body, []byte(`src="/_sandbox/media/`+tweets[0].Media[0]+`"`)) {
			t.Error("the sandbox timeline page does not show the picture")
		}
	})

	t.Run("approve publishes exactly once", func(t *testing.T) {
		text := fmt.Sprintf("Please welcome our new joiners in HR! %d", time.Now().UnixNano())
		r := postJSON(t, st, key, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo@contoso.example"}`, text))
		if r.status != http.StatusAccepted {
			t.Fatalf("POST /v1/posts = %d %s", r.status, r.body)
		}
		body := r.json(t)
		id, _ := body["id"].(string)
		if body["status"] != "pending" || id == "" || r.header.Get("Location") != st.Info.GatewayURL+"/v1/posts/"+id || r.header.Get("Retry-After") == "" {
			t.Fatalf("202 answer: headers %v body %s", r.header, r.body)
		}
		// Polled at once, before the approval service may have recorded it, the post is pending, not missing.
		if s := do(t, "GET", st.Info.GatewayURL+"/v1/posts/"+id, nil, map[string]string{"X-API-Key": key}); s.status != http.StatusAccepted || s.json(t)["status"] != "pending" {
			t.Fatalf("immediate poll = %d %s, want 202 pending", s.status, s.body)
		}
		link := approvalLink(t, st, text)
		links = append(links, link)

		// Opening the link (as a mail scanner would) shows the post and changes nothing.
		page := do(t, "GET", link, nil, nil)
		if !bytes.Contains(page.body, []byte(text)) || !bytes.Contains(page.body, []byte("jo@contoso.example")) {
			t.Fatalf("approval page does not show the tweet and who asked:\n%s", page.body)
		}
		if s := do(t, "GET", st.Info.GatewayURL+"/v1/posts/"+id, nil, map[string]string{"X-API-Key": key}); s.status != http.StatusAccepted || s.json(t)["status"] != "pending" {
			t.Fatalf("after opening the link the post is %d %s, want 202 pending", s.status, s.body)
		}

		approvedAt := time.Now()
		if d := decide(t, link, "approve", "Lovely, go ahead"); d.status != http.StatusOK || !bytes.Contains(d.body, []byte("Approved")) {
			t.Fatalf("approve: %d\n%s", d.status, d.body)
		}
		final := pollFinal(t, st, key, r.header.Get("Location"))
		t.Logf("approve → published and visible to the department in %v", time.Since(approvedAt))
		got := final.json(t)
		if final.status != http.StatusOK || got["status"] != "published" {
			t.Fatalf("final status %d %s, want 200 published", final.status, final.body)
		}
		dec, _ := got["decision"].(map[string]any)
		pub, _ := got["publication"].(map[string]any)
		if dec["approver"] != stack.DemoApprover || dec["comment"] != "Lovely, go ahead" || dec["outcome"] != "approved" || dec["decided_at"] == "" {
			t.Errorf("decision = %v", dec)
		}
		tweets := tweetsWithText(t, st, text)
		if len(tweets) != 1 {
			t.Fatalf("sandbox got %d tweets with the text, want exactly 1", len(tweets))
		}
		if pub["remote_id"] != tweets[0].ID || pub["channel"] != "x" {
			t.Errorf("publication = %v, sandbox tweet %v", pub, tweets[0])
		}
		// Ops can read the whole story of the post.
		if got := auditActions(t, st, id); strings.Join(got, ",") != "requested,approve,published" {
			t.Errorf("audit trail = %v, want requested, approve, published", got)
		}
		if tweets[0].ConsumerKey == "" || tweets[0].SignatureMethod != "HMAC-SHA1" {
			t.Errorf("the tweet was not posted with a verified OAuth 1.0a signature: %+v", tweets[0])
		}
		// What a person looks at: the sandbox's timeline page and the mailbox page.
		if page := do(t, "GET", st.Info.SandboxURL+"/", nil, nil); !bytes.Contains(page.body, []byte(text)) {
			t.Errorf("the sandbox page does not show the tweet")
		}
		if page := do(t, "GET", st.Info.MailboxURL+"/", nil, nil); !bytes.Contains(page.body, []byte("Approval needed: post from HR")) {
			t.Errorf("the mailbox page does not list the approval email")
		}

		// The link is single-use: the page says so, and replaying the form is refused.
		if used := do(t, "GET", link, nil, nil); !bytes.Contains(used.body, []byte("You already answered")) || bytes.Contains(used.body, []byte(`name="decision"`)) {
			t.Errorf("a used link still offers the form:\n%s", used.body)
		}
		csrf := csrfPattern.FindSubmatch(page.body)[1]
		replay := do(t, "POST", link, strings.NewReader(url.Values{"csrf": {string(csrf)}, "decision": {"approve"}}.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if replay.status != http.StatusConflict {
			t.Fatalf("replayed decision = %d, want 409\n%s", replay.status, replay.body)
		}
		if len(tweetsWithText(t, st, text)) != 1 {
			t.Fatal("a second approval posted again")
		}
	})

	t.Run("reject publishes nothing", func(t *testing.T) {
		text := fmt.Sprintf("Not for publication %d", time.Now().UnixNano())
		r := do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"tweet": %q, "requestedby": "sam@contoso.example"}`, text)),
			map[string]string{"X-API-Key": key, "Content-Type": "application/json", "X-Request-Id": "flow-run-7"})
		if r.header.Get("X-Request-Id") != "flow-run-7" {
			t.Errorf("X-Request-Id = %q, want the caller's", r.header.Get("X-Request-Id"))
		}
		if r.status != http.StatusAccepted {
			t.Fatalf("POST = %d %s", r.status, r.body)
		}
		link := approvalLink(t, st, text)
		if d := decide(t, link, "reject", "Not on brand"); d.status != http.StatusOK || !bytes.Contains(d.body, []byte("Rejected")) {
			t.Fatalf("reject: %d\n%s", d.status, d.body)
		}
		final := pollFinal(t, st, key, r.header.Get("Location"))
		got := final.json(t)
		dec, _ := got["decision"].(map[string]any)
		if final.status != http.StatusOK || got["status"] != "rejected" || dec["comment"] != "Not on brand" || got["publication"] != nil {
			t.Fatalf("final %d %s, want 200 rejected with the comment and no publication", final.status, final.body)
		}
		if n := len(tweetsWithText(t, st, text)); n != 0 {
			t.Fatalf("a rejected post reached the sandbox %d times", n)
		}
	})

	t.Run("an Idempotency-Key always names the same post", func(t *testing.T) {
		text := fmt.Sprintf("Retried by a flow %d", time.Now().UnixNano())
		body := fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text)
		headers := map[string]string{"X-API-Key": key, "Content-Type": "application/json", "Idempotency-Key": "flow-run-" + text[len(text)-6:]}
		first := do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(body), headers)
		if first.status != http.StatusAccepted {
			t.Fatalf("first = %d %s", first.status, first.body)
		}
		link := approvalLink(t, st, text)
		again := do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(body), headers)
		if again.status != http.StatusAccepted || again.header.Get("Location") != first.header.Get("Location") {
			t.Fatalf("retry = %d %v, want 202 with the same Location %s", again.status, again.header.Get("Location"), first.header.Get("Location"))
		}
		if d := decide(t, link, "approve", ""); d.status != http.StatusOK {
			t.Fatalf("approve: %d", d.status)
		}
		pollFinal(t, st, key, first.header.Get("Location"))
		late := do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(body), headers)
		// Stripe's semantics: a retry gets the first answer again, whose Location then says published.
		if late.status != http.StatusAccepted || string(late.body) != string(first.body) || late.header.Get("Location") != first.header.Get("Location") {
			t.Fatalf("retry after publication = %d %s, want the first answer %s again", late.status, late.body, first.body)
		}
		if final := pollFinal(t, st, key, late.header.Get("Location")); final.json(t)["status"] != "published" {
			t.Fatalf("the retry's Location says %s, want published", final.body)
		}
		if n := len(tweetsWithText(t, st, text)); n != 1 {
			t.Fatalf("three requests with one Idempotency-Key posted %d times, want 1", n)
		}
		var msgs []mail
		_ = json.Unmarshal(do(t, "GET", st.Info.MailboxURL+"/api/messages", nil, nil).body, &msgs)
		emails := 0
		for _, m := range msgs {
			if strings.Contains(m.Text, text) {
				emails++
			}
		}
		if emails != 1 {
			t.Errorf("the approver got %d emails for one post, want 1", emails)
		}
		conflict := do(t, "POST", st.Info.GatewayURL+"/v1/posts", strings.NewReader(`{"tweet": "something else", "requestedby": "jo"}`), headers)
		if e, _ := conflict.json(t)["error"].(map[string]any); conflict.status != http.StatusUnprocessableEntity || e["code"] != "idempotency_key_reused" {
			t.Fatalf("same key, other text = %d %s, want 422 idempotency_key_reused", conflict.status, conflict.body)
		}
	})

	t.Run("cross-site form posts are refused", func(t *testing.T) {
		text := fmt.Sprintf("CSRF check %d", time.Now().UnixNano())
		postJSON(t, st, key, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text))
		link := approvalLink(t, st, text)
		links = append(links, link)
		page := do(t, "GET", link, nil, nil)
		csrf := csrfPattern.FindSubmatch(page.body)[1]
		form := url.Values{"csrf": {string(csrf)}, "decision": {"approve"}}.Encode()
		r := do(t, "POST", link, strings.NewReader(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"})
		if r.status != http.StatusForbidden {
			t.Errorf("cross-site POST = %d, want 403", r.status)
		}
		r = do(t, "POST", link, strings.NewReader(url.Values{"csrf": {"forged"}, "decision": {"approve"}}.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if r.status != http.StatusForbidden {
			t.Errorf("POST with a forged form token = %d, want 403", r.status)
		}
		if s := do(t, "GET", link, nil, nil); !bytes.Contains(s.body, []byte(`name="decision"`)) {
			t.Errorf("after refused POSTs the link must still be open")
		}
	})

	t.Run("odd requests on an approval link change nothing and log no token", func(t *testing.T) {
		text := fmt.Sprintf("Odd methods %d", time.Now().UnixNano())
		postJSON(t, st, key, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text))
		link := approvalLink(t, st, text)
		links = append(links, link)
		tests := []struct {
			method, url string
			status      int
		}{
			{"OPTIONS", link, http.StatusMethodNotAllowed},
			{"PUT", link, http.StatusMethodNotAllowed},
			{"DELETE", link, http.StatusMethodNotAllowed},
			{"PATCH", link, http.StatusMethodNotAllowed},
			{"GET", link + "/", http.StatusNotFound},
			{"POST", link + "/", http.StatusNotFound},
			{"GET", link + "/extra", http.StatusNotFound},
			{"OPTIONS", link + "/", http.StatusNotFound},
		}
		for _, tt := range tests {
			r := do(t, tt.method, tt.url, nil, nil)
			if r.status != tt.status {
				t.Errorf("%s %s… = %d, want %d", tt.method, tt.url[:len(st.Info.GatewayURL)+11], r.status, tt.status)
			}
			if tok := link[strings.LastIndex(link, "/")+1:]; bytes.Contains(r.body, []byte(tok)) {
				t.Errorf("%s on an approval link echoes its token", tt.method)
			}
		}
		if s := do(t, "GET", link, nil, nil); s.status != http.StatusOK || !bytes.Contains(s.body, []byte(`name="decision"`)) {
			t.Errorf("after odd requests the link must still be open: %d", s.status)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		otherKey := otherDepartmentKey(t, st)
		// Paths, for the table below: Location is absolute.
		ours := strings.TrimPrefix(postJSON(t, st, key, `{"tweet": "HR only", "requestedby": "jo"}`).header.Get("Location"), st.Info.GatewayURL)
		theirs := strings.TrimPrefix(postJSON(t, st, otherKey, `{"tweet": "Finance only", "requestedby": "kim"}`).header.Get("Location"), st.Info.GatewayURL)
		json := map[string]string{"Content-Type": "application/json", "X-API-Key": key}
		tests := []struct {
			name, method, path, body string
			headers                  map[string]string
			status                   int
			code, target             string
		}{
			{"malformed JSON", "POST", "/v1/posts", `{"tweet": "hi",`, json, 400, "invalid_json", ""},
			{"not an object", "POST", "/v1/posts", `["hi"]`, json, 400, "invalid_json", ""},
			{"two objects", "POST", "/v1/posts", `{"tweet":"a","requestedby":"b"}{}`, json, 400, "invalid_json", ""},
			{"missing tweet", "POST", "/v1/posts", `{"requestedby": "jo"}`, json, 400, "invalid_request", "tweet"},
			{"blank tweet", "POST", "/v1/posts", `{"tweet": "  ", "requestedby": "jo"}`, json, 400, "invalid_request", "tweet"},
			{"tweet of the wrong type", "POST", "/v1/posts", `{"tweet": 42, "requestedby": "jo"}`, json, 400, "invalid_json", "tweet"},
			{"missing requestedby", "POST", "/v1/posts", `{"tweet": "hi"}`, json, 400, "invalid_request", "requestedby"},
			{"over-long tweet", "POST", "/v1/posts", `{"tweet": "` + strings.Repeat("é", 281) + `", "requestedby": "jo"}`, json, 400, "invalid_request", "tweet"},
			{"unknown field", "POST", "/v1/posts", `{"tweet": "hi", "requestedby": "jo", "channel": "x"}`, json, 400, "unknown_field", "channel"},
			{"field name in another case", "POST", "/v1/posts", `{"TWEET": "hi", "requestedby": "jo"}`, json, 400, "unknown_field", "TWEET"},
			{"repeated field", "POST", "/v1/posts", `{"tweet": "approved", "requestedby": "jo", "tweet": "swapped"}`, json, 400, "duplicate_field", "tweet"},
			{"invalid UTF-8", "POST", "/v1/posts", "{\"tweet\": \"a\xffb\", \"requestedby\": \"jo\"}", json, 400, "invalid_json", ""},
			{"lone surrogate escape", "POST", "/v1/posts", `{"tweet": "a\ud800b", "requestedby": "jo"}`, json, 400, "invalid_json", ""},
			{"NUL in the tweet", "POST", "/v1/posts", `{"tweet": "a\u0000b", "requestedby": "jo"}`, json, 400, "invalid_request", "tweet"},
			{"CR LF in requestedby", "POST", "/v1/posts", `{"tweet": "hi", "requestedby": "jo\r\nBcc: all@contoso.example"}`, json, 400, "invalid_request", "requestedby"},
			{"bidirectional override in the tweet", "POST", "/v1/posts", `{"tweet": "see \u202Efdp.exe", "requestedby": "jo"}`, json, 400, "invalid_request", "tweet"},
			{"oversized body", "POST", "/v1/posts", `{"tweet": "` + strings.Repeat("a", 29<<20) + `", "requestedby": "jo"}`, json, 413, "too_large", ""},
			{"wrong content type", "POST", "/v1/posts", `tweet=hi`, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-API-Key": key}, 415, "unsupported_media_type", ""},
			{"no API key", "POST", "/v1/posts", `{"tweet": "hi", "requestedby": "jo"}`, map[string]string{"Content-Type": "application/json"}, 401, "unauthorized", ""},
			{"wrong API key", "POST", "/v1/posts", `{"tweet": "hi", "requestedby": "jo"}`, map[string]string{"Content-Type": "application/json", "X-API-Key": "hk_wrong"}, 401, "unauthorized", ""},
			{"wrong API key on status", "GET", ours, "", map[string]string{"X-API-Key": "hk_wrong"}, 401, "unauthorized", ""},
			{"unknown id", "GET", "/v1/posts/0195f5a4-0000-7000-8000-000000000000", "", map[string]string{"X-API-Key": key}, 404, "not_found", ""},
			{"malformed id", "GET", "/v1/posts/not-a-uuid", "", map[string]string{"X-API-Key": key}, 404, "not_found", ""},
			{"another department's post", "GET", theirs, "", map[string]string{"X-API-Key": key}, 404, "not_found", ""},
			{"unknown approval link", "GET", "/approvals/nope", "", nil, 404, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := do(t, tt.method, st.Info.GatewayURL+tt.path, strings.NewReader(tt.body), tt.headers)
				if r.status != tt.status {
					t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
				}
				if tt.code == "" {
					return
				}
				e, _ := r.json(t)["error"].(map[string]any)
				if e["code"] != tt.code || e["message"] == "" || (tt.target != "" && e["target"] != tt.target) {
					t.Errorf("error = %v, want code %q target %q", e, tt.code, tt.target)
				}
			})
		}
		// The other department sees its own post; the API key may also come as a query parameter.
		if r := do(t, "GET", st.Info.GatewayURL+theirs+"?api_key="+url.QueryEscape(otherKey), nil, nil); r.status != http.StatusAccepted {
			t.Errorf("owner polling its post with ?api_key= got %d", r.status)
		}
	})
}

// auditActions reads a post's audit trail through AdminService, as ops would.
func auditActions(t *testing.T, st *stack.Stack, postID string) []string {
	t.Helper()
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	resp, err := approvalv1.NewAdminServiceClient(conn).ListAuditEvents(ctx, &approvalv1.ListAuditEventsRequest{PostId: postID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range resp.GetEvents() {
		actions = append(actions, e.GetAction())
	}
	return actions
}

// otherDepartmentKey creates a second department and key through AdminService, as ops would.
func otherDepartmentKey(t *testing.T, st *stack.Stack) string {
	t.Helper()
	conn, err := grpc.NewClient(st.Info.ApprovalAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := approvalv1.NewAdminServiceClient(conn)
	if _, err := admin.ListDepartments(context.Background(), &approvalv1.ListDepartmentsRequest{}); err == nil {
		t.Fatal("AdminService answered without a token")
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.Info.AdminToken)
	d, err := admin.CreateDepartment(ctx, &approvalv1.CreateDepartmentRequest{Name: "Finance"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, &approvalv1.CreateAPIKeyRequest{DepartmentId: d.GetDepartment().GetId(), Label: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	return k.GetSecret()
}

func TestOpsEndpoints(t *testing.T) {
	st := start(t)
	for _, base := range []string{st.Info.GatewayURL, st.Info.ApprovalOpsURL, st.Info.PublisherOpsURL} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if r := do(t, "GET", base+path, nil, nil); r.status != http.StatusOK {
				t.Errorf("GET %s%s = %d %s", base, path, r.status, r.body)
			}
		}
	}
	postJSON(t, st, st.Info.DemoAPIKey, `{"tweet": "metrics", "requestedby": "ops"}`)
	if r := do(t, "GET", st.Info.GatewayURL+"/metrics", nil, nil); !bytes.Contains(r.body, []byte(`herald_gateway_requests_total{code="202",route="POST /v1/posts"} 1`)) {
		t.Errorf("gateway metrics do not count the accepted post:\n%s", r.body)
	}
	if r := do(t, "GET", st.Info.ApprovalOpsURL+"/metrics", nil, nil); !bytes.Contains(r.body, []byte(`grpc_server_handled_total{grpc_code="OK",grpc_method="AuthenticateKey"`)) {
		t.Errorf("approval metrics do not count the gateway's key check")
	}
	text := fmt.Sprintf("Counted %d", time.Now().UnixNano())
	r := postJSON(t, st, st.Info.DemoAPIKey, fmt.Sprintf(`{"tweet": %q, "requestedby": "ops"}`, text))
	decide(t, approvalLink(t, st, text), "approve", "")
	pollFinal(t, st, st.Info.DemoAPIKey, r.header.Get("Location"))
	if r := do(t, "GET", st.Info.PublisherOpsURL+"/metrics", nil, nil); !bytes.Contains(r.body, []byte(`herald_publisher_channel_calls_total{channel="x",outcome="published"} 1`)) {
		t.Errorf("publisher metrics do not count the published post")
	}
}

func TestNATSDownMeansNoAcceptance(t *testing.T) {
	st := start(t)
	st.StopNATS()
	r := postJSON(t, st, st.Info.DemoAPIKey, `{"tweet": "Will this be lost?", "requestedby": "jo"}`)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("POST with NATS down = %d %s, want 503", r.status, r.body)
	}
	if e, _ := r.json(t)["error"].(map[string]any); e["code"] != "unavailable" {
		t.Errorf("error = %v", e)
	}
	for _, base := range []string{st.Info.GatewayURL, st.Info.ApprovalOpsURL, st.Info.PublisherOpsURL} {
		if r := do(t, "GET", base+"/readyz", nil, nil); r.status != http.StatusServiceUnavailable {
			t.Errorf("%s/readyz with NATS down = %d, want 503", base, r.status)
		}
	}
}

// checkPrivate fails t for every file or directory under dir that its group or others may use at all:
// the data directory holds the databases, mail with live approval links, and the stack's secrets.
func checkPrivate(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			rel, _ := filepath.Rel(dir, path)
			t.Errorf("%s has mode %v: group or others may use it", rel, perm)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
