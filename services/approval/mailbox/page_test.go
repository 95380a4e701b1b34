package mailbox

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMessagePageLinksURLsAndEscapesEverythingElse(t *testing.T) {
	mb, err := New("", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	raw := "From: Herald <herald@localhost>\r\nTo: comms@example.com\r\nSubject: =?UTF-8?q?Approval_needed=3A_Zo=C3=AB?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"<script>alert(1)</script> review http://localhost:8080/approvals/abc_123 now\r\n"
	if err := mb.receive("herald@localhost", []string{"comms@example.com"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mb.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	page := get("/messages/1")
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("the message page does not escape the mail's text:\n%s", page)
	}
	if !strings.Contains(page, `<a href="http://localhost:8080/approvals/abc_123">`) {
		t.Errorf("the approval link is not clickable:\n%s", page)
	}
	if list := get("/"); !strings.Contains(list, "Approval needed: Zoë") {
		t.Errorf("the list does not show the decoded subject:\n%s", list)
	}
	if got := get("/messages/2"); !strings.Contains(got, "no such message") {
		t.Errorf("unknown message: %q", got)
	}
}
