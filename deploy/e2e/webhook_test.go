package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestFlowTriggeredOnPublication is a flow subscribed to "published" through the connector's trigger:
// the subscription answers 201 with Location and the secret; once the post is approved and out on the
// sandbox, the flow's endpoint receives one delivery, verified with the official Standard Webhooks
// library, whose data is exactly what GET /v1/posts/{id} answers; another department sees and deletes
// none of it; after DELETE nothing more arrives. A notification URL on the metadata address is refused.
func TestFlowTriggeredOnPublication(t *testing.T) {
	st := start(t)
	key := st.Info.DemoAPIKey
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	flow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer flow.Close()
	headers := map[string]string{"X-API-Key": key, "Content-Type": "application/json"}

	refused := do(t, "POST", st.Info.GatewayURL+"/v1/subscriptions", strings.NewReader(`{"url": "http://169.254.169.254/latest/meta-data/"}`), headers)
	if refused.status != http.StatusBadRequest || !strings.Contains(string(refused.body), "link-local") {
		t.Fatalf("metadata address: %d %s; want 400 naming link-local", refused.status, refused.body)
	}
	sub := do(t, "POST", st.Info.GatewayURL+"/v1/subscriptions", strings.NewReader(`{"url": "`+flow.URL+`/run?sig=flow-secret", "events": ["published"]}`), headers)
	if sub.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", sub.status, sub.body)
	}
	secret, _ := sub.json(t)["secret"].(string)
	location := sub.header.Get("Location")
	if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(location, st.Info.GatewayURL+"/v1/subscriptions/") {
		t.Fatalf("subscribe answered Location %q, %s", location, sub.body)
	}
	listed := do(t, "GET", st.Info.GatewayURL+"/v1/subscriptions", nil, map[string]string{"X-API-Key": key})
	if !strings.Contains(string(listed.body), location[strings.LastIndex(location, "/")+1:]) || strings.Contains(string(listed.body), "whsec_") {
		t.Fatalf("list: %s; want the subscription without its secret", listed.body)
	}
	other := otherDepartmentKey(t, st)
	if r := do(t, "GET", st.Info.GatewayURL+"/v1/subscriptions", nil, map[string]string{"X-API-Key": other}); string(r.body) != "{\"subscriptions\":[]}\n" {
		t.Fatalf("the other department lists %s", r.body)
	}
	if r := do(t, "DELETE", location, nil, map[string]string{"X-API-Key": other}); r.status != http.StatusNotFound {
		t.Fatalf("the other department deleting it: %d, want 404", r.status)
	}

	text := "Triggered flow " + time.Now().Format(time.RFC3339Nano)
	r := postJSON(t, st, key, `{"tweet": "`+text+`", "requestedby": "jo@contoso.example"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	if d := decide(t, approvalLink(t, st, text), "approve", "Go"); d.status != http.StatusOK {
		t.Fatalf("approve: %d %s", d.status, d.body)
	}
	final := pollFinal(t, st, key, r.header.Get("Location"))
	eventually(t, "the webhook delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	req, body := got[0], bodies[0]
	mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, req.Header); err != nil {
		t.Fatalf("the delivery does not verify with the official library: %v\n%s", err, body)
	}
	if req.URL.Query().Get("sig") != "flow-secret" {
		t.Errorf("delivered to %s, want the flow's URL with its query", req.URL)
	}
	var ev struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "post.published" {
		t.Errorf("type %q, want post.published", ev.Type)
	}
	// The same result object as the polling endpoint: compared as JSON values.
	var polled, delivered any
	_ = json.Unmarshal(final.body, &polled)
	_ = json.Unmarshal(ev.Data, &delivered)
	p, _ := json.Marshal(polled)
	d, _ := json.Marshal(delivered)
	if !bytes.Equal(p, d) {
		t.Errorf("delivered data differs from GET /v1/posts/{id}:\n polled    %s\n delivered %s", p, d)
	}
	if m, _ := polled.(map[string]any); m["status"] != "published" {
		t.Errorf("polled %s", final.body)
	}

	if n := metric(t, st.Info.ApprovalOpsURL, `herald_webhook_deliveries_total{result="delivered"}`); n != 1 {
		t.Errorf("herald_webhook_deliveries_total{result=\"delivered\"} = %v, want 1", n)
	}

	// Unsubscribed, the flow hears of nothing more. A second flow, still subscribed, shows when the
	// second post's deliveries have gone out.
	if r := do(t, "DELETE", location, nil, map[string]string{"X-API-Key": key}); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	var witnessed sync.WaitGroup
	witnessed.Add(1)
	witness := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { witnessed.Done() }))
	defer witness.Close()
	if r := do(t, "POST", st.Info.GatewayURL+"/v1/subscriptions", strings.NewReader(`{"url": "`+witness.URL+`"}`), headers); r.status != http.StatusCreated {
		t.Fatalf("second subscription: %d %s", r.status, r.body)
	}
	text2 := text + " again"
	r = postJSON(t, st, key, `{"tweet": "`+text2+`", "requestedby": "jo@contoso.example"}`)
	decide(t, approvalLink(t, st, text2), "approve", "")
	pollFinal(t, st, key, r.header.Get("Location"))
	witnessed.Wait()
	eventually(t, "no webhook delivery pending", func() bool {
		return metric(t, st.Info.ApprovalOpsURL, "herald_webhook_deliveries_pending") == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Errorf("%d deliveries, want only the one before unsubscribing", len(got))
	}
}
