package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/grpcapi"
	"github.com/heraldhq/herald/services/approval/internal/webhook"
	"github.com/heraldhq/herald/services/heraldshared/postresult"
)

// receiver is a department's webhook endpoint: it keeps what it received and answers with the status
// its script says (200 once the script runs out).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	script []int
}

type delivery struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, delivery{path: req.URL.Path, header: req.Header.Clone(), body: b})
		code := http.StatusOK
		if len(r.script) > 0 {
			code, r.script = r.script[0], r.script[1:]
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// hooked is a fixture with webhooks on: the real sender (plain http and loopback allowed, as the local
// stack allows them, for the test's receiver) and the real payload.
func hooked(t *testing.T, maxAttempts int) (fixture, *[]approval.WebhookResult) {
	t.Helper()
	var mu sync.Mutex
	results := &[]approval.WebhookResult{}
	f := setupWith(t, func(c *approval.Config) {
		c.Webhooks = &approval.WebhookConfig{
			Sender:      webhook.NewSender(webhook.Guard{AllowHTTP: true, AllowLoopback: true}),
			Payload:     webhook.Payload,
			MaxAttempts: maxAttempts,
			Observe: func(r approval.WebhookResult) {
				mu.Lock()
				defer mu.Unlock()
				*results = append(*results, r)
			},
		}
	})
	return f, results
}

// decide has approver a decide the post id (its email is drained first).
func (f fixture) decide(t *testing.T, id string, o approval.Outcome) {
	t.Helper()
	ctx := context.Background()
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range f.mail.Messages() {
		if m.To[0] != "a@example.com" {
			continue
		}
		i := strings.Index(m.Text, "http://gw.example/approvals/")
		link := strings.Fields(m.Text[i:])[0]
		v, err := f.svc.ViewApproval(ctx, token(link))
		if err != nil || v.Post.ID != id || v.State != approval.LinkOpen {
			continue
		}
		if _, err := f.svc.Decide(ctx, token(link), o, "seen", "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no open link of a@example.com for %s", id)
}

// deliver runs what the service's loops run: the outbox (fan-out), then the webhook deliveries.
func (f fixture) deliver(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DrainWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookDeliveredOnPublication: a subscriber of "published" gets one delivery when the post goes
// out, signed so that the official Standard Webhooks library verifies it, carrying exactly the result
// object the polling endpoint shows for the post; a subscriber of other events, and another
// department's subscriber, get nothing.
func TestWebhookDeliveredOnPublication(t *testing.T) {
	f, results := hooked(t, 0)
	ctx := context.Background()
	rcv := newReceiver(t)
	sub, secret, err := f.svc.CreateSubscription(ctx, f.dept.ID, rcv.srv.URL+"/published", []approval.WebhookEvent{approval.EventPublished})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") || sub.Secret != "" {
		t.Fatalf("secret %q, subscription carries %q; want a whsec_ secret returned beside it only", secret, sub.Secret)
	}
	if _, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, rcv.srv.URL+"/rejected", []approval.WebhookEvent{approval.EventRejected}); err != nil {
		t.Fatal(err)
	}
	other, err := f.svc.CreateDepartment(ctx, "IT")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateSubscription(ctx, other.ID, rcv.srv.URL+"/other-department", approval.WebhookEvents); err != nil {
		t.Fatal(err)
	}

	id := f.request(t, "Out it goes")
	f.decide(t, id, approval.OutcomeApprove)
	f.deliver(t)
	if got := rcv.deliveries(); len(got) != 0 {
		t.Fatalf("delivered on approval already: %+v", got)
	}
	if err := f.svc.RecordPublished(ctx, approval.PublisherReport{PostID: id, Channel: "x", RemoteID: "77", RemoteURL: "https://x.com/i/web/status/77", PublishedAt: *f.now}); err != nil {
		t.Fatal(err)
	}
	f.deliver(t)
	f.deliver(t) // nothing more goes out on another pass
	got := rcv.deliveries()
	if len(got) != 1 || got[0].path != "/published" {
		t.Fatalf("deliveries %+v; want one, to the subscriber of published", got)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got[0].body, got[0].header); err != nil {
		t.Fatalf("the official library refuses the delivery: %v", err)
	}
	var ev struct {
		Type      string            `json:"type"`
		Timestamp time.Time         `json:"timestamp"`
		Data      postresult.Result `json:"data"`
	}
	if err := json.Unmarshal(got[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.GetPost(ctx, id, f.dept.ID)
	if err != nil {
		t.Fatal(err)
	}
	// What GET /v1/posts/{id} answers: the gateway renders GetPost's message with postresult.FromProto.
	polled := postresult.FromProto(grpcapi.PostProto(p))
	if ev.Type != "post.published" || ev.Data.Status != "published" || ev.Data.Publication == nil || ev.Data.Publication.URL != "https://x.com/i/web/status/77" {
		t.Errorf("delivery %s", got[0].body)
	}
	if diff := cmp.Diff(polled, ev.Data); diff != "" {
		t.Errorf("the delivery's data differs from the polled result (-polled +delivered):\n%s", diff)
	}
	if diff := cmp.Diff([]approval.WebhookResult{approval.WebhookDelivered}, *results); diff != "" {
		t.Errorf("results observed (-want +got):\n%s", diff)
	}
}

// TestWebhookRejectionAndExpiry: the rejected and expired events reach their subscribers.
func TestWebhookRejectionAndExpiry(t *testing.T) {
	f, _ := hooked(t, 0)
	ctx := context.Background()
	rcv := newReceiver(t)
	if _, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, rcv.srv.URL+"/all", approval.WebhookEvents); err != nil {
		t.Fatal(err)
	}
	rejected := f.request(t, "No thanks")
	f.decide(t, rejected, approval.OutcomeReject)
	f.deliver(t)
	expired := f.request(t, "Nobody looks")
	f.advance(t, 2*time.Hour)
	f.deliver(t)
	types := map[string]string{}
	for _, d := range rcv.deliveries() {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"data"`
		}
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatal(err)
		}
		types[ev.Data.ID] = ev.Type + "/" + ev.Data.Status
	}
	want := map[string]string{rejected: "post.rejected/rejected", expired: "post.expired/expired"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("deliveries by post (-want +got):\n%s", diff)
	}
}

// TestWebhookRetriedThenGivenUp: a receiver that fails is tried again later, under the same webhook-id,
// with growing waits; once the attempts are used up the subscription is marked failing (ops see it), and
// the next delivery that succeeds clears the mark.
func TestWebhookRetriedThenGivenUp(t *testing.T) {
	f, results := hooked(t, 3)
	ctx := context.Background()
	rcv := newReceiver(t, 500, 503, 500, 500, 502) // two posts' worth of failures; the third post gets 200
	sub, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, rcv.srv.URL+"/flaky", []approval.WebhookEvent{approval.EventRejected})
	if err != nil {
		t.Fatal(err)
	}
	first := f.request(t, "One")
	f.decide(t, first, approval.OutcomeReject)
	f.deliver(t)
	if n := len(rcv.deliveries()); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	f.deliver(t) // not due yet: nothing
	if n := len(rcv.deliveries()); n != 1 {
		t.Fatalf("%d attempts before the retry was due, want 1", n)
	}
	f.advance(t, 5*time.Second) // the first retry waits 2.5 to 5 s
	f.deliver(t)
	f.advance(t, 20*time.Second) // the second 10 to 20 s
	f.deliver(t)
	got := rcv.deliveries()
	if len(got) != 3 {
		t.Fatalf("%d attempts, want 3", len(got))
	}
	for _, d := range got {
		if id := d.header.Get("webhook-id"); id != got[0].header.Get("webhook-id") || id == "" {
			t.Errorf("webhook-id %q on a retry, %q first: a retry must keep it", id, got[0].header.Get("webhook-id"))
		}
	}
	subs, err := f.svc.ListSubscriptions(ctx, "", true)
	if err != nil || len(subs) != 1 || subs[0].ID != sub.ID || subs[0].FailingSince.IsZero() || !strings.Contains(subs[0].LastError, "500") {
		t.Fatalf("failing subscriptions = %+v, %v; want this one, with the receiver's answer", subs, err)
	}
	if n, _ := f.svc.CountWebhookDeliveries(ctx); n != 0 {
		t.Errorf("%d deliveries pending after the give-up, want 0", n)
	}
	want := []approval.WebhookResult{approval.WebhookRetry, approval.WebhookRetry, approval.WebhookGaveUp}
	if diff := cmp.Diff(want, *results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// Failing subscriptions still get new events; the first one delivered clears the mark.
	second := f.request(t, "Two")
	f.decide(t, second, approval.OutcomeReject)
	f.deliver(t) // 500
	f.advance(t, 5*time.Second)
	f.deliver(t) // 502
	f.advance(t, 20*time.Second)
	f.deliver(t) // 200
	if subs, _ := f.svc.ListSubscriptions(ctx, "", true); len(subs) != 0 {
		t.Errorf("still failing after a delivery: %+v", subs)
	}
}

// TestUnsubscribeStopsDeliveries: once deleted, a subscription gets nothing, not even what was queued;
// and only its own department can delete (or see) it.
func TestUnsubscribeStopsDeliveries(t *testing.T) {
	f, _ := hooked(t, 0)
	ctx := context.Background()
	rcv := newReceiver(t, 500)
	sub, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, rcv.srv.URL+"/gone", []approval.WebhookEvent{approval.EventRejected})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := f.svc.CreateDepartment(ctx, "IT")
	if err := f.svc.DeleteSubscription(ctx, sub.ID, other.ID); !errors.Is(err, approval.ErrNotFound) {
		t.Fatalf("another department deleting it: %v, want ErrNotFound", err)
	}
	if subs, _ := f.svc.ListSubscriptions(ctx, other.ID, false); len(subs) != 0 {
		t.Fatalf("another department lists %+v", subs)
	}
	if subs, _ := f.svc.ListSubscriptions(ctx, f.dept.ID, false); len(subs) != 1 || subs[0].Secret != "" {
		t.Fatalf("own list = %+v; want the subscription, without its secret", subs)
	}
	id := f.request(t, "Queued")
	f.decide(t, id, approval.OutcomeReject)
	f.deliver(t) // fails once, and waits for its retry
	if err := f.svc.DeleteSubscription(ctx, sub.ID, f.dept.ID); err != nil {
		t.Fatal(err)
	}
	f.advance(t, time.Hour)
	f.deliver(t)
	later := f.request(t, "After")
	f.decide(t, later, approval.OutcomeReject)
	f.deliver(t)
	if n := len(rcv.deliveries()); n != 1 {
		t.Errorf("%d deliveries, want only the one before unsubscribing", n)
	}
}

// blockingSender stands for a replica that dies mid-delivery: its Send never returns until the
// replica's context ends.
type blockingSender struct {
	approval.WebhookSender
	started chan struct{}
}

func (b blockingSender) Send(ctx context.Context, _ approval.WebhookMessage) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

// TestWebhookSurvivesACrashMidDelivery: a replica claims a delivery and dies while sending it. Nothing is
// lost: once the lease runs out another replica on the same database delivers it, once.
func TestWebhookSurvivesACrashMidDelivery(t *testing.T) {
	f, _ := hooked(t, 0)
	ctx := context.Background()
	rcv := newReceiver(t)
	if _, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, rcv.srv.URL+"/crash", []approval.WebhookEvent{approval.EventRejected}); err != nil {
		t.Fatal(err)
	}
	id := f.request(t, "Crash")
	f.decide(t, id, approval.OutcomeReject)
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	// The doomed replica: same store, a sender that hangs until the replica's context is cancelled.
	started := make(chan struct{})
	doomed, err := approval.NewService(f.store, nopMailer{}, nopAnnouncer{}, approval.Config{
		PublicURL: "http://gw.example", Now: func() time.Time { return *f.now }, OutboxLease: time.Minute,
		Webhooks: &approval.WebhookConfig{Sender: blockingSender{WebhookSender: webhook.NewSender(webhook.Guard{}), started: started}, Payload: webhook.Payload},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dctx, die := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- doomed.DrainWebhooks(dctx) }()
	<-started
	die()
	<-done
	// While its lease runs, nobody else takes the delivery.
	f.deliver(t)
	if n := len(rcv.deliveries()); n != 0 {
		t.Fatalf("%d deliveries while the dead replica's lease ran", n)
	}
	f.advance(t, 2*time.Minute)
	f.deliver(t)
	f.deliver(t)
	if n := len(rcv.deliveries()); n != 1 {
		t.Fatalf("%d deliveries after the lease ran out, want 1", n)
	}
}

// TestSubscriptionRefusesWhatHeraldMustNotCall: the checks at registration, with the production guard.
func TestSubscriptionRefusesWhatHeraldMustNotCall(t *testing.T) {
	f := setupWith(t, func(c *approval.Config) {
		c.Webhooks = &approval.WebhookConfig{Sender: webhook.NewSender(webhook.Guard{
			Lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
				if host == "rebind.example.com" {
					return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.5")}, nil
				}
				return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
			},
		}), Payload: webhook.Payload}
	})
	ctx := context.Background()
	pub := []approval.WebhookEvent{approval.EventPublished}
	for _, tc := range []struct {
		url  string
		evs  []approval.WebhookEvent
		want string
	}{
		{"http://hooks.example.com/x", pub, "https"},
		{"https://127.0.0.1/x", pub, "loopback"},
		{"https://169.254.169.254/latest/meta-data/", pub, "link-local"},
		{"https://[fe80::1]/x", pub, "link-local"},
		{"https://192.168.0.10/x", pub, "private"},
		{"https://[::ffff:10.0.0.1]/x", pub, "private"},
		{"https://[ff0e::1]/x", pub, "multicast"},
		{"https://0.0.0.0/x", pub, "unspecified"},
		{"https://rebind.example.com/x", pub, "private"},
		{"https://user:pw@hooks.example.com/x", pub, "user name"},
		{"https://hooks.example.com/x#frag", pub, "fragment"},
		{"hooks.example.com/x", pub, "https"},
		{"", pub, "1 to 2000"},
		{"https://hooks.example.com/x", nil, "at least one"},
		{"https://hooks.example.com/x", []approval.WebhookEvent{"cancelled"}, "not one of"},
	} {
		_, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, tc.url, tc.evs)
		if !errors.Is(err, approval.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CreateSubscription(%q, %v) = %v; want ErrInvalid saying %q", tc.url, tc.evs, err, tc.want)
		}
	}
	if _, _, err := f.svc.CreateSubscription(ctx, uuid.NewString(), "https://hooks.example.com/x", pub); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("unknown department: %v, want ErrNotFound", err)
	}
	for i := range approval.MaxSubscriptions {
		if _, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, "https://hooks.example.com/x", pub); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	if _, _, err := f.svc.CreateSubscription(ctx, f.dept.ID, "https://hooks.example.com/x", pub); !errors.Is(err, approval.ErrInvalid) {
		t.Errorf("subscription past the limit: %v, want ErrInvalid", err)
	}
	// Without webhooks configured, subscriptions are refused as such.
	off := setup(t, "")
	if _, _, err := off.svc.CreateSubscription(ctx, off.dept.ID, "https://hooks.example.com/x", pub); !errors.Is(err, approval.ErrWebhooksOff) {
		t.Errorf("webhooks off: %v, want ErrWebhooksOff", err)
	}
}
