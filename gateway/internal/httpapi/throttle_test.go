package httpapi_test

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBadKeysAreAnsweredTooManyRequests: after ten bad keys from one address, the eleventh request from it
// is a 429 with Retry-After, while another address still gets its 401 and a known key keeps working.
func TestBadKeysAreAnsweredTooManyRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	get := func(key, remote string) int {
		req := httptest.NewRequest("GET", "/v1/posts/"+publishedID, nil)
		req.Header.Set("X-API-Key", key)
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code == 429 && w.Header().Get("Retry-After") != "6" {
			t.Errorf("429 with Retry-After %q, want 6 (a try every 60 s / 10)", w.Header().Get("Retry-After"))
		}
		return w.Code
	}
	if code := get(hrKey, "203.0.113.7:5000"); code != 200 {
		t.Fatalf("valid key: %d", code)
	}
	for i := range 10 {
		if code := get("hk_guess_"+strings.Repeat("x", i), "203.0.113.7:5000"); code != 401 {
			t.Fatalf("bad key %d: %d, want 401", i, code)
		}
	}
	tt := routeTest{
		wantStatus: 429, wantHeader: map[string]string{"Retry-After": "6"},
		wantJSON: errJSON("too_many_requests", "too many invalid API keys from this address; wait before trying again", ""),
	}
	req := httptest.NewRequest("GET", "/v1/posts/"+publishedID, nil)
	req.Header.Set("X-API-Key", "hk_guess_again")
	req.RemoteAddr = "203.0.113.7:5001"
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	tt.check(t, w.Result())
	if code := get("hk_guess", "203.0.113.8:5000"); code != 401 {
		t.Errorf("bad key from another address: %d, want 401", code)
	}
	if code := get(hrKey, "203.0.113.7:5000"); code != 200 {
		t.Errorf("known valid key from the throttled address: %d, want 200", code)
	}
}

// TestDecisionOriginBehindTrustedProxies: the origin recorded with a decision is the client's address as
// the trusted proxy in front reports it; X-Forwarded-For from anyone else is ignored.
func TestDecisionOriginBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	e := setup(t, options{trustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	csrf := csrfFor(t, e, openLink)
	decide := func(remote, xff string) {
		req := httptest.NewRequest("POST", "/approvals/"+openLink, strings.NewReader("csrf="+csrf+"&decision=approve"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("decision: %d %s", w.Code, w.Body)
		}
	}
	decide("192.0.2.10:443", "203.0.113.66, 198.51.100.7")
	decide("198.51.100.20:443", "203.0.113.66")
	e.approvals.mu.Lock()
	defer e.approvals.mu.Unlock()
	var got []string
	for _, d := range e.approvals.decisions {
		got = append(got, d.GetOrigin())
	}
	if diff := cmp.Diff([]string{"198.51.100.7", "198.51.100.20"}, got); diff != "" {
		t.Errorf("origins (-want +got):\n%s", diff)
	}
}
