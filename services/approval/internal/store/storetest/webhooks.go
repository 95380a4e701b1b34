package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/webhook"
)

func subscription(t *testing.T, s approval.Store, deptID string, evs ...approval.WebhookEvent) approval.Subscription {
	t.Helper()
	sub := approval.Subscription{ID: uuid.NewString(), DepartmentID: deptID, URL: "https://hooks.example.com/" + uuid.NewString(), Events: evs, Secret: "whsec_c2VjcmV0", CreatedAt: at}
	if err := s.CreateSubscription(context.Background(), sub); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	return sub
}

// testSubscriptions: subscriptions are kept with their secret, listed per department, and deleted only
// by their own department (or ops).
func testSubscriptions(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr, it := department(t, s, "HR"), department(t, s, "IT")
	a := subscription(t, s, hr.ID, approval.EventPublished, approval.EventRejected)
	b := subscription(t, s, it.ID, approval.EventExpired)
	got, err := s.GetSubscription(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("GetSubscription (-want +got):\n%s", diff)
	}
	list, err := s.ListSubscriptions(ctx, hr.ID)
	if err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("HR's subscriptions = %+v, %v; want only its own", list, err)
	}
	if all, err := s.ListSubscriptions(ctx, ""); err != nil || len(all) != 2 {
		t.Fatalf("every subscription = %d, %v; want 2", len(all), err)
	}
	if n, err := s.CountSubscriptions(ctx, it.ID); err != nil || n != 1 {
		t.Errorf("CountSubscriptions = %d, %v", n, err)
	}
	if err := s.DeleteSubscription(ctx, b.ID, hr.ID); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("HR deleting IT's subscription: %v, want ErrNotFound", err)
	}
	if _, err := s.GetSubscription(ctx, b.ID); err != nil {
		t.Errorf("IT's subscription is gone after HR's attempt: %v", err)
	}
	if err := s.DeleteSubscription(ctx, b.ID, it.ID); err != nil {
		t.Errorf("IT deleting its own: %v", err)
	}
	if _, err := s.GetSubscription(ctx, b.ID); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("deleted subscription: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSubscription(ctx, a.ID, ""); err != nil {
		t.Errorf("ops deleting: %v", err)
	}
}

// testWebhookDeliveries: a fan-out queues one delivery per subscriber that wants the event, once however
// often it is repeated; claims lease them; a give-up marks the subscription failing and a later success
// clears it; unsubscribing drops what was queued.
func testWebhookDeliveries(t *testing.T, s approval.Store) {
	ctx := context.Background()
	hr, it := department(t, s, "HR"), department(t, s, "IT")
	pub := subscription(t, s, hr.ID, approval.EventPublished)
	both := subscription(t, s, hr.ID, approval.EventPublished, approval.EventRejected)
	subscription(t, s, hr.ID, approval.EventRejected)
	subscription(t, s, it.ID, approval.EventPublished)
	body := []byte(`{"type":"post.published"}`)
	for range 2 { // a fan-out repeated after a crash
		if _, err := s.FanOutWebhook(ctx, 7, hr.ID, "p1", approval.EventPublished, body, at); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.CountWebhookDeliveries(ctx); err != nil || n != 2 {
		t.Fatalf("deliveries = %d, %v; want 2 (HR's two subscribers of published, once each)", n, err)
	}
	ds, err := s.ClaimWebhookDeliveries(ctx, at, at.Add(time.Minute), 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("claimed %d, %v", len(ds), err)
	}
	subs := map[string]bool{}
	for _, d := range ds {
		subs[d.SubscriptionID] = true
		if string(d.Body) != string(body) || d.PostID != "p1" || d.Event != approval.EventPublished || d.Attempts != 0 {
			t.Errorf("delivery %+v", d)
		}
	}
	if !subs[pub.ID] || !subs[both.ID] {
		t.Errorf("deliveries went to %v, want %s and %s", subs, pub.ID, both.ID)
	}
	if again, err := s.ClaimWebhookDeliveries(ctx, at.Add(30*time.Second), at.Add(time.Hour), 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed %d again while leased, %v", len(again), err)
	}
	// One fails for good: its subscription is marked failing; the other is retried later.
	var first, second approval.WebhookDelivery
	for _, d := range ds {
		if d.SubscriptionID == pub.ID {
			first = d
		} else {
			second = d
		}
	}
	if err := s.GiveUpWebhookDelivery(ctx, first.ID, pub.ID, at, "the receiver answered 500"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSubscription(ctx, pub.ID); !got.FailingSince.Equal(at) || got.LastError != "the receiver answered 500" {
		t.Errorf("after a give-up: failing since %v, %q", got.FailingSince, got.LastError)
	}
	if err := s.GiveUpWebhookDelivery(ctx, 0, pub.ID, at.Add(time.Hour), "again"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSubscription(ctx, pub.ID); !got.FailingSince.Equal(at) {
		t.Errorf("a second give-up moved failing_since to %v; it says since when", got.FailingSince)
	}
	if err := s.DeferWebhookDelivery(ctx, second.ID, at.Add(time.Hour), "timeout"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ClaimWebhookDeliveries(ctx, at.Add(time.Minute), at.Add(2*time.Minute), 10); len(due) != 0 {
		t.Errorf("a deferred delivery was claimed before it was due: %+v", due)
	}
	due, err := s.ClaimWebhookDeliveries(ctx, at.Add(time.Hour), at.Add(2*time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "timeout" {
		t.Fatalf("due after the deferral = %+v, %v", due, err)
	}
	// A success clears a failing mark.
	if _, err := s.FanOutWebhook(ctx, 8, hr.ID, "p2", approval.EventPublished, body, at); err != nil {
		t.Fatal(err)
	}
	ds, _ = s.ClaimWebhookDeliveries(ctx, at.Add(3*time.Hour), at.Add(4*time.Hour), 10)
	for _, d := range ds {
		if d.SubscriptionID == pub.ID {
			if err := s.DeleteWebhookDelivery(ctx, d.ID, pub.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, _ := s.GetSubscription(ctx, pub.ID); !got.FailingSince.IsZero() || got.LastError != "" {
		t.Errorf("after a delivery: failing since %v, %q; want cleared", got.FailingSince, got.LastError)
	}
	// Unsubscribing drops the subscription's queued deliveries.
	if err := s.DeleteSubscription(ctx, both.ID, hr.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountWebhookDeliveries(ctx); n != 0 {
		t.Errorf("%d deliveries left after unsubscribing, want 0", n)
	}
}

// WebhookReplicas runs two approval services on one database, with subscribers, and has both deliver
// webhooks at the same time, twice each: every subscriber must receive each event exactly once.
func WebhookReplicas(t *testing.T, open func(t *testing.T) (approval.Store, approval.Store)) {
	t.Helper()
	ctx := context.Background()
	a, b := open(t)
	var mu sync.Mutex
	got := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path+" "+r.Header.Get(webhook.HeaderID)]++
		mu.Unlock()
		time.Sleep(time.Millisecond) // long enough for the other replica to try to take the same one
	}))
	t.Cleanup(receiver.Close)
	now := at
	svc := func(s approval.Store) *approval.Service {
		v, err := approval.NewService(s, &countingMailer{sent: map[string]int{}}, nopAnnouncer{}, approval.Config{
			PublicURL: "http://herald.test", Now: func() time.Time { return now },
			Webhooks: &approval.WebhookConfig{Sender: webhook.NewSender(webhook.Guard{AllowHTTP: true, AllowLoopback: true}), Payload: webhook.Payload},
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	replicas := []*approval.Service{svc(a), svc(b)}
	d, err := replicas[0].CreateDepartment(ctx, "HR")
	if err != nil {
		t.Fatal(err)
	}
	const subscribers, posts = 3, 8
	for i := range subscribers {
		if _, _, err := replicas[i%2].CreateSubscription(ctx, d.ID, fmt.Sprintf("%s/sub%d", receiver.URL, i), []approval.WebhookEvent{approval.EventExpired}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range posts {
		r := approval.Request{PostID: uuid.NewString(), DepartmentID: d.ID, Text: fmt.Sprintf("Post %d", i), RequestedBy: "hr@example.com"}
		if err := replicas[i%2].Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	now = at.Add(100 * time.Hour) // every post expires undecided
	if _, err := replicas[0].ExpireOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(f func(*approval.Service) error) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Go(func() {
				<-start
				errs <- f(replicas[i%2])
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	}
	run(func(s *approval.Service) error { return s.DrainOutbox(ctx) }) // the fan-outs, by both at once
	run(func(s *approval.Service) error { return s.DrainWebhooks(ctx) })

	mu.Lock()
	defer mu.Unlock()
	if len(got) != subscribers*posts {
		t.Errorf("%d subscriber-event pairs delivered, want %d", len(got), subscribers*posts)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s delivered %d times, want once", k, n)
		}
	}
	if n, err := a.CountWebhookDeliveries(ctx); err != nil || n != 0 {
		t.Errorf("deliveries left = %d, %v; want none", n, err)
	}
}
