package xsandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/publisher/internal/xapi"
	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

func TestFaultsEndpoint(t *testing.T) {
	t.Parallel()
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	post := func(body string) int {
		resp, err := http.Post(srv.URL+"/_sandbox/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		body string
		want int
	}{
		{`{"status": 503, "count": 1000}`, 204}, // the original shape still works
		{`{"status": 429, "retry_after_seconds": 90}`, 204},
		{`{"mode": "create_then_status"}`, 204},
		{`{"mode": "create_then_status", "status": 502}`, 204},
		{`{"mode": "create_then_drop", "count": 2}`, 204},
		{`{"mode": "hang"}`, 204},
		{`{"mode": "create_then_hang"}`, 204},
		{`{"status": 200}`, 400},
		{`{}`, 400},
		{`{"mode": "explode"}`, 400},
		{`{"mode": "hang", "status": 503}`, 400},
		{`{"status": 503, "extra": 1}`, 400},
	}
	for _, tt := range tests {
		if got := post(tt.body); got != tt.want {
			t.Errorf("POST /_sandbox/faults %s = %d, want %d", tt.body, got, tt.want)
		}
	}
	resp, err := http.Get(srv.URL + "/_sandbox/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Pending []xsandbox.Fault       `json:"pending"`
		Served  []xsandbox.ServedFault `json:"served"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Pending) != 7 || got.Pending[0].Mode != xsandbox.ModeStatus || got.Pending[2].Status != 503 {
		t.Errorf("pending faults = %+v", got.Pending)
	}
}

func TestPageShowsServedFaults(t *testing.T) {
	t.Parallel()
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	sb.InjectFault(xsandbox.Fault{Mode: xsandbox.ModeCreateThenStatus, Status: 503})
	page := func() string {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if strings.Contains(page(), "Faults served") {
		t.Error("the page lists served faults before any was served")
	}
	cl, err := xapi.New(srv.URL, xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Post(context.Background(), "Served a fault", nil); err == nil {
		t.Fatal("the fault was not applied")
	}
	served := sb.Served()
	if len(served) != 1 || served[0].Mode != xsandbox.ModeCreateThenStatus || served[0].Status != 503 || served[0].TweetID != sb.Tweets()[0].ID {
		t.Fatalf("served = %+v", served)
	}
	if p := page(); !strings.Contains(p, "Faults served") || !strings.Contains(p, "create_then_status 503 · created #"+served[0].TweetID) {
		t.Errorf("the page does not show the served fault:\n%s", p)
	}
}
