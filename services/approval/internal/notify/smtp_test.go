package notify_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/notify"
	"github.com/heraldhq/herald/services/approval/mailbox"
)

func TestSendApprovalRequestOverSMTP(t *testing.T) {
	dir := t.TempDir()
	mb, err := mailbox.New(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mb.Serve(l)
	t.Cleanup(func() { srv.Close() })

	m, err := notify.NewSMTP("smtp+plain://"+l.Addr().String(), "Herald <herald@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	e := approval.ApprovalEmail{
		To: "comms@example.com", ToName: "Comms", DepartmentName: "HR", RequestedBy: "jo@example.com",
		Text: "Welcome Zoë & team <3 https://example.com/joiners", Link: "http://localhost:8080/approvals/abc123",
		ExpiresAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	}
	if err := m.SendApprovalRequest(context.Background(), e); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := mb.Messages()
	if len(msgs) != 1 {
		t.Fatalf("mailbox holds %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.Subject != "Approval needed: post from HR" || len(got.To) != 1 || got.To[0] != "comms@example.com" {
		t.Errorf("headers: subject %q, to %v", got.Subject, got.To)
	}
	for _, want := range []string{e.Text, e.Link, "jo@example.com (HR)", "Approve: " + e.Link + "?choice=approve", "Reject:  " + e.Link + "?choice=reject"} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, got.Text)
		}
	}
	for _, want := range []string{`href="http://localhost:8080/approvals/abc123?choice=approve"`, `href="http://localhost:8080/approvals/abc123?choice=reject"`} {
		if !strings.Contains(got.HTML, want) {
			t.Errorf("html body lacks %s", want)
		}
	}
	if !strings.Contains(got.HTML, `href="http://localhost:8080/approvals/abc123"`) || !strings.Contains(got.HTML, "Zoë &amp; team &lt;3") {
		t.Errorf("html body does not link the approval page or escape the text:\n%s", got.HTML)
	}

	// The mailbox keeps what it received across restarts.
	reopened, err := mailbox.New(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if msgs := reopened.Messages(); len(msgs) != 1 || msgs[0].Text != got.Text {
		t.Errorf("reopened mailbox holds %d messages, want the one sent", len(msgs))
	}

}

func TestNewSMTPRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://localhost:25", "smtp://", "smtp://host:notaport", "::", "smtps://herald:S3cr%t!pw@smtp.example:465"} {
		_, err := notify.NewSMTP(u, "")
		if err == nil {
			t.Errorf("NewSMTP(%q) accepted a bad URL", u)
			continue
		}
		// The error reaches the start-up log: it must not carry the password.
		if strings.Contains(err.Error(), "S3cr") {
			t.Errorf("NewSMTP(%q) = %v: the password is in the error", u, err)
		}
	}
}
