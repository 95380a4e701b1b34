package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/notify"
	"github.com/heraldhq/herald/services/approval/mailbox"
)

// Replicas runs two approval services on one database, as two replicas of the approval service would,
// and has both drain the outbox at the same time, twice each, mailing through the real SMTP client (a pool
// of two connections each, eight deliveries at a time) to the local mailbox: every approver must get
// exactly one email per post, and every link mailed must work. open returns two stores on the same
// database.
func Replicas(t *testing.T, open func(t *testing.T) (approval.Store, approval.Store)) {
	t.Helper()
	ctx := context.Background()
	a, b := open(t)
	mb, err := mailbox.New(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mb.Serve(l)
	t.Cleanup(func() { srv.Close() })
	svc := func(s approval.Store) *approval.Service {
		mail, err := notify.NewSMTPPool("smtp+plain://"+l.Addr().String(), "", 2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mail.Close() })
		v, err := approval.NewService(s, mail, nopAnnouncer{}, approval.Config{PublicURL: "http://herald.test", Now: func() time.Time { return at }, OutboxConcurrency: 8}, slog.New(slog.DiscardHandler))
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
	const approvers, posts = 4, 30
	for i := range approvers {
		if _, err := replicas[1].AddApprover(ctx, fmt.Sprintf("comms-%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range posts {
		r := approval.Request{PostID: uuid.NewString(), DepartmentID: d.ID, Text: fmt.Sprintf("Post %d", i), RequestedBy: "hr@example.com"}
		if err := replicas[i%2].Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			<-start
			errs <- replicas[i%2].DrainOutbox(ctx)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("DrainOutbox: %v", err)
		}
	}

	sent := map[string]int{}
	links := regexp.MustCompile(`http://herald\.test/approvals/([A-Za-z0-9_-]+)`)
	for _, m := range mb.Messages() {
		post := regexp.MustCompile(`Post \d+`).FindString(m.Text)
		sent[m.To[0]+" "+post]++
		link := links.FindStringSubmatch(m.Text)
		if link == nil {
			t.Errorf("email to %s has no approval link:\n%s", m.To[0], m.Text)
			continue
		}
		if _, err := a.GetToken(ctx, approval.HashSecret(link[1])); err != nil {
			t.Errorf("the link mailed to %s about %s does not work: %v", m.To[0], post, err)
		}
	}
	if len(sent) != approvers*posts {
		t.Errorf("%d approver-post pairs mailed, want %d", len(sent), approvers*posts)
	}
	for k, n := range sent {
		if n != 1 {
			t.Errorf("%s got %d emails, want 1", k, n)
		}
	}
	if due, err := a.DueOutbox(ctx, at.Add(time.Hour), 100); err != nil || len(due) != 0 {
		t.Errorf("outbox after draining = %d items, %v; want empty", len(due), err)
	}
}

// countingMailer counts approval emails per approver and post.
type countingMailer struct {
	mu   sync.Mutex
	sent map[string]int
}

func (m *countingMailer) SendApprovalRequest(_ context.Context, e approval.ApprovalEmail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent[e.To+" "+e.Text]++
	return nil
}

type nopAnnouncer struct{}

func (nopAnnouncer) PostApproved(context.Context, approval.Post) error  { return nil }
func (nopAnnouncer) PostRejected(context.Context, approval.Post) error  { return nil }
func (nopAnnouncer) PostExpired(context.Context, approval.Post) error   { return nil }
func (nopAnnouncer) PostCancelled(context.Context, approval.Post) error { return nil }

// ReplicasExpire has two approval services sweep the same overdue posts at the same time, several sweeps
// each, as replicas' outbox loops do: every post must expire exactly once (one audit entry, one
// PostExpired announcement), whichever replica moved it. open returns two stores on the same database.
func ReplicasExpire(t *testing.T, open func(t *testing.T) (approval.Store, approval.Store)) {
	t.Helper()
	ctx := context.Background()
	a, b := open(t)
	svcAt := func(s approval.Store, now time.Time) *approval.Service {
		v, err := approval.NewService(s, &countingMailer{sent: map[string]int{}}, nopAnnouncer{}, approval.Config{PublicURL: "http://herald.test", Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	creator := svcAt(a, at)
	d, err := creator.CreateDepartment(ctx, "HR")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creator.AddApprover(ctx, "comms@example.com", ""); err != nil {
		t.Fatal(err)
	}
	const posts = 30
	ids := make([]string, posts)
	for i := range ids {
		ids[i] = uuid.NewString()
		if err := creator.Submit(ctx, approval.Request{PostID: ids[i], DepartmentID: d.ID, Text: fmt.Sprintf("Post %d", i), RequestedBy: "hr@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	// A year later every post is overdue; two replicas sweep at once, three times each.
	later := at.Add(365 * 24 * time.Hour)
	replicas := []*approval.Service{svcAt(a, later), svcAt(b, later)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	moved := 0
	for i := range 6 {
		wg.Go(func() {
			<-start
			n, err := replicas[i%2].ExpireOverdue(ctx)
			if err != nil {
				t.Errorf("ExpireOverdue: %v", err)
			}
			mu.Lock()
			moved += n
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if moved != posts {
		t.Errorf("the sweeps moved %d posts together, want each of the %d once", moved, posts)
	}
	expiredAnnouncements := map[string]int{}
	due, err := a.DueOutbox(ctx, later.Add(time.Hour), 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range due {
		if it.Kind == approval.OutboxPostExpired {
			expiredAnnouncements[it.PostID]++
		}
	}
	for _, id := range ids {
		p, err := b.GetPost(ctx, id)
		if err != nil || p.Status != approval.StatusExpired {
			t.Errorf("post %s: %s, %v; want expired", id, p.Status, err)
		}
		entries, err := replicas[0].ListAudit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		expired := 0
		for _, e := range entries {
			if e.Action == "expired" {
				expired++
			}
		}
		if expired != 1 || expiredAnnouncements[id] != 1 {
			t.Errorf("post %s: %d expiry audit entries and %d PostExpired announcements, want 1 and 1", id, expired, expiredAnnouncements[id])
		}
	}
}
