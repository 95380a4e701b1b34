// Package ledger is the publisher's domain: the record of every post it was asked to publish, kept so
// that a post goes out at most once. "attempting" is written before the channel is called and the outcome
// after; an answer that leaves the outcome open, and a message redelivered after a crash that finds
// "attempting", are reconciled against the account's timeline before anything is sent again, so nothing
// is ever posted blind a second time.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// State is a ledger entry's state.
type State string

// The states of a ledger entry.
const (
	StateAttempting State = "attempting"
	StatePublished  State = "published"
	StateFailed     State = "failed"
	StateUnknown    State = "unknown"
)

// Publication is one ledger entry: one post on one channel.
type Publication struct {
	PostID   string
	Channel  string
	State    State
	Text     string
	RemoteID string
	URL      string
	Error    string
	// Attempts is how many times the post was sent to the channel (or was about to be).
	Attempts int
	// SinceID is the newest remote id the ledger knew of when the first attempt began: reconciliation
	// reads the account's timeline from there.
	SinceID string
	// CreatedAt is when the first attempt began; UpdatedAt, while attempting, when the latest one began.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Media are the approved pictures, posted with the text, in order.
	Media []Media
}

// Media is an approved picture: an object in the media bucket and the hash the approval sealed. Nothing
// else is ever posted under its name.
type Media struct {
	Name        string
	SHA256      [32]byte
	ContentType string
	Size        int64
}

// Attachment is a picture's bytes, read and checked, as a channel uploads them.
type Attachment struct {
	ContentType string
	Data        []byte
}

// MediaSource reads approved pictures. It returns an error wrapping ErrMediaUnusable for a picture that
// is gone or whose bytes do not match the approved hash: nothing may be posted then.
type MediaSource interface {
	Get(ctx context.Context, m Media) ([]byte, error)
}

// ErrMediaUnusable means an approved picture cannot be posted: deleted, or replaced by other bytes.
var ErrMediaUnusable = errors.New("approved picture unusable")

// AuditEntry records one ops action on a publication.
type AuditEntry struct {
	PostID string
	// Actor is who acted: "ops" for the admin token.
	Actor  string
	Action string
	From   State
	To     State
	// RemoteID is the remote id ops named, when resolving a post as published.
	RemoteID string
	Note     string
	At       time.Time
}

// ErrNotFound means there is no ledger entry for the post.
var ErrNotFound = errors.New("publication not found")

// ErrConflict means the entry changed since it was read (another delivery or an ops action moved it), so
// the update was not applied.
var ErrConflict = errors.New("publication changed meanwhile")

// ErrNotAttempting means the entry is no longer in the attempting state, so an outcome cannot be written.
var ErrNotAttempting = errors.New("publication is not being attempted")

// Store keeps the ledger. Implementations: store/sqlite and store/postgres, checked by store/storetest.
type Store interface {
	// Begin records an attempt. If the post already has an entry it writes nothing and returns that
	// entry with false.
	Begin(ctx context.Context, p Publication) (Publication, bool, error)
	// Finish records the outcome of an attempt: ErrNotAttempting if the entry is not attempting.
	Finish(ctx context.Context, p Publication) error
	// Release forgets an attempt that certainly did not reach the channel, so that it can be tried again.
	Release(ctx context.Context, postID string) error
	Get(ctx context.Context, postID string) (Publication, error)
	// List returns up to limit entries, newest first.
	List(ctx context.Context, limit int) ([]Publication, error)
	// Update replaces from with to if the entry is still in from.State with from.Attempts (ErrConflict
	// otherwise), and records audit with it in the same transaction when audit is not nil.
	Update(ctx context.Context, from, to Publication, audit *AuditEntry) error
	// LatestRemoteID is the remote id of the entry published last, or "" when none is.
	LatestRemoteID(ctx context.Context) (string, error)
	// ListAudit returns the ops actions on a post, oldest first.
	ListAudit(ctx context.Context, postID string) ([]AuditEntry, error)
}

// Result is what a channel says about a post it accepted.
type Result struct {
	RemoteID string
	URL      string
}

// Channel is a social network the publisher posts to. Every channel must be able to show what the account
// posted (Timeline): without it an ambiguous answer could only ever end as unknown.
type Channel interface {
	// Name identifies the channel in the ledger and in events ("x").
	Name() string
	// Post publishes text with the pictures, in order (none for a text-only post). Errors that say what
	// became of the post are *ChannelError.
	Post(ctx context.Context, text string, media []Attachment) (Result, error)
	// URL is the public address of the post with remoteID.
	URL(remoteID string) string
	Timeline
}

// Timeline reads what the account posted, so that the ledger can reconcile an attempt whose outcome it
// does not know.
type Timeline interface {
	// Recent returns the account's posts newer than q.SinceID (when set) and created at or after
	// q.After, newest first, as the channel stores them (its text may differ from what was sent: see
	// SameText).
	Recent(ctx context.Context, q TimelineQuery) ([]RemotePost, error)
}

// TimelineQuery bounds a timeline read.
type TimelineQuery struct {
	// SinceID, when set, is a remote id older than any post looked for.
	SinceID string
	// After is no later than the earliest post looked for (the first attempt's start, less clock skew).
	After time.Time
}

// RemotePost is a post as the channel shows it.
type RemotePost struct {
	ID        string
	Text      string
	URL       string
	CreatedAt time.Time
}

// ErrorKind says what a channel error means for the post.
type ErrorKind int

// The kinds of channel errors.
const (
	// Rejected: the channel refused the post for good (4xx); it did not go out.
	Rejected ErrorKind = iota + 1
	// Retryable: the post certainly did not go out and may succeed later (429, connection refused, an
	// error the channel documents as "not created").
	Retryable
	// Ambiguous: the post may or may not have gone out (5xx, a timeout after the request was sent, a
	// dropped connection).
	Ambiguous
	// Duplicate: the channel refused the text because the account already posted it. After an earlier
	// attempt of the same post this means that attempt went out; on a first attempt it is a rejection.
	Duplicate
)

// ChannelError is a channel's failure with what it means for the post.
type ChannelError struct {
	Kind ErrorKind
	// Message is the channel's own explanation, safe to show to departments and ops.
	Message string
	// RetryAfter is how long to wait before trying again, when the channel said.
	RetryAfter time.Duration
}

// Error implements error with the channel's message.
func (e *ChannelError) Error() string {
	return e.Message
}

// kindOf classifies any error from a channel: an error that is not a *ChannelError is ambiguous, because
// nothing says the post did not go out.
func kindOf(err error) (*ChannelError, ErrorKind) {
	var ce *ChannelError
	if errors.As(err, &ce) {
		return ce, ce.Kind
	}
	return &ChannelError{Kind: Ambiguous, Message: fmt.Sprintf("outcome unknown: %v", err)}, Ambiguous
}
