// Package xsandbox is a stand-in for the X API for machines without internet: it serves the real v2
// endpoints Herald uses (POST /2/tweets, GET /2/users/me, GET /2/users/{id}/tweets) and the v1.1 ones of
// the v1.1 channel (statuses/update, account/verify_credentials, statuses/user_timeline) with X's JSON
// shapes and error bodies, checks OAuth 1.0a signatures, refuses duplicate text with X's 403, enforces a
// rate limit with X's headers and 429, stores text as X does (t.co links, HTML entities), shows a new
// post on the timeline after a configurable delay, and shows what was posted on a web page. Faults can be
// injected (POST /_sandbox/faults): answer a status, create and then answer a status, create and drop the
// connection, hang past the client's timeout.
package xsandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
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
	// VisibilityDelay is how long a new tweet takes to show on the user timeline, as on X (default none).
	VisibilityDelay time.Duration
	// Now is the sandbox's clock (time.Now when nil): tests share one with the publisher.
	Now func() time.Time
	// SelfServe makes the account one of X's self-serve access levels, which may not post or read
	// timelines through v1.1: those calls answer error 453, as X does.
	SelfServe bool
}

// Tweet is a post the sandbox accepted.
type Tweet struct {
	ID string `json:"id"`
	// Text is the text as sent; XText is as X stores and shows it, with every URL a t.co link and &, <
	// and > as HTML entities. The API answers with XText.
	Text      string    `json:"text"`
	XText     string    `json:"x_text,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ConsumerKey and SignatureMethod are from the request's verified OAuth 1.0a header.
	ConsumerKey     string `json:"consumer_key"`
	SignatureMethod string `json:"signature_method"`
	// Media are the ids of the pictures posted with the text.
	Media []string `json:"media,omitempty"`
}

// Fault makes the next Count POST /2/tweets requests fail. Mode says how; without one the request is
// answered Status and nothing is created (the original fault).
type Fault struct {
	// Status is the answer for ModeStatus and ModeCreateThenStatus (default 503 for the latter).
	Status int `json:"status"`
	Count  int `json:"count"`
	// RetryAfterSeconds sets x-rate-limit-reset (a 429's reset time).
	RetryAfterSeconds int `json:"retry_after_seconds"`
	// Mode is one of the Mode constants; empty means ModeStatus.
	Mode string `json:"mode,omitempty"`
}

// The ways a fault fails a request.
const (
	// ModeStatus answers Status and creates nothing.
	ModeStatus = "status"
	// ModeCreateThenStatus creates the tweet, then answers Status, as a proxy in front of X might.
	ModeCreateThenStatus = "create_then_status"
	// ModeCreateThenDrop creates the tweet, then closes the connection without an answer.
	ModeCreateThenDrop = "create_then_drop"
	// ModeHang holds the request, creating nothing, until the client gives up.
	ModeHang = "hang"
	// ModeCreateThenHang creates the tweet, then holds the request until the client gives up.
	ModeCreateThenHang = "create_then_hang"
)

func (f Fault) creates() bool {
	return f.Mode == ModeCreateThenStatus || f.Mode == ModeCreateThenDrop || f.Mode == ModeCreateThenHang
}

// validate checks a fault as the faults endpoint receives it and fills in defaults.
func (f *Fault) validate() error {
	switch f.Mode {
	case "", ModeStatus:
		f.Mode = ModeStatus
		if f.Status < 400 || f.Status > 599 {
			return errors.New("status must be 4xx or 5xx")
		}
	case ModeCreateThenStatus:
		if f.Status == 0 {
			f.Status = 503
		}
		if f.Status < 400 || f.Status > 599 {
			return errors.New("status must be 4xx or 5xx")
		}
	case ModeCreateThenDrop, ModeHang, ModeCreateThenHang:
		if f.Status != 0 {
			return fmt.Errorf("mode %s answers no status", f.Mode)
		}
	default:
		return fmt.Errorf("unknown mode %q", f.Mode)
	}
	if f.Count <= 0 {
		f.Count = 1
	}
	return nil
}

// ServedFault is a fault the sandbox applied to one request.
type ServedFault struct {
	At     time.Time `json:"at"`
	Mode   string    `json:"mode"`
	Status int       `json:"status,omitempty"`
	// TweetID is the tweet the request created despite the fault ("" when none).
	TweetID string `json:"tweet_id,omitempty"`
}

// userID is the sandbox account's id.
const userID = "1850000000000000001"

const window = 15 * time.Minute

// Sandbox is a running X API stand-in.
type Sandbox struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	uploads *uploads

	mu          sync.Mutex
	tweets      []Tweet
	nextID      uint64
	windowStart time.Time
	used        int
	faults      []Fault
	served      []ServedFault
	postCalls   int
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
	s := &Sandbox{cfg: cfg, log: log, now: time.Now, nextID: 1850000000000000100, uploads: newUploads()}
	if cfg.Now != nil {
		s.now = cfg.Now
	}
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
			for i, t := range s.tweets {
				if t.XText == "" {
					s.tweets[i].XText = xText(t.Text, t.ID)
				}
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

// InjectFault queues a fault for the next POST /2/tweets requests. It panics on a fault the faults
// endpoint would refuse: tests should not quietly inject nothing.
func (s *Sandbox) InjectFault(f Fault) {
	if err := f.validate(); err != nil {
		panic("xsandbox: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Served returns the faults served so far, oldest first (the last 100).
func (s *Sandbox) Served() []ServedFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ServedFault(nil), s.served...)
}

// PostCalls is how many POST /2/tweets requests reached the sandbox with a valid signature.
func (s *Sandbox) PostCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.postCalls
}

// duplicateDetail is X's v2 answer to a text the account already posted.
const duplicateDetail = "You are not allowed to create a Tweet with duplicate content."

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

// create applies X's rules to a new tweet; it returns the tweet or the status and problem X would answer,
// and the fault to apply to the answer, if any.
func (s *Sandbox) create(text, consumerKey string) (Tweet, int, *problem, rateState, *Fault) {
	return s.createWithMedia(text, consumerKey, nil)
}

// createWithMedia is create for a tweet with pictures (their media ids, checked already).
func (s *Sandbox) createWithMedia(text, consumerKey string, mediaIDs []string) (Tweet, int, *problem, rateState, *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.postCalls++
	now := s.now()
	// Windows start on a whole second, since x-rate-limit-reset is in seconds.
	if !now.Before(s.windowStart.Add(window)) {
		s.windowStart, s.used = now.Truncate(time.Second), 0
	}
	rl := rateState{limit: s.cfg.TweetsPerWindow, reset: s.windowStart.Add(window)}
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		fault = &f
		s.faults[0].Count--
		if s.faults[0].Count <= 0 {
			s.faults = s.faults[1:]
		}
		if f.RetryAfterSeconds > 0 {
			rl.reset = now.Add(time.Duration(f.RetryAfterSeconds) * time.Second)
		}
		if !f.creates() {
			rl.remaining = max(0, rl.limit-s.used)
			s.serve(ServedFault{At: now.UTC(), Mode: f.Mode, Status: f.Status})
			if f.Mode == ModeHang {
				return Tweet{}, 0, nil, rl, fault
			}
			return Tweet{}, f.Status, &problem{Title: http2Title(f.Status), Detail: http2Title(f.Status), Type: "about:blank", Status: f.Status}, rl, fault
		}
	}
	t, status, prob, rl := s.createLocked(now, text, consumerKey, rl, mediaIDs)
	if fault != nil {
		s.serve(ServedFault{At: now.UTC(), Mode: fault.Mode, Status: fault.Status, TweetID: t.ID})
		if prob == nil && fault.Mode == ModeCreateThenStatus {
			status = fault.Status
			prob = &problem{Title: http2Title(status), Detail: http2Title(status), Type: "about:blank", Status: status}
		}
	}
	return t, status, prob, rl, fault
}

func (s *Sandbox) serve(f ServedFault) {
	s.served = append(s.served, f)
	if len(s.served) > 100 {
		s.served = s.served[len(s.served)-100:]
	}
}

func (s *Sandbox) createLocked(now time.Time, text, consumerKey string, rl rateState, mediaIDs []string) (Tweet, int, *problem, rateState) {
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
			return Tweet{}, 403, &problem{Title: "Forbidden", Detail: duplicateDetail, Type: "about:blank", Status: 403}, rl
		}
	}
	id := strconv.FormatUint(s.nextID, 10)
	t := Tweet{ID: id, Text: text, XText: xText(text, id), CreatedAt: now.UTC(), ConsumerKey: consumerKey, SignatureMethod: "HMAC-SHA1", Media: mediaIDs}
	if len(mediaIDs) > 0 {
		// X shows a post with pictures with a link to them at the end of its text.
		sum := sha256.Sum256([]byte(id + "/media"))
		t.XText += " https://t.co/" + base64.RawURLEncoding.EncodeToString(sum[:])[:10]
	}
	s.nextID++
	s.tweets = append(s.tweets, t)
	if err := s.save(); err != nil {
		s.log.Error("xsandbox: could not keep the timeline on disk", "err", err)
	}
	return t, 201, nil, rl
}

// linkPattern finds what X links: URLs with a scheme and bare domains of common top-level domains.
var linkPattern = regexp.MustCompile(`(?i)\bhttps?://[^\s]+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|example)\b(?:/[^\s]*)?`)

// xText is text as X stores it: each link replaced by a t.co link (trailing punctuation left outside, as
// twitter-text does) and &, < and > escaped as HTML entities, which is how the API returns them.
func xText(text, id string) string {
	n := 0
	linked := linkPattern.ReplaceAllStringFunc(text, func(u string) string {
		trimmed := strings.TrimRight(u, ".,;:!?)]}'\"")
		n++
		sum := sha256.Sum256([]byte(id + "/" + strconv.Itoa(n) + "/" + trimmed))
		return "https://t.co/" + base64.RawURLEncoding.EncodeToString(sum[:])[:10] + u[len(trimmed):]
	})
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(linked)
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
