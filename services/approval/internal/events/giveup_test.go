package events

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
	"github.com/heraldhq/herald/services/heraldshared/testenv/pgtest"
)

type nopMailer struct{}

func (nopMailer) SendApprovalRequest(context.Context, approval.ApprovalEmail) error { return nil }

type nopAnnouncer struct{}

func (nopAnnouncer) PostApproved(context.Context, approval.Post) error  { return nil }
func (nopAnnouncer) PostRejected(context.Context, approval.Post) error  { return nil }
func (nopAnnouncer) PostExpired(context.Context, approval.Post) error   { return nil }
func (nopAnnouncer) PostCancelled(context.Context, approval.Post) error { return nil }

// countingDomain counts the requests submitted, by post id.
type countingDomain struct {
	*approval.Service
	mu        sync.Mutex
	submitted map[string]int
}

func (d *countingDomain) Submit(ctx context.Context, r approval.Request) error {
	d.mu.Lock()
	d.submitted[r.PostID]++
	d.mu.Unlock()
	return d.Service.Submit(ctx, r)
}

func (d *countingDomain) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.submitted[id]
}

// TestRequestsThatCanNeverBeStoredEndFailed runs post requests that PostgreSQL or the domain refuses
// through the real consumer, domain and store: each ends as a failed post with a reason the department
// can read, after MaxDeliveries deliveries when the failure looks transient and after one when the domain
// calls it invalid, instead of being redelivered forever.
func TestRequestsThatCanNeverBeStoredEndFailed(t *testing.T) {
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
	d := &countingDomain{Service: svc, submitted: map[string]int{}}
	_, keys := sealtest.NewKey(t)
	given := map[string]int{}
	var givenMu sync.Mutex
	h, err := Handler(d, keys, func(string, string) {})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := GiveUp(d, func(subject string) { givenMu.Lock(); given[subject]++; givenMu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := eventbus.Connect(ctx, natstest.Embedded(t), "giveup-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	cfg := eventbus.ConsumerConfig{Durable: "approval-test", Subjects: Subjects(), HandlerTimeout: 5 * time.Second, MaxDeliveries: 3, GiveUp: hook}
	errc := make(chan error, 1)
	go func() { errc <- eventbus.Consume(ctx, js, cfg, h, log) }()

	tests := []struct {
		name       string
		req        *eventsv1.PostRequested
		deliveries int
		reason     string
	}{
		{
			// PostgreSQL refuses NUL in TEXT. The domain does not check idempotency keys (the gateway
			// does), so this one fails in the store on every delivery.
			name:       "the store refuses it",
			req:        &eventsv1.PostRequested{Text: "Hello", RequestedBy: "jo", IdempotencyKey: "key\x00"},
			deliveries: 3,
			reason:     approval.ReasonNotProcessed,
		},
		{
			name:       "the domain refuses it",
			req:        &eventsv1.PostRequested{Text: "Hello\x00world", RequestedBy: "jo", IdempotencyKey: "key"},
			deliveries: 1,
			reason:     "Herald refused this request: the text contains the control character U+0000 at character 6",
		},
	}
	for _, tt := range tests {
		tt.req.PostId, tt.req.DepartmentId, tt.req.RequestedAt = uuid.NewString(), dept.ID, timestamppb.Now()
		if err := pub.PublishProto(ctx, eventbus.SubjectRequested, eventbus.MsgID(tt.req.PostId, "requested"), tt.req); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p approval.Post
			deadline := time.Now().Add(20 * time.Second)
			for {
				p, err = svc.GetPost(ctx, tt.req.PostId, dept.ID)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("post %s never recorded: %v (delivered %d times)", tt.req.PostId, err, d.count(tt.req.PostId))
				}
				runtime.Gosched()
			}
			if p.Status != approval.StatusFailed || p.FailureReason != tt.reason || p.Text != "" {
				t.Errorf("post = status %q, reason %q, text %q; want failed, %q, no text", p.Status, p.FailureReason, p.Text, tt.reason)
			}
			if n := d.count(tt.req.PostId); n != tt.deliveries {
				t.Errorf("delivered %d times, want %d", n, tt.deliveries)
			}
		})
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	givenMu.Lock()
	defer givenMu.Unlock()
	if given[eventbus.SubjectRequested] != 2 {
		t.Errorf("given up = %v; want both requests counted", given)
	}
}
