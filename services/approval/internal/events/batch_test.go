package events

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
)

// countingBatcher counts the requests submitted, by post id.
type countingBatcher struct {
	*approval.Service
	mu        sync.Mutex
	submitted map[string]int
}

func (b *countingBatcher) SubmitBatch(ctx context.Context, rs []approval.Request) []error {
	b.mu.Lock()
	for _, r := range rs {
		b.submitted[r.PostID]++
	}
	b.mu.Unlock()
	return b.Service.SubmitBatch(ctx, rs)
}

func (b *countingBatcher) count(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.submitted[id]
}

// TestBatchedRequestsSurviveACrashAndPoison runs post requests through the real batch consumer, domain and
// PostgreSQL store. The first consumer dies (its NATS connection cut) after storing its batches and before
// acknowledging anything; a second one gets every request again. In the end each good request is one
// pending post with one approval email queued, although it was stored twice; a request the database
// refuses and one the domain refuses, batched with them, end as failed posts without holding up the rest.
func TestBatchedRequestsSurviveACrashAndPoison(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := postgres.Open(ctx, pgtest.Schema(t), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.DiscardHandler)
	svc, err := approval.NewService(store, nopMailer{}, nopAnnouncer{}, approval.Config{PublicURL: "http://gw.example"}, log)
	if err != nil {
		t.Fatal(err)
	}
	dept, err := svc.CreateDepartment(ctx, "HR")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddApprover(ctx, "comms@example.com", "Comms"); err != nil {
		t.Fatal(err)
	}
	b := &countingBatcher{Service: svc, submitted: map[string]int{}}
	h, err := RequestBatchHandler(b)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := GiveUp(svc, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	url := natstest.Embedded(t)
	nc, js, err := eventbus.Connect(ctx, url, "batch-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)

	var good []string
	for range 30 {
		req := &eventsv1.PostRequested{PostId: uuid.NewString(), DepartmentId: dept.ID, Text: "Welcome to our new joiners!", RequestedBy: "hr@example.com", RequestedAt: timestamppb.Now()}
		good = append(good, req.PostId)
		if err := pub.PublishProto(ctx, eventbus.SubjectRequested, eventbus.MsgID(req.PostId, "requested"), req); err != nil {
			t.Fatal(err)
		}
	}
	// PostgreSQL refuses NUL in TEXT, in the middle of a batch; the domain refuses NUL in the text.
	storePoison := &eventsv1.PostRequested{PostId: uuid.NewString(), DepartmentId: dept.ID, Text: "Hello", RequestedBy: "jo", IdempotencyKey: "key\x00"}
	domainPoison := &eventsv1.PostRequested{PostId: uuid.NewString(), DepartmentId: dept.ID, Text: "Hello\x00world", RequestedBy: "jo"}
	for _, req := range []*eventsv1.PostRequested{storePoison, domainPoison} {
		if err := pub.PublishProto(ctx, eventbus.SubjectRequested, eventbus.MsgID(req.PostId, "requested"), req); err != nil {
			t.Fatal(err)
		}
	}

	cfg := eventbus.ConsumerConfig{Durable: "approval-batch-test", Subjects: []string{eventbus.SubjectRequested}, HandlerTimeout: time.Second, MaxDeliveries: 3, GiveUp: hook}
	// The first consumer stores what it gets, then its connection dies before any acknowledgement.
	crashNC, crashJS, err := eventbus.Connect(ctx, url, "batch-test-doomed")
	if err != nil {
		t.Fatal(err)
	}
	crashed := make(chan struct{})
	var once sync.Once
	dying := func(ctx context.Context, msgs []jetstream.Msg) []error {
		errs := h(ctx, msgs)
		once.Do(func() { crashNC.Close(); close(crashed) })
		return errs
	}
	ctx1, stop1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() { done1 <- eventbus.ConsumeBatches(ctx1, crashJS, cfg, 16, dying, log) }()
	select {
	case <-crashed:
	case <-time.After(20 * time.Second):
		t.Fatal("the first consumer handled nothing")
	}
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	// What the doomed consumer stored before and after its connection died (it may still work through
	// messages it had already fetched) was never acknowledged: every request must reach the second one.
	before := map[string]int{}
	stored := 0
	for _, id := range good {
		before[id] = b.count(id)
		stored += before[id]
	}
	if stored == 0 {
		t.Fatal("the doomed consumer stored nothing before it died")
	}

	done2 := make(chan error, 1)
	go func() { done2 <- eventbus.ConsumeBatches(ctx, js, cfg, 16, h, log) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		failed := 0
		for _, id := range []string{storePoison.PostId, domainPoison.PostId} {
			if p, err := svc.GetPost(ctx, id, ""); err == nil && p.Status == approval.StatusFailed {
				failed++
			}
		}
		redelivered := 0
		for _, id := range good {
			if b.count(id) > before[id] {
				redelivered++
			}
		}
		if failed == 2 && redelivered == len(good) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the crash: %d of %d good requests redelivered, %d of 2 poison ones failed", redelivered, len(good), failed)
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}

	ctx = context.Background()
	emails := map[string]int{}
	due, err := store.DueOutbox(ctx, time.Now().Add(time.Minute), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range due {
		if it.Kind == approval.OutboxApprovalEmail {
			emails[it.PostID]++
		}
	}
	for _, id := range good {
		p, err := svc.GetPost(ctx, id, dept.ID)
		if err != nil || p.Status != approval.StatusPending {
			t.Errorf("post %s = %q, %v; want pending", id, p.Status, err)
		}
		if emails[id] != 1 {
			t.Errorf("post %s has %d approval emails queued, want 1", id, emails[id])
		}
		audit, err := store.ListAudit(ctx, id)
		if err != nil || len(audit) != 1 {
			t.Errorf("post %s has %d audit entries (%v), want the one request", id, len(audit), err)
		}
	}
}
