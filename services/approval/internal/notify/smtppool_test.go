package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/notify"
	"github.com/heraldhq/herald/services/approval/mailbox"
)

// countingListener counts the connections the SMTP sink accepts and how many are open at once, and can
// cut them all, as a server dropping idle sessions does.
type countingListener struct {
	net.Listener
	mu             sync.Mutex
	accepted, open int
	maxOpen        int
	conns          map[net.Conn]bool
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted++
	l.open++
	l.maxOpen = max(l.maxOpen, l.open)
	l.conns[c] = true
	return &countedConn{Conn: c, l: l}, nil
}

func (l *countingListener) cutAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

func (l *countingListener) counts() (accepted, maxOpen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted, l.maxOpen
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func sink(t *testing.T) (*mailbox.Mailbox, *countingListener) {
	t.Helper()
	mb, err := mailbox.New(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: inner, conns: map[net.Conn]bool{}}
	srv := mb.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return mb, l
}

func email(i int) approval.ApprovalEmail {
	return approval.ApprovalEmail{
		To: fmt.Sprintf("comms-%d@example.com", i), ToName: "Comms", DepartmentName: "HR", RequestedBy: "jo@example.com",
		Text: fmt.Sprintf("Post number %d", i), Link: fmt.Sprintf("http://localhost:8080/approvals/link%d", i),
		ExpiresAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	}
}

// TestPoolReusesBoundedConnections: many emails sent at once go over at most the pool's connections, which
// are reused, and every email arrives once.
func TestPoolReusesBoundedConnections(t *testing.T) {
	mb, l := sink(t)
	m, err := notify.NewSMTPPool("smtp+plain://"+l.Addr().String(), "", 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- m.SendApprovalRequest(context.Background(), email(i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("send: %v", err)
		}
	}
	accepted, maxOpen := l.counts()
	if accepted > 3 || maxOpen > 3 {
		t.Errorf("the sink saw %d connections, at most %d at once; want at most 3 (the pool's size)", accepted, maxOpen)
	}
	got := map[string]int{}
	for _, msg := range mb.Messages() {
		got[msg.To[0]]++
	}
	for i := range n {
		if to := email(i).To; got[to] != 1 {
			t.Errorf("%s received %d emails, want 1", to, got[to])
		}
	}
}

// TestPoolReconnectsAfterTheServerDropsIt: when the server has closed the pooled connections, the next
// email goes out over a new one, once.
func TestPoolReconnectsAfterTheServerDropsIt(t *testing.T) {
	mb, l := sink(t)
	m, err := notify.NewSMTPPool("smtp+plain://"+l.Addr().String(), "", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	if err := m.SendApprovalRequest(ctx, email(1)); err != nil {
		t.Fatal(err)
	}
	l.cutAll()
	if err := m.SendApprovalRequest(ctx, email(2)); err != nil {
		t.Fatalf("send after the server dropped the connection: %v", err)
	}
	if accepted, _ := l.counts(); accepted != 2 {
		t.Errorf("the sink saw %d connections, want 2 (the first, then one replacing it)", accepted)
	}
	msgs := mb.Messages()
	if len(msgs) != 2 || msgs[0].To[0] != email(1).To || msgs[1].To[0] != email(2).To {
		t.Errorf("mailbox = %d messages, want the two emails once each", len(msgs))
	}
}
