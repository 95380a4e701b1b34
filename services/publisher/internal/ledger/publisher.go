package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// EventPublisher publishes an outcome event and returns once the event bus stored it.
type EventPublisher interface {
	PublishProto(ctx context.Context, subject, msgID string, m proto.Message) error
}

// Publisher posts approved posts to a channel through the ledger.
type Publisher struct {
	store   Store
	channel Channel
	events  EventPublisher
	log     *slog.Logger
	now     func() time.Time
}

// NewPublisher returns a Publisher. Every dependency is required.
func NewPublisher(store Store, channel Channel, events EventPublisher, log *slog.Logger) (*Publisher, error) {
	if store == nil || channel == nil || events == nil || log == nil {
		return nil, errors.New("ledger: nil dependency")
	}
	return &Publisher{store: store, channel: channel, events: events, log: log, now: time.Now}, nil
}

func (p *Publisher) timestamp() time.Time { return p.now().UTC().Truncate(time.Microsecond) }

// HandleApproved publishes an approved post at most once and announces the outcome. Returning an error
// asks for the approval to be delivered again later; by then the ledger says what to do.
func (p *Publisher) HandleApproved(ctx context.Context, ev *eventsv1.PostApproved) error {
	if ev.GetPostId() == "" || ev.GetText() == "" {
		return eventbus.Permanent(fmt.Errorf("approval without post id or text: %q", ev.GetPostId()))
	}
	now := p.timestamp()
	entry := Publication{PostID: ev.GetPostId(), Channel: p.channel.Name(), State: StateAttempting, Text: ev.GetText(), Attempts: 1, CreatedAt: now, UpdatedAt: now}
	existing, created, err := p.store.Begin(ctx, entry)
	if err != nil {
		return fmt.Errorf("begin %s: %w", entry.PostID, err)
	}
	if !created {
		return p.resume(ctx, existing)
	}
	log := p.log.With("post_id", entry.PostID, "channel", entry.Channel)
	res, postErr := p.channel.Post(ctx, entry.Text)
	entry.UpdatedAt = p.timestamp()
	if postErr == nil {
		entry.State, entry.RemoteID, entry.URL = StatePublished, res.RemoteID, res.URL
		log.InfoContext(ctx, "post published", "remote_id", res.RemoteID)
	} else {
		ce, kind := kindOf(postErr)
		switch kind {
		case Retryable:
			if err := p.store.Release(ctx, entry.PostID); err != nil {
				return fmt.Errorf("release %s: %w", entry.PostID, err)
			}
			log.WarnContext(ctx, "channel unavailable; will retry", "err", ce.Message, "retry_after", ce.RetryAfter)
			return eventbus.RetryAfter(fmt.Errorf("post %s: %w", entry.PostID, postErr), ce.RetryAfter)
		case Rejected:
			entry.State, entry.Error = StateFailed, ce.Message
			log.WarnContext(ctx, "channel rejected the post", "err", ce.Message)
		default:
			entry.State, entry.Error = StateUnknown, ce.Message
			log.ErrorContext(ctx, "post outcome unknown; ops must resolve it", "err", ce.Message)
		}
	}
	if err := p.store.Finish(ctx, entry); err != nil {
		// The channel call happened; if this write is lost the redelivery finds "attempting" and marks
		// the post unknown rather than posting again.
		return fmt.Errorf("finish %s: %w", entry.PostID, err)
	}
	return p.announce(ctx, entry)
}

// resume handles a redelivered approval: the ledger already has the post.
func (p *Publisher) resume(ctx context.Context, e Publication) error {
	if e.State == StateAttempting {
		// A previous delivery called the channel and did not record the outcome (a crash, say). Posting
		// again could publish twice, so the post is marked unknown for ops to resolve.
		e.State, e.Error, e.UpdatedAt = StateUnknown, "the publisher stopped while posting; check the channel before retrying", p.timestamp()
		if err := p.store.Finish(ctx, e); err != nil && !errors.Is(err, ErrNotAttempting) {
			return fmt.Errorf("mark %s unknown: %w", e.PostID, err)
		}
		p.log.ErrorContext(ctx, "post outcome unknown after a redelivery; not posting again", "post_id", e.PostID)
	}
	// Announce again: the event may not have reached the stream the first time; the message id makes a
	// repeat harmless.
	return p.announce(ctx, e)
}

func (p *Publisher) announce(ctx context.Context, e Publication) error {
	at := timestamppb.New(e.UpdatedAt)
	var err error
	switch e.State {
	case StatePublished:
		err = p.events.PublishProto(ctx, eventbus.SubjectPublished, eventbus.MsgID(e.PostID, "published"),
			&eventsv1.PostPublished{PostId: e.PostID, Channel: e.Channel, RemoteId: e.RemoteID, Url: e.URL, PublishedAt: at})
	case StateFailed:
		err = p.events.PublishProto(ctx, eventbus.SubjectFailed, eventbus.MsgID(e.PostID, "failed"),
			&eventsv1.PostFailed{PostId: e.PostID, Channel: e.Channel, Reason: e.Error, FailedAt: at})
	case StateUnknown:
		err = p.events.PublishProto(ctx, eventbus.SubjectUnknown, eventbus.MsgID(e.PostID, "unknown"),
			&eventsv1.PostUnknown{PostId: e.PostID, Channel: e.Channel, Reason: e.Error, At: at})
	default:
		return fmt.Errorf("announce %s: unexpected state %q", e.PostID, e.State)
	}
	if err != nil {
		return fmt.Errorf("announce %s %s: %w", e.State, e.PostID, err)
	}
	return nil
}
