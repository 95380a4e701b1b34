// Package events is the publisher's adapter to JetStream. It decodes PostApproved into a ledger.Approval,
// calls the ledger, and tells the event bus whether a failure is worth a redelivery (and when). It also
// implements ledger.Announcer by publishing PostPublished, PostFailed and PostUnknown. The ledger never
// sees protobuf or the event bus.
package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// Domain is what the consumed events drive; *ledger.Service implements it.
type Domain interface {
	HandleApproved(ctx context.Context, a ledger.Approval) error
}

// Subjects returns the subjects the publisher consumes.
func Subjects() []string {
	return []string{eventbus.SubjectApproved}
}

// Handler returns the message handler that hands each approved post to d.
func Handler(d Domain) eventbus.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		if msg.Subject() != eventbus.SubjectApproved {
			return eventbus.Permanent(fmt.Errorf("unexpected subject %q", msg.Subject()))
		}
		var ev eventsv1.PostApproved
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return eventbus.Permanent(fmt.Errorf("decode PostApproved: %w", err))
		}
		return classify(d.HandleApproved(ctx, toApproval(&ev)))
	}
}

// classify is the one place where the ledger's errors become redelivery decisions.
func classify(err error) error {
	var later *ledger.RetryLaterError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ledger.ErrInvalid):
		return eventbus.Permanent(err)
	case errors.As(err, &later):
		return eventbus.RetryAfter(err, later.After)
	default:
		return err
	}
}

func toApproval(ev *eventsv1.PostApproved) ledger.Approval {
	a := ledger.Approval{PostID: ev.GetPostId(), DepartmentID: ev.GetDepartmentId(), Text: ev.GetText(), ApprovedBy: ev.GetApprovedBy()}
	if ev.GetApprovedAt().IsValid() {
		a.ApprovedAt = ev.GetApprovedAt().AsTime()
	}
	return a
}

// ProtoPublisher publishes a protobuf event with a message id; *eventbus.Publisher implements it.
type ProtoPublisher interface {
	PublishProto(ctx context.Context, subject, msgID string, m proto.Message) error
}

// Announcer implements ledger.Announcer on JetStream. Each outcome carries the message id
// eventbus.MsgID(post id, outcome), so announcing it again after a redelivery is deduplicated by the stream.
type Announcer struct {
	pub ProtoPublisher
}

var _ ledger.Announcer = (*Announcer)(nil)

// NewAnnouncer returns an Announcer that publishes through pub.
func NewAnnouncer(pub ProtoPublisher) (*Announcer, error) {
	if pub == nil {
		return nil, errors.New("events: nil publisher")
	}
	return &Announcer{pub: pub}, nil
}

// Announce publishes the event for p's state: PostPublished, PostFailed or PostUnknown.
func (a *Announcer) Announce(ctx context.Context, p ledger.Publication) error {
	subject, kind, ev, err := outcomeEvent(p)
	if err != nil {
		return err
	}
	return a.pub.PublishProto(ctx, subject, eventbus.MsgID(p.PostID, kind), ev)
}

// outcomeEvent is the subject, message id kind and event that announce p.
func outcomeEvent(p ledger.Publication) (subject, kind string, ev proto.Message, err error) {
	at := timestamppb.New(p.UpdatedAt)
	switch p.State {
	case ledger.StatePublished:
		return eventbus.SubjectPublished, "published", &eventsv1.PostPublished{PostId: p.PostID, Channel: p.Channel, RemoteId: p.RemoteID, Url: p.URL, PublishedAt: at}, nil
	case ledger.StateFailed:
		return eventbus.SubjectFailed, "failed", &eventsv1.PostFailed{PostId: p.PostID, Channel: p.Channel, Reason: p.Error, FailedAt: at}, nil
	case ledger.StateUnknown:
		return eventbus.SubjectUnknown, "unknown", &eventsv1.PostUnknown{PostId: p.PostID, Channel: p.Channel, Reason: p.Error, At: at}, nil
	default:
		return "", "", nil, fmt.Errorf("announce %s: unexpected state %q", p.PostID, p.State)
	}
}
