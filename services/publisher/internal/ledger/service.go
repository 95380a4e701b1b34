package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Approval is an approved post handed to the publisher. Who approved it and when go into the log lines
// about the post, so that the publisher's log alone says on whose word each post went out.
type Approval struct {
	PostID       string
	DepartmentID string
	Text         string
	ApprovedBy   string
	ApprovedAt   time.Time
}

// Announcer tells the rest of Herald what became of an approved post. It returns once the announcement is
// stored for delivery; announcing the same outcome again must be harmless, since a redelivered approval
// announces again.
type Announcer interface {
	// Announce announces p's outcome: p is published, failed or unknown.
	Announce(ctx context.Context, p Publication) error
}

// ErrInvalid means an approval can never be published as it stands (no post id, no text): delivering it
// again cannot help.
var ErrInvalid = errors.New("invalid approval")

// RetryLaterError means the post certainly did not go out and may go out when the approval is handled
// again, no sooner than After (zero when the channel did not say).
type RetryLaterError struct {
	After time.Duration
	Err   error
}

// Error implements error.
func (e *RetryLaterError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RetryLaterError) Unwrap() error { return e.Err }

// Service posts approved posts to a channel through the ledger. It is named like approval.Service, the other
// domain's entry point, rather than Publisher, which eventbus.Publisher already means (and which describes
// the adapter's job, not this one's) or Poster, which could as well be the Channel.
type Service struct {
	store     Store
	channel   Channel
	announcer Announcer
	log       *slog.Logger
	now       func() time.Time
}

// NewService returns a Service. Every dependency is required.
func NewService(store Store, channel Channel, announcer Announcer, log *slog.Logger) (*Service, error) {
	if store == nil || channel == nil || announcer == nil || log == nil {
		return nil, errors.New("ledger: nil dependency")
	}
	return &Service{store: store, channel: channel, announcer: announcer, log: log, now: time.Now}, nil
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// HandleApproved publishes an approved post at most once and announces the outcome. It is safe to call again
// with the same approval: by then the ledger says what to do. Errors: ErrInvalid for an approval that can
// never be published, *RetryLaterError when the channel was unavailable, anything else when the ledger or
// the announcement failed (handling the approval again later is the cure for all but ErrInvalid).
func (s *Service) HandleApproved(ctx context.Context, a Approval) error {
	if a.PostID == "" || a.Text == "" {
		return fmt.Errorf("%w: approval without post id or text: %q", ErrInvalid, a.PostID)
	}
	now := s.timestamp()
	entry := Publication{PostID: a.PostID, Channel: s.channel.Name(), State: StateAttempting, Text: a.Text, Attempts: 1, CreatedAt: now, UpdatedAt: now}
	existing, created, err := s.store.Begin(ctx, entry)
	if err != nil {
		return fmt.Errorf("begin %s: %w", entry.PostID, err)
	}
	if !created {
		return s.resume(ctx, existing)
	}
	log := s.log.With("post_id", entry.PostID, "channel", entry.Channel, "department_id", a.DepartmentID, "approved_by", a.ApprovedBy, "approved_at", a.ApprovedAt)
	res, postErr := s.channel.Post(ctx, entry.Text)
	entry.UpdatedAt = s.timestamp()
	if postErr == nil {
		entry.State, entry.RemoteID, entry.URL = StatePublished, res.RemoteID, res.URL
		log.InfoContext(ctx, "post published", "remote_id", res.RemoteID)
	} else {
		ce, kind := kindOf(postErr)
		switch kind {
		case Retryable:
			if err := s.store.Release(ctx, entry.PostID); err != nil {
				return fmt.Errorf("release %s: %w", entry.PostID, err)
			}
			log.WarnContext(ctx, "channel unavailable; will retry", "err", ce.Message, "retry_after", ce.RetryAfter)
			return &RetryLaterError{After: ce.RetryAfter, Err: fmt.Errorf("post %s: %w", entry.PostID, postErr)}
		case Rejected:
			entry.State, entry.Error = StateFailed, ce.Message
			log.WarnContext(ctx, "channel rejected the post", "err", ce.Message)
		default:
			entry.State, entry.Error = StateUnknown, ce.Message
			log.ErrorContext(ctx, "post outcome unknown; ops must resolve it", "err", ce.Message)
		}
	}
	if err := s.store.Finish(ctx, entry); err != nil {
		// The channel call happened; if this write is lost the redelivery finds "attempting" and marks
		// the post unknown rather than posting again.
		return fmt.Errorf("finish %s: %w", entry.PostID, err)
	}
	return s.announce(ctx, entry)
}

// resume handles a redelivered approval: the ledger already has the post.
func (s *Service) resume(ctx context.Context, e Publication) error {
	if e.State == StateAttempting {
		// A previous delivery called the channel and did not record the outcome (a crash, say). Posting
		// again could publish twice, so the post is marked unknown for ops to resolve.
		e.State, e.Error, e.UpdatedAt = StateUnknown, "the publisher stopped while posting; check the channel before retrying", s.timestamp()
		if err := s.store.Finish(ctx, e); err != nil && !errors.Is(err, ErrNotAttempting) {
			return fmt.Errorf("mark %s unknown: %w", e.PostID, err)
		}
		s.log.ErrorContext(ctx, "post outcome unknown after a redelivery; not posting again", "post_id", e.PostID)
	}
	// Announce again: the announcement may not have been stored the first time; announcing twice is
	// harmless.
	return s.announce(ctx, e)
}

func (s *Service) announce(ctx context.Context, e Publication) error {
	if err := s.announcer.Announce(ctx, e); err != nil {
		return fmt.Errorf("announce %s %s: %w", e.State, e.PostID, err)
	}
	return nil
}
