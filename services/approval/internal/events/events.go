// Package events is the approval service's adapter to JetStream. It decodes the events the service
// consumes (post requests from the gateway, outcomes from the publisher) into domain values, calls the
// domain, and tells the event bus whether a failure is worth a redelivery. It also implements the domain's
// Announcer by publishing PostApproved and PostRejected. The domain never sees protobuf or the event bus.
package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// Domain is what the consumed events drive; *approval.Service implements it.
type Domain interface {
	Submit(ctx context.Context, r approval.Request) error
	RecordPublished(ctx context.Context, r approval.PublisherReport) error
	RecordFailed(ctx context.Context, r approval.PublisherReport) error
	RecordUnknown(ctx context.Context, r approval.PublisherReport) error
}

// Subjects returns the subjects the approval service consumes.
func Subjects() []string {
	return []string{eventbus.SubjectRequested, eventbus.SubjectPublished, eventbus.SubjectFailed, eventbus.SubjectUnknown}
}

// Handler returns the message handler that applies each event to d.
func Handler(d Domain) eventbus.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		return classify(dispatch(ctx, d, msg.Subject(), msg.Data()))
	}
}

func dispatch(ctx context.Context, d Domain, subject string, data []byte) error {
	switch subject {
	case eventbus.SubjectRequested:
		var ev eventsv1.PostRequested
		if err := decode(data, &ev); err != nil {
			return err
		}
		return d.Submit(ctx, toRequest(&ev))
	case eventbus.SubjectPublished:
		var ev eventsv1.PostPublished
		if err := decode(data, &ev); err != nil {
			return err
		}
		return d.RecordPublished(ctx, approval.PublisherReport{
			PostID: ev.GetPostId(), Channel: ev.GetChannel(), RemoteID: ev.GetRemoteId(), RemoteURL: ev.GetUrl(),
			PublishedAt: asTime(ev.GetPublishedAt()),
		})
	case eventbus.SubjectFailed:
		var ev eventsv1.PostFailed
		if err := decode(data, &ev); err != nil {
			return err
		}
		return d.RecordFailed(ctx, approval.PublisherReport{PostID: ev.GetPostId(), Channel: ev.GetChannel(), Reason: ev.GetReason()})
	case eventbus.SubjectUnknown:
		var ev eventsv1.PostUnknown
		if err := decode(data, &ev); err != nil {
			return err
		}
		return d.RecordUnknown(ctx, approval.PublisherReport{PostID: ev.GetPostId(), Channel: ev.GetChannel(), Reason: ev.GetReason()})
	default:
		return eventbus.Permanent(fmt.Errorf("unexpected subject %q", subject))
	}
}

// classify is the one place where domain errors become redelivery decisions: what the domain calls
// invalid, or what refers to something that does not exist, will not get better by trying again.
func classify(err error) error {
	if errors.Is(err, approval.ErrInvalid) || errors.Is(err, approval.ErrNotFound) {
		return eventbus.Permanent(err)
	}
	return err
}

// decode unmarshals data into m; a payload that does not decode never will, so the error is permanent.
func decode(data []byte, m proto.Message) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return eventbus.Permanent(fmt.Errorf("decode %T: %w", m, err))
	}
	return nil
}

func toRequest(ev *eventsv1.PostRequested) approval.Request {
	return approval.Request{
		PostID: ev.GetPostId(), DepartmentID: ev.GetDepartmentId(), Text: ev.GetText(),
		RequestedBy: ev.GetRequestedBy(), IdempotencyKey: ev.GetIdempotencyKey(), RequestedAt: asTime(ev.GetRequestedAt()),
	}
}

// asTime returns ts as a time, or the zero time when the event left it out.
func asTime(ts *timestamppb.Timestamp) time.Time {
	if !ts.IsValid() {
		return time.Time{}
	}
	return ts.AsTime()
}

// ProtoPublisher publishes a protobuf event with a message id; *eventbus.Publisher implements it.
type ProtoPublisher interface {
	PublishProto(ctx context.Context, subject, msgID string, m proto.Message) error
}

// Announcer implements approval.Announcer on JetStream. Each announcement carries the message id
// eventbus.MsgID(post id, kind), so the outbox repeating one is deduplicated by the stream.
type Announcer struct {
	pub ProtoPublisher
}

var _ approval.Announcer = (*Announcer)(nil)

// NewAnnouncer returns an Announcer that publishes through pub.
func NewAnnouncer(pub ProtoPublisher) (*Announcer, error) {
	if pub == nil {
		return nil, errors.New("events: nil publisher")
	}
	return &Announcer{pub: pub}, nil
}

// PostApproved publishes PostApproved for the approval recorded on p.
func (a *Announcer) PostApproved(ctx context.Context, p approval.Post) error {
	return a.pub.PublishProto(ctx, eventbus.SubjectApproved, eventbus.MsgID(p.ID, "approved"), approvedEvent(p))
}

// PostRejected publishes PostRejected for the rejection recorded on p.
func (a *Announcer) PostRejected(ctx context.Context, p approval.Post) error {
	return a.pub.PublishProto(ctx, eventbus.SubjectRejected, eventbus.MsgID(p.ID, "rejected"), rejectedEvent(p))
}

// approvedEvent is the PostApproved event for the approval recorded on p.
func approvedEvent(p approval.Post) *eventsv1.PostApproved {
	return &eventsv1.PostApproved{
		PostId: p.ID, DepartmentId: p.DepartmentID, Text: p.Text,
		ApprovedBy: p.DecidedBy, ApprovedAt: timestamppb.New(p.DecidedAt), Comment: p.Comment,
	}
}

// rejectedEvent is the PostRejected event for the rejection recorded on p.
func rejectedEvent(p approval.Post) *eventsv1.PostRejected {
	return &eventsv1.PostRejected{
		PostId: p.ID, DepartmentId: p.DepartmentID,
		RejectedBy: p.DecidedBy, RejectedAt: timestamppb.New(p.DecidedAt), Comment: p.Comment,
	}
}
