package approval_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/events"
	"github.com/heraldhq/herald/services/approval/internal/notify"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/seal/sealtest"
)

// slowMailer sends through the real SMTP client after a pause, as a mail server that takes its time does.
type slowMailer struct {
	next  approval.Mailer
	pause time.Duration
}

func (m slowMailer) SendApprovalRequest(ctx context.Context, e approval.ApprovalEmail) error {
	select {
	case <-time.After(m.pause):
	case <-ctx.Done():
		return ctx.Err()
	}
	return m.next.SendApprovalRequest(ctx, e)
}

// TestALiveReplicaKeepsItsBatchPastTheLease: the outbox lease is short, so that the batch of a replica
// that died is taken over within seconds; a replica that is alive but slower than one lease renews it, so
// the other replica does not take the batch over and mail every approver a second time.
func TestALiveReplicaKeepsItsBatchPastTheLease(t *testing.T) {
	const lease = 600 * time.Millisecond
	f := setupWith(t, func(c *approval.Config) { c.OutboxLease = lease; c.Now = time.Now })
	smtp, err := notify.NewSMTP(f.smtpURL, "")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := eventbus.NewPublisher(f.js, 5*time.Second)
	signer, _ := sealtest.NewKey(t)
	announcer, err := events.NewAnnouncer(pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	// The slow replica: the same database, a mailer that takes three leases per email.
	slow, err := approval.NewService(f.store, slowMailer{next: smtp, pause: 3 * lease},
		announcer, approval.Config{PublicURL: "http://gw.example", TokenTTL: time.Hour, OutboxLease: lease}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	*f.now = time.Now()
	f.request(t, "Slow mail")

	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := slow.DrainOutbox(ctx); err != nil {
			t.Errorf("slow replica: %v", err)
		}
	}()
	// Past the first lease, while the slow replica is still sending: the other replica finds nothing to do.
	time.Sleep(2 * lease)
	if err := f.svc.DrainOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := len(f.mail.Messages()); got != 2 {
		t.Errorf("the two approvers got %d emails, want one each", got)
	}
}
