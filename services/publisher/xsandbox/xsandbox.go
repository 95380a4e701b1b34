// Package xsandbox is a stand-in for the X API for machines without internet: it serves the real v2
// endpoints Herald uses (POST /2/tweets, GET /2/users/me, GET /2/users/{id}/tweets) with X's JSON shapes,
// checks OAuth 1.0a signatures, refuses duplicate text with X's 403, enforces a rate limit with X's
// headers and 429, and shows what was posted on a web page. Faults can be injected for tests.
package xsandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Config configures the sandbox. The credentials are the ones the publisher must sign with.
type Config struct {
	ConsumerKey       string
	ConsumerSecret    string
	AccessToken       string
	AccessTokenSecret string
	// Username is the account's handle, shown on the page and by /2/users/me.
	Username string
	// TweetsPerWindow is the rate limit of POST /2/tweets per 15-minute window (default 100).
	TweetsPerWindow int
	// DataFile, if set, keeps the timeline across restarts.
	DataFile string
}

// Tweet is a post the sandbox accepted.
type Tweet struct {
	ID        string    `json:"id"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
	// ConsumerKey and SignatureMethod are from the request's verified OAuth 1.0a header.
	ConsumerKey     string `json:"consumer_key"`
	SignatureMethod string `json:"signature_method"`
}

// Fault makes the next Count POST /2/tweets requests fail with Status.
type Fault struct {
	Status int `json:"status"`
	Count  int `json:"count"`
	// RetryAfterSeconds sets x-rate-limit-reset for a 429.
	RetryAfterSeconds int `json:"retry_after_seconds"`
}

// userID is the sandbox account's id.
const userID = "1850000000000000001"

const window = 15 * time.Minute

// Sandbox is a running X API stand-in.
type Sandbox struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu          sync.Mutex
	tweets      []Tweet
	nextID      uint64
	windowStart time.Time
	used        int
	faults      []Fault
}

// New returns a sandbox, loading its timeline from cfg.DataFile if that exists.
func New(cfg Config, log *slog.Logger) (*Sandbox, error) {
	if cfg.ConsumerKey == "" || cfg.ConsumerSecret == "" || cfg.AccessToken == "" || cfg.AccessTokenSecret == "" {
		return nil, errors.New("xsandbox: all four OAuth 1.0a credentials are required")
	}
	if log == nil {
		return nil, errors.New("xsandbox: nil logger")
	}
	if cfg.Username == "" {
		cfg.Username = "contoso"
	}
	if cfg.TweetsPerWindow <= 0 {
		cfg.TweetsPerWindow = 100
	}
	s := &Sandbox{cfg: cfg, log: log, now: time.Now, nextID: 1850000000000000100}
	if cfg.DataFile != "" {
		b, err := os.ReadFile(cfg.DataFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("xsandbox: %w", err)
		default:
			if err := json.Unmarshal(b, &s.tweets); err != nil {
				return nil, fmt.Errorf("xsandbox: %s: %w", cfg.DataFile, err)
			}
			for _, t := range s.tweets {
				if id, err := strconv.ParseUint(t.ID, 10, 64); err == nil && id >= s.nextID {
					s.nextID = id + 1
				}
			}
		}
	}
	return s, nil
}

// Tweets returns the timeline, oldest first.
func (s *Sandbox) Tweets() []Tweet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Tweet(nil), s.tweets...)
}

// InjectFault queues a fault for the next POST /2/tweets requests.
func (s *Sandbox) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	s.faults = append(s.faults, f)
}

// problem is an X API v2 error body.
type problem struct {
	Title  string         `json:"title"`
	Detail string         `json:"detail"`
	Type   string         `json:"type"`
	Status int            `json:"status,omitempty"`
	Errors []problemEntry `json:"errors,omitempty"`
}

type problemEntry struct {
	Message string `json:"message"`
}

// create applies X's rules to a new tweet; it returns the tweet or the status and problem X would answer.
func (s *Sandbox) create(text, consumerKey string) (Tweet, int, *problem, rateState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.windowStart) >= window {
		s.windowStart, s.used = now, 0
	}
	rl := rateState{limit: s.cfg.TweetsPerWindow, reset: s.windowStart.Add(window)}
	if len(s.faults) > 0 {
		f := &s.faults[0]
		f.Count--
		status := f.Status
		if f.RetryAfterSeconds > 0 {
			rl.reset = now.Add(time.Duration(f.RetryAfterSeconds) * time.Second)
		}
		if f.Count <= 0 {
			s.faults = s.faults[1:]
		}
		rl.remaining = max(0, rl.limit-s.used)
		return Tweet{}, status, &problem{Title: http2Title(status), Detail: http2Title(status), Type: "about:blank", Status: status}, rl
	}
	if s.used >= s.cfg.TweetsPerWindow {
		return Tweet{}, 429, &problem{Title: "Too Many Requests", Detail: "Too Many Requests", Type: "about:blank", Status: 429}, rl
	}
	s.used++
	rl.remaining = rl.limit - s.used
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		return Tweet{}, 400, &problem{Title: "Invalid Request", Detail: "One or more parameters to your request was invalid.",
			Type: "https://api.twitter.com/2/problems/invalid-request", Errors: []problemEntry{{Message: "$.text: must not be empty"}}}, rl
	case n > 280:
		return Tweet{}, 403, &problem{Title: "Forbidden", Detail: "Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text.", Type: "about:blank", Status: 403}, rl
	}
	for _, t := range s.tweets {
		if t.Text == text {
			return Tweet{}, 403, &problem{Title: "Forbidden", Detail: "You are not allowed to create a Tweet with duplicate content.", Type: "about:blank", Status: 403}, rl
		}
	}
	t := Tweet{ID: strconv.FormatUint(s.nextID, 10), Text: text, CreatedAt: now.UTC(), ConsumerKey: consumerKey, SignatureMethod: "HMAC-SHA1"}
	s.nextID++
	s.tweets = append(s.tweets, t)
	if err := s.save(); err != nil {
		s.log.Error("xsandbox: could not keep the timeline on disk", "err", err)
	}
	return t, 201, nil, rl
}

func (s *Sandbox) save() error {
	if s.cfg.DataFile == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.tweets, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.cfg.DataFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.cfg.DataFile)
}

type rateState struct {
	limit, remaining int
	reset            time.Time
}

func http2Title(status int) string {
	switch status {
	case 429:
		return "Too Many Requests"
	case 500:
		return "Internal Server Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	default:
		return "Error"
	}
}
