// Package ledger is the publisher's domain: the record of every post it was asked to publish, kept so
// that a post goes out at most once. "attempting" is written before the channel is called and the outcome
// after; a message redelivered after a crash finds "attempting" and never posts blind a second time.
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
	PostID    string
	Channel   string
	State     State
	Text      string
	RemoteID  string
	URL       string
	Error     string
	Attempts  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ErrNotFound means there is no ledger entry for the post.
var ErrNotFound = errors.New("publication not found")

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
}

// Result is what a channel says about a post it accepted.
type Result struct {
	RemoteID string
	URL      string
}

// Channel is a social network the publisher posts to.
type Channel interface {
	// Name identifies the channel in the ledger and in events ("x").
	Name() string
	// Post publishes text. Errors that say what became of the post are *ChannelError.
	Post(ctx context.Context, text string) (Result, error)
}

// ErrorKind says what a channel error means for the post.
type ErrorKind int

// The kinds of channel errors.
const (
	// Rejected: the channel refused the post for good (4xx); it did not go out.
	Rejected ErrorKind = iota + 1
	// Retryable: the post certainly did not go out and may succeed later (429, 5xx, connection refused).
	Retryable
	// Ambiguous: the post may or may not have gone out (a timeout after the request was sent).
	Ambiguous
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
