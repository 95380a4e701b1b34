package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestCheckAddrRefusesEveryNonPublicAddress(t *testing.T) {
	t.Parallel()
	strict := Guard{}
	demo := Guard{AllowLoopback: true}
	refused := []string{
		"127.0.0.1", "127.1.2.3", "::1", // loopback
		"10.0.0.1", "172.16.5.4", "192.168.1.1", "fc00::1", "fd12:3456::1", // private
		"169.254.169.254", "169.254.0.1", "fe80::1", // link-local, the metadata service among them
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", // multicast
		"0.0.0.0", "::", // unspecified
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", // IPv4-mapped
		"100.64.0.1", "0.1.2.3", "255.255.255.255", "198.18.0.1", // special-purpose IPv4
		"64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", // NAT64 and 6to4 around the metadata address
	}
	for _, s := range refused {
		a := netip.MustParseAddr(s)
		if err := strict.CheckAddr(a); !errors.Is(err, ErrRefusedAddress) {
			t.Errorf("CheckAddr(%s) = %v, want refused", s, err)
		}
		loop := a.Unmap().IsLoopback()
		if err := demo.CheckAddr(a); loop != (err == nil) {
			t.Errorf("with loopback allowed, CheckAddr(%s) = %v; only loopback may pass", s, err)
		}
	}
	for _, s := range []string{"93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"} {
		if err := strict.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed (public)", s, err)
		}
	}
}

// lookupTo answers every lookup with addr, whatever the name: a DNS server under an attacker's control.
func lookupTo(addr string) func(context.Context, string) ([]netip.Addr, error) {
	return func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr(addr)}, nil
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := Guard{}
	for _, tc := range []struct{ url, want string }{
		{"http://93.184.216.34/hook", "https"},
		{"ftp://93.184.216.34/hook", "https"},
		{"https://127.0.0.1/hook", "loopback"},
		{"https://[::1]/hook", "loopback"},
		{"https://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://[::ffff:169.254.169.254]/", "link-local"},
		{"https://10.1.2.3/hook", "private"},
		{"https://[fd00::1]/hook", "private"},
		{"https://239.1.2.3/hook", "multicast"},
		{"https://0.0.0.0/hook", "unspecified"},
		{"https://no-such-host.invalid/hook", "does not resolve"},
	} {
		err := g.CheckURL(ctx, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckURL(%s) = %v, want an error saying %q", tc.url, err, tc.want)
		}
	}
	if err := g.CheckURL(ctx, "https://93.184.216.34/hook"); err != nil {
		t.Errorf("public https URL refused: %v", err)
	}
	if err := (Guard{AllowHTTP: true}).CheckURL(ctx, "http://93.184.216.34/hook"); err != nil {
		t.Errorf("http refused where the operator allows it: %v", err)
	}
	// A name is checked by what it resolves to: one that points at the metadata service is refused.
	rebind := Guard{Lookup: lookupTo("169.254.169.254")}
	if err := rebind.CheckURL(ctx, "https://hooks.example.com/x"); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("a name resolving to 169.254.169.254 passed: %v", err)
	}
}

func TestSignMatchesTheStandardWebhooksLibrary(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"post.published","data":{"id":"x"}}`)
	ts := time.Now()
	sig, err := Sign(testSecret, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, fmtUnix(ts))
	h.Set(HeaderSignature, sig)
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("the official library refuses our signature: %v", err)
	}
	// And by hand, from the specification: base64(HMAC-SHA256(key, "id.ts.body")), key base64-decoded.
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("msg_1." + fmtUnix(ts) + "." + string(body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); sig != want {
		t.Fatalf("signature %s, want %s", sig, want)
	}
	// A body changed on the way no longer verifies.
	if err := wh.Verify([]byte(`{"type":"post.published","data":{"id":"y"}}`), h); err == nil {
		t.Fatal("a tampered body verified")
	}
	if _, err := Sign("whsec_!!!", "m", ts, body); err == nil {
		t.Fatal("a secret that is not base64 signed something")
	}
}

func fmtUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestSendSignsPostsAndVerifies(t *testing.T) {
	t.Parallel()
	var got atomic.Pointer[http.Request]
	var gotBody atomic.Pointer[[]byte]
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r)
		gotBody.Store(&b)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	s := testSender(t, srv, Guard{AllowLoopback: true})
	body := []byte(`{"type":"post.rejected"}`)
	m := approval.WebhookMessage{URL: srv.URL + "/hook?sig=receiver-secret", Secret: testSecret, ID: "msg_42", Timestamp: time.Now(), Body: body}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r := got.Load()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get(HeaderID) != "msg_42" {
		t.Fatalf("request %s %v", r.Method, r.Header)
	}
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	if err := wh.Verify(*gotBody.Load(), r.Header); err != nil {
		t.Fatalf("the delivery does not verify with the official library: %v", err)
	}
}

func TestSendFailsOnAnythingButA2xx(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusBadRequest, http.StatusInternalServerError} {
		var followed atomic.Bool
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed.Store(true)
				return
			}
			if code/100 == 3 {
				http.Redirect(w, r, "/elsewhere", code)
				return
			}
			w.WriteHeader(code)
		}))
		s := testSender(t, srv, Guard{AllowLoopback: true})
		err := s.Send(context.Background(), approval.WebhookMessage{URL: srv.URL + "/hook", Secret: testSecret, ID: "m", Timestamp: time.Now(), Body: []byte("{}")})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), http.StatusText(code)) {
			t.Errorf("answer %d: Send = %v, want a failure naming it", code, err)
		}
		if followed.Load() {
			t.Errorf("answer %d: the redirect was followed", code)
		}
	}
}

// TestSendRefusesAtConnectionTime is the DNS-rebinding case: the name passed the check at registration,
// and now resolves to a refused address. The dialer's Control hook sees the address actually dialled.
func TestSendRefusesAtConnectionTime(t *testing.T) {
	t.Parallel()
	var reached atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }))
	t.Cleanup(srv.Close)
	s := testSender(t, srv, Guard{})
	// The transport is pointed at the loopback server whatever the URL says, as a rebinding DNS would.
	tr := s.client.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, srv.Listener.Addr().String())
	}
	err := s.Send(context.Background(), approval.WebhookMessage{URL: "https://93.184.216.34/hook", Secret: testSecret, ID: "m", Timestamp: time.Now(), Body: []byte("{}")})
	if !errors.Is(err, ErrRefusedAddress) || reached.Load() {
		t.Fatalf("Send = %v (receiver reached: %v), want the connection refused", err, reached.Load())
	}
	// The URL itself is checked again too (a plain-http URL after the operator turned http off).
	err = s.Send(context.Background(), approval.WebhookMessage{URL: "http://93.184.216.34/hook", Secret: testSecret, ID: "m", Timestamp: time.Now(), Body: []byte("{}")})
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("plain http sent: %v", err)
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(func() { close(release); srv.Close() })
	s := testSender(t, srv, Guard{AllowLoopback: true})
	s.client.Timeout = 200 * time.Millisecond // Timeout (15 s) shortened for the test
	err := s.Send(context.Background(), approval.WebhookMessage{URL: srv.URL, Secret: testSecret, ID: "m", Timestamp: time.Now(), Body: []byte("{}")})
	if err == nil || !strings.Contains(err.Error(), "Timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Send = %v, want a timeout", err)
	}
	if strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("the error names the URL: %v", err)
	}
}

// testSender is NewSender(g) trusting srv's certificate, with everything else as in production.
func testSender(t *testing.T, srv *httptest.Server, g Guard) *Sender {
	t.Helper()
	s := NewSender(g)
	tr := s.client.Transport.(*http.Transport)
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	if s.client.Timeout != Timeout || tr.Proxy != nil || s.client.CheckRedirect == nil {
		t.Fatalf("the sender's client: timeout %v, proxy set %v, redirects checked %v", s.client.Timeout, tr.Proxy != nil, s.client.CheckRedirect != nil)
	}
	return s
}
