// Package httpapi is the gateway's HTTP surface: the connector API that department flows call
// (/v1/posts), the approvers' pages (/approvals/{token}), and /healthz, /readyz and /metrics.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/gateway/internal/connector"
	"github.com/heraldhq/herald/gateway/internal/idempotency"
	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/ops"
	"github.com/heraldhq/herald/services/heraldshared/requestid"
)

// Config tunes the handler.
type Config struct {
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// RetryAfter is what the gateway tells pollers to wait while a post is being published (approved),
	// and clients to wait after a 503.
	RetryAfter time.Duration
	// RetryAfterPending is what it tells them while a person has to decide (pending), and after a 429 for
	// too many undecided posts.
	RetryAfterPending time.Duration
	// Replicas is how many gateways share the load: each enforces 1/Replicas of an API key's rate limit.
	Replicas int
	// CSRFKey signs the approval form; every gateway replica needs the same one.
	CSRFKey []byte
	// PublicURL is the gateway as departments' platforms reach it (HERALD_PUBLIC_URL): the served
	// connector definition's host, and the base of the absolute Location the asynchronous pattern needs.
	// Empty leaves both relative to wherever the request came in.
	PublicURL string
	// TrustedProxies are the proxies whose X-Forwarded-For names the client (see clientAddr); none by
	// default, so that the peer's address is the client's.
	TrustedProxies []netip.Prefix
	// XAccount is the account the approval page says the post will go out as (HERALD_X_ACCOUNT). It is
	// shown, never checked: the publisher alone knows the account it posts as. Empty shows none.
	XAccount string
}

// Deps are what the handler talks to.
type Deps struct {
	Intake *intake.Intake
	Keys   *keyauth.Authenticator
	// Idempotency claims Idempotency-Keys in the bucket every replica shares.
	Idempotency *idempotency.Store
	Approvals   approvalv1.ApprovalServiceClient
	// Media reads the pictures of posts for the approval page.
	Media MediaReader
	// Ready reports whether the gateway can take requests (NATS connected, say).
	Ready func(ctx context.Context) error
	Log   *slog.Logger
	// Registry receives the gateway's metrics.
	Registry *prometheus.Registry
	// Now is the clock of the rate limits; nil means time.Now.
	Now func() time.Time
}

// MediaReader reads a picture, refusing bytes that do not match its hash; *media.Store implements it.
type MediaReader interface {
	Get(ctx context.Context, ref media.Ref) ([]byte, error)
}

type server struct {
	cfg  Config
	deps Deps
	// definition is the connector's OpenAPI document, made once at start.
	definition []byte
	limits     *rateLimits
	undecided  *undecidedCounts

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns the gateway's HTTP handler.
func New(cfg Config, deps Deps) (http.Handler, error) {
	if deps.Intake == nil || deps.Keys == nil || deps.Idempotency == nil || deps.Approvals == nil || deps.Media == nil || deps.Ready == nil || deps.Log == nil || deps.Registry == nil {
		return nil, errors.New("httpapi: missing dependency")
	}
	if len(cfg.CSRFKey) < 32 {
		return nil, errors.New("httpapi: the CSRF key must be at least 32 bytes")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.RetryAfterPending <= 0 {
		cfg.RetryAfterPending = 60 * time.Second
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	definition, err := connector.Definition(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	s := &server{
		cfg:        cfg,
		deps:       deps,
		definition: definition,
		limits:     newRateLimits(cfg.Replicas),
		// A second: short beside the minutes a person takes to decide, long beside a burst of requests.
		undecided: newUndecidedCounts(time.Second),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_gateway_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_gateway_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if err := errors.Join(deps.Registry.Register(s.requests), deps.Registry.Register(s.latency)); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	s.route(mux, "POST /v1/posts", s.createPost)
	s.route(mux, "GET /v1/posts/{id}", s.getPost)
	s.route(mux, "DELETE /v1/posts/{id}", s.cancelPost)
	s.route(mux, "POST /v1/subscriptions", s.createSubscription)
	s.route(mux, "GET /v1/subscriptions", s.listSubscriptions)
	s.route(mux, "DELETE /v1/subscriptions/{id}", s.deleteSubscription)
	s.route(mux, "GET /openapi.json", s.openAPI)
	s.route(mux, "GET /approvals/{token}", s.showApproval)
	s.route(mux, "GET /approvals/{token}/media/{index}", s.showMedia)
	// Where a Teams card's button leads: approvers decide through their own emailed links, never a shared one.
	s.route(mux, "GET /approvals/{$}", func(w http.ResponseWriter, _ *http.Request) {
		s.render(w, http.StatusOK, "result.html", approvalPage{Message: "Each approver decides through the personal link in the email Herald sent them: open \"Approval needed\" in your mailbox."})
	})
	// CrossOriginProtection refuses cross-site POSTs that browsers mark (Sec-Fetch-Site, Origin); the form
	// token covers clients that send neither.
	mux.Handle("POST /approvals/{token}", http.NewCrossOriginProtection().Handler(s.instrument("POST /approvals/{token}", s.decide)))
	ops.Register(mux, deps.Registry, deps.Ready)
	// Any other method on an approval link: say which ones work, without echoing the path (it is the token).
	s.route(mux, "/approvals/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, POST")
		s.fail(w, r, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "an approval link takes GET and POST only"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + redactPath(r.URL.Path)})
	})
	return s.withRequestID(mux), nil
}

func (s *server) now() time.Time { return s.deps.Now() }

func (s *server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.Handle(pattern, s.instrument(pattern, h))
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *server) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		s.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// withRequestID gives every request an id, in the response's X-Request-Id and in every log line about it.
func (s *server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestid.HTTPHeader)
		if !validRequestID(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set(requestid.HTTPHeader, id)
		// The id travels on: in the events this request publishes and in its calls to the approval service.
		next.ServeHTTP(w, r.WithContext(requestid.WithID(r.Context(), id)))
	})
}

// redactPath hides what follows /approvals/ in a path that is echoed or logged: a mistyped or oddly
// suffixed approval link (a trailing slash, say) still carries the approver's token.
func redactPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/approvals/"); ok && rest != "" {
		return "/approvals/…"
	}
	return p
}

// validRequestID accepts a caller's request id only if it is short and plain, since it ends up in logs,
// headers and events.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// logAt logs a line about request r with its request id and route. Not a logger made per request with
// Logger.With: that copied the handler and formatted both attributes for every request, whether anything
// was logged or not (7 % of the gateway's CPU at intake).
func (s *server) logAt(ctx context.Context, r *http.Request, level slog.Level, msg string, args ...any) {
	if !s.deps.Log.Enabled(ctx, level) {
		return
	}
	// The route pattern, not the path: approval paths carry the approver's secret token.
	attrs := make([]any, 0, len(args)+4)
	attrs = append(attrs, "request_id", requestid.FromContext(ctx), "route", r.Pattern)
	s.deps.Log.Log(ctx, level, msg, append(attrs, args...)...)
}

// fail answers with the JSON error shape every endpoint uses.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 {
		s.logAt(r.Context(), r, slog.LevelError, "request failed", "status", ae.Status, "err", err)
	} else {
		s.logAt(r.Context(), r, slog.LevelInfo, "request refused", "status", ae.Status, "code", ae.Code, "err", ae.Message)
	}
	switch {
	case ae.retryAfter > 0:
		// Rounded up: a client that waits exactly this long must find a try available.
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.retryAfter.Seconds()))))
	case ae.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds())))
	}
	writeJSON(w, ae.Status, map[string]*apiError{"error": ae})
}
