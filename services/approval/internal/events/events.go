// Package events is the approval service's adapter to JetStream. It decodes the events the service
// consumes (post requests from the gateway, outcomes from the publisher) into domain values, calls the
// domain, and tells the event bus whether a failure is worth a redelivery. It also implements the domain's
// Announcer by publishing PostApproved and PostRejected. The domain never sees protobuf or the event bus.
package events

import (
	"bytes"
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
	"github.com/heraldhq/herald/services/heraldshared/seal"
)

// Domain is what the consumed events drive; *approval.Service implements it.
type Domain interface {
	Submit(ctx context.Context, r approval.Request) error
	RecordPublished(ctx context.Context, r approval.PublisherReport) error
	RecordFailed(ctx context.Context, r approval.PublisherReport) error
	RecordUnknown(ctx context.Context, r approval.PublisherReport) error
	// FailRequest records a post request that will never be processed as a failed post.
	FailRequest(ctx context.Context, r approval.Request, cause error) error
}

// Subjects returns the subjects the approval service consumes.
func Subjects() []string {
	return []string{eventbus.SubjectRequested, eventbus.SubjectPublished, eventbus.SubjectFailed, eventbus.SubjectUnknown}
}

// Refused is told of every event refused for its seal, with the subject and seal.Reason; it counts them.
type Refused func(subject, reason string)

// Handler returns the message handler that applies each event to d. The publisher's outcome events must
// carry a seal that publisherKeys verifies: anyone else able to publish on NATS could otherwise mark a
// post published, with a URL of their choosing, for the department to see. A refused event changes
// nothing, is never redelivered, and is reported to refused.
func Handler(d Domain, publisherKeys *seal.Keyring, refused Refused) (eventbus.Handler, error) {
	if d == nil || publisherKeys == nil || refused == nil {
		return nil, errors.New("events: nil domain, keyring or refusal counter")
	}
	return func(ctx context.Context, msg jetstream.Msg) error {
		err := dispatch(ctx, d, publisherKeys, msg.Subject(), msg.Data(), storedAt(msg))
		if isSealError(err) {
			refused(msg.Subject(), seal.Reason(err))
		}
		return classify(err)
	}, nil
}

// Batcher stores post requests in batches; *approval.Service implements it.
type Batcher interface {
	// SubmitBatch submits each request as Domain.Submit does and returns an error for each, in order.
	SubmitBatch(ctx context.Context, rs []approval.Request) []error
}

// RequestBatchHandler returns the eventbus.BatchHandler for post requests: it decodes each message and
// submits the lot to b, which stores them in one transaction. A message that does not decode, or that b
// refuses, fails alone, classified as Handler's failures are; the rest of its batch is stored.
func RequestBatchHandler(b Batcher) (eventbus.BatchHandler, error) {
	if b == nil {
		return nil, errors.New("events: nil batcher")
	}
	return func(ctx context.Context, msgs []jetstream.Msg) []error {
		errs := make([]error, len(msgs))
		rs := make([]approval.Request, 0, len(msgs))
		idx := make([]int, 0, len(msgs)) // rs[j] came from msgs[idx[j]]
		for i, msg := range msgs {
			if msg.Subject() != eventbus.SubjectRequested {
				errs[i] = eventbus.Permanent(fmt.Errorf("unexpected subject %q in a batch of post requests", msg.Subject()))
				continue
			}
			var ev eventsv1.PostRequested
			if err := decode(msg.Data(), &ev); err != nil {
				errs[i] = err
				continue
			}
			r := toRequest(&ev)
			r.StoredAt = storedAt(msg)
			rs = append(rs, r)
			idx = append(idx, i)
		}
		if len(rs) == 0 {
			return errs
		}
		for j, err := range b.SubmitBatch(ctx, rs) {
			errs[idx[j]] = classify(err)
		}
		return errs
	}, nil
}

// storedAt is when the stream stored msg, from the metadata the NATS server adds: unlike anything in the
// payload, a publisher cannot choose it. Zero when the metadata is missing.
func storedAt(msg jetstream.Msg) time.Time {
	md, err := msg.Metadata()
	if err != nil || md == nil {
		return time.Time{}
	}
	return md.Timestamp
}

func dispatch(ctx context.Context, d Domain, keys *seal.Keyring, subject string, data []byte, stored time.Time) error {
	switch subject {
	case eventbus.SubjectRequested:
		var ev eventsv1.PostRequested
		if err := decode(data, &ev); err != nil {
			return err
		}
		r := toRequest(&ev)
		r.StoredAt = stored
		return d.Submit(ctx, r)
	case eventbus.SubjectPublished:
		var ev eventsv1.PostPublished
		if err := decode(data, &ev); err != nil {
			return err
		}
		stmt := seal.Outcome{PostID: ev.GetPostId(), Channel: ev.GetChannel(), State: seal.StatePublished, RemoteID: ev.GetRemoteId(), URL: ev.GetUrl(), At: asTime(ev.GetPublishedAt())}
		if err := verify(keys, stmt, ev.GetSeal()); err != nil {
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
		stmt := seal.Outcome{PostID: ev.GetPostId(), Channel: ev.GetChannel(), State: seal.StateFailed, Reason: ev.GetReason(), At: asTime(ev.GetFailedAt())}
		if err := verify(keys, stmt, ev.GetSeal()); err != nil {
			return err
		}
		return d.RecordFailed(ctx, approval.PublisherReport{PostID: ev.GetPostId(), Channel: ev.GetChannel(), Reason: ev.GetReason()})
	case eventbus.SubjectUnknown:
		var ev eventsv1.PostUnknown
		if err := decode(data, &ev); err != nil {
			return err
		}
		stmt := seal.Outcome{PostID: ev.GetPostId(), Channel: ev.GetChannel(), State: seal.StateUnknown, Reason: ev.GetReason(), At: asTime(ev.GetAt())}
		if err := verify(keys, stmt, ev.GetSeal()); err != nil {
			return err
		}
		return d.RecordUnknown(ctx, approval.PublisherReport{PostID: ev.GetPostId(), Channel: ev.GetChannel(), Reason: ev.GetReason()})
	default:
		return eventbus.Permanent(fmt.Errorf("unexpected subject %q", subject))
	}
}

// verify checks an outcome's seal. The state comes from the subject the event arrived on, never from the
// message, so a seal over "failed" cannot be replayed as "published".
func verify(keys *seal.Keyring, stmt seal.Outcome, s *eventsv1.Seal) error {
	if err := keys.Verify(stmt, seal.Seal{KeyID: s.GetKeyId(), Signature: s.GetSignature()}); err != nil {
		return eventbus.Permanent(fmt.Errorf("refused %s outcome for post %q: %w", stmt.State, stmt.PostID, err))
	}
	return nil
}

func isSealError(err error) bool {
	return errors.Is(err, seal.ErrUnsigned) || errors.Is(err, seal.ErrUnknownKey) || errors.Is(err, seal.ErrBadSignature) || errors.Is(err, seal.ErrTextMismatch)
}

// GivenUp is told of every event given up, with its subject; it counts them.
type GivenUp func(subject string)

// GiveUp returns the eventbus.ConsumerConfig.GiveUp hook for the handler's events: an event that will not
// be delivered again (refused for good, or still failing on its last allowed delivery) is counted, and a
// post request becomes a failed post the department can read, with the reason, instead of vanishing. An
// outcome that can never be applied changes nothing: the post keeps the state it has.
func GiveUp(d Domain, given GivenUp) (func(ctx context.Context, msg jetstream.Msg, cause error) error, error) {
	if d == nil || given == nil {
		return nil, errors.New("events: nil domain or give-up counter")
	}
	return func(ctx context.Context, msg jetstream.Msg, cause error) error {
		given(msg.Subject())
		if msg.Subject() != eventbus.SubjectRequested {
			return nil
		}
		var ev eventsv1.PostRequested
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil // no post id to record anything under; the bus logged why
		}
		if err := d.FailRequest(ctx, toRequest(&ev), cause); err != nil {
			return fmt.Errorf("record post request %q as failed: %w", ev.GetPostId(), err)
		}
		return nil
	}, nil
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
	r := approval.Request{
		PostID: ev.GetPostId(), DepartmentID: ev.GetDepartmentId(), Text: ev.GetText(),
		RequestedBy: ev.GetRequestedBy(), IdempotencyKey: ev.GetIdempotencyKey(), RequestedAt: asTime(ev.GetRequestedAt()),
		APIKeyID: ev.GetApiKeyId(),
	}
	for _, m := range ev.GetMedia() {
		am := approval.Media{Name: m.GetObjectName(), ContentType: m.GetContentType(), Size: m.GetSize()}
		// A hash of another length stays all zeros, which the domain refuses.
		if len(m.GetSha256()) == len(am.SHA256) {
			copy(am.SHA256[:], m.GetSha256())
		}
		r.Media = append(r.Media, am)
	}
	return r
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
// eventbus.MsgID(post id, kind), so the outbox repeating one is deduplicated by the stream. Approvals are
// sealed with the approval service's key: the publisher posts nothing else.
type Announcer struct {
	pub    ProtoPublisher
	signer *seal.Signer
}

var _ approval.Announcer = (*Announcer)(nil)

// NewAnnouncer returns an Announcer that publishes through pub and seals approvals with signer.
func NewAnnouncer(pub ProtoPublisher, signer *seal.Signer) (*Announcer, error) {
	if pub == nil || signer == nil {
		return nil, errors.New("events: nil publisher or signer")
	}
	return &Announcer{pub: pub, signer: signer}, nil
}

// PostApproved publishes PostApproved, sealed, for the approval recorded on p.
func (a *Announcer) PostApproved(ctx context.Context, p approval.Post) error {
	return a.pub.PublishProto(ctx, eventbus.SubjectApproved, eventbus.MsgID(p.ID, "approved"), approvedEvent(p, a.signer))
}

// PostRejected publishes PostRejected for the rejection recorded on p.
func (a *Announcer) PostRejected(ctx context.Context, p approval.Post) error {
	return a.pub.PublishProto(ctx, eventbus.SubjectRejected, eventbus.MsgID(p.ID, "rejected"), rejectedEvent(p))
}

// PostExpired publishes PostExpired for p, which reached its deadline undecided.
func (a *Announcer) PostExpired(ctx context.Context, p approval.Post) error {
	ev := &eventsv1.PostExpired{PostId: p.ID, DepartmentId: p.DepartmentID, ExpiredAt: timestamppb.New(p.ExpiresAt)}
	return a.pub.PublishProto(ctx, eventbus.SubjectExpired, eventbus.MsgID(p.ID, "expired"), ev)
}

// PostCancelled publishes PostCancelled for p; the post's last update is its cancellation.
func (a *Announcer) PostCancelled(ctx context.Context, p approval.Post) error {
	ev := &eventsv1.PostCancelled{PostId: p.ID, DepartmentId: p.DepartmentID, CancelledAt: timestamppb.New(p.UpdatedAt)}
	return a.pub.PublishProto(ctx, eventbus.SubjectCancelled, eventbus.MsgID(p.ID, "cancelled"), ev)
}

// approvedEvent is the PostApproved event for the approval recorded on p, sealed by signer over exactly
// what the publisher will post (p.Published()).
func approvedEvent(p approval.Post, signer *seal.Signer) *eventsv1.PostApproved {
	// The final text: the approver's edit when they approved with edits. It is what gets published, so it is
	// what the seal covers.
	text := p.Published()
	sum := seal.TextHash(text)
	// The pictures' hashes are signed with the text: the publisher refuses any object that does not hash
	// to them, so what is posted is exactly what the approver saw.
	var hashes [][32]byte
	var refs []*eventsv1.MediaRef
	for _, m := range p.Media {
		hashes = append(hashes, m.SHA256)
		refs = append(refs, &eventsv1.MediaRef{ObjectName: m.Name, Sha256: bytes.Clone(m.SHA256[:]), ContentType: m.ContentType, Size: m.Size})
	}
	s := signer.Sign(seal.Approval{PostID: p.ID, DepartmentID: p.DepartmentID, TextSHA256: sum, MediaSHA256: hashes, Approver: p.DecidedBy, ApprovedAt: p.DecidedAt})
	return &eventsv1.PostApproved{
		PostId: p.ID, DepartmentId: p.DepartmentID, Text: text,
		ApprovedBy: p.DecidedBy, ApprovedAt: timestamppb.New(p.DecidedAt), Comment: p.Comment,
		TextSha256: sum[:], Seal: &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}, Media: refs,
	}
}

// Revocations implements approval.KeyRevocations by publishing KeyRevoked on the core NATS subject
// eventbus.SubjectKeysRevoked, which every gateway subscribes to. Core NATS, not the stream: a gateway
// needs the news now or never (a gateway that starts later asks the approval service anyway), and a lost
// message costs only the gateway's cache TTL.
type Revocations struct {
	nc CorePublisher
}

// CorePublisher publishes a core NATS message; *nats.Conn implements it.
type CorePublisher interface {
	Publish(subject string, data []byte) error
}

var _ approval.KeyRevocations = (*Revocations)(nil)

// NewRevocations returns Revocations publishing through nc.
func NewRevocations(nc CorePublisher) (*Revocations, error) {
	if nc == nil {
		return nil, errors.New("events: nil NATS connection")
	}
	return &Revocations{nc: nc}, nil
}

// KeyRevoked publishes KeyRevoked for k.
func (r *Revocations) KeyRevoked(_ context.Context, k approval.APIKey) error {
	data, err := proto.Marshal(&eventsv1.KeyRevoked{KeyId: k.ID, DepartmentId: k.DepartmentID, RevokedAt: timestamppb.New(k.RevokedAt)})
	if err != nil {
		return fmt.Errorf("encode key revocation %s: %w", k.ID, err)
	}
	if err := r.nc.Publish(eventbus.SubjectKeysRevoked, data); err != nil {
		return fmt.Errorf("announce revocation of key %s: %w", k.ID, err)
	}
	return nil
}

// rejectedEvent is the PostRejected event for the rejection recorded on p.
func rejectedEvent(p approval.Post) *eventsv1.PostRejected {
	return &eventsv1.PostRejected{
		PostId: p.ID, DepartmentId: p.DepartmentID,
		RejectedBy: p.DecidedBy, RejectedAt: timestamppb.New(p.DecidedAt), Comment: p.Comment,
	}
}
