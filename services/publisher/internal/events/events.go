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
	"github.com/heraldhq/herald/services/heraldshared/seal"
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

// Refused is told why each refused approval was refused (seal.Reason); it counts them.
type Refused func(reason string)

// Handler returns the message handler that hands each approved post to d, once its seal checks out
// against approvalKeys: the approval service's signature over the post, department, the hash of this very
// text, approver and time. Anything unsealed, sealed by an unknown key, mis-signed or with other text is
// refused for good (never retried, never posted) and reported to refused: holding NATS credentials that
// can publish on herald.posts.approved is not enough to get something posted.
func Handler(d Domain, approvalKeys *seal.Keyring, refused Refused) (eventbus.Handler, error) {
	if d == nil || approvalKeys == nil || refused == nil {
		return nil, errors.New("events: nil domain, keyring or refusal counter")
	}
	return func(ctx context.Context, msg jetstream.Msg) error {
		if msg.Subject() != eventbus.SubjectApproved {
			return eventbus.Permanent(fmt.Errorf("unexpected subject %q", msg.Subject()))
		}
		var ev eventsv1.PostApproved
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return eventbus.Permanent(fmt.Errorf("decode PostApproved: %w", err))
		}
		if err := verify(approvalKeys, &ev); err != nil {
			refused(seal.Reason(err))
			return eventbus.Permanent(fmt.Errorf("refused approval of post %q: %w", ev.GetPostId(), err))
		}
		return classify(d.HandleApproved(ctx, toApproval(&ev)))
	}, nil
}

// GiveUpDomain settles approvals the consumer stopped delivering; *ledger.Service implements it.
type GiveUpDomain interface {
	GiveUp(ctx context.Context, a ledger.Approval, cause error) error
}

// GiveUp returns the consumer's hook for an approval that will not be delivered again although it was
// never handled: a genuine (sealed) approval is settled by d so that the post does not stay approved
// forever; anything refused for its seal or undecodable has nothing to settle.
func GiveUp(d GiveUpDomain, approvalKeys *seal.Keyring) (func(ctx context.Context, msg jetstream.Msg, cause error) error, error) {
	if d == nil || approvalKeys == nil {
		return nil, errors.New("events: nil domain or keyring")
	}
	return func(ctx context.Context, msg jetstream.Msg, cause error) error {
		var ev eventsv1.PostApproved
		if msg.Subject() != eventbus.SubjectApproved || proto.Unmarshal(msg.Data(), &ev) != nil || verify(approvalKeys, &ev) != nil {
			return nil
		}
		return d.GiveUp(ctx, toApproval(&ev), cause)
	}, nil
}

// verify checks an approval's seal over the text it carries. The hash is recomputed from the text that
// will be posted rather than taken from the event; the event's own hash only makes a mismatch easier to
// explain.
func verify(keys *seal.Keyring, ev *eventsv1.PostApproved) error {
	s := seal.Seal{KeyID: ev.GetSeal().GetKeyId(), Signature: ev.GetSeal().GetSignature()}
	if s.IsZero() {
		return seal.ErrUnsigned
	}
	if len(ev.GetTextSha256()) > 0 {
		if err := seal.CheckText(ev.GetText(), ev.GetTextSha256()); err != nil {
			return err
		}
	}
	stmt := seal.Approval{PostID: ev.GetPostId(), DepartmentID: ev.GetDepartmentId(), TextSHA256: seal.TextHash(ev.GetText()), Approver: ev.GetApprovedBy()}
	// The pictures' hashes as the event names them: the seal must cover exactly these, and the ledger
	// refuses any object whose bytes do not hash to them.
	for _, m := range ev.GetMedia() {
		var h [32]byte
		if len(m.GetSha256()) != len(h) {
			return seal.ErrBadSignature
		}
		copy(h[:], m.GetSha256())
		stmt.MediaSHA256 = append(stmt.MediaSHA256, h)
	}
	if ev.GetApprovedAt().IsValid() {
		stmt.ApprovedAt = ev.GetApprovedAt().AsTime()
	}
	return keys.Verify(stmt, s)
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
	for _, m := range ev.GetMedia() {
		lm := ledger.Media{Name: m.GetObjectName(), ContentType: m.GetContentType(), Size: m.GetSize()}
		copy(lm.SHA256[:], m.GetSha256()) // 32 bytes: verify refused anything else
		a.Media = append(a.Media, lm)
	}
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
// eventbus.MsgID(post id, outcome), so announcing it again after a redelivery is deduplicated by the stream,
// and a seal by the publisher's key, without which the approval service ignores it.
type Announcer struct {
	pub    ProtoPublisher
	signer *seal.Signer
}

var _ ledger.Announcer = (*Announcer)(nil)

// NewAnnouncer returns an Announcer that publishes through pub and seals with signer.
func NewAnnouncer(pub ProtoPublisher, signer *seal.Signer) (*Announcer, error) {
	if pub == nil || signer == nil {
		return nil, errors.New("events: nil publisher or signer")
	}
	return &Announcer{pub: pub, signer: signer}, nil
}

// Announce publishes the sealed event for p's state: PostPublished, PostFailed or PostUnknown.
func (a *Announcer) Announce(ctx context.Context, p ledger.Publication) error {
	subject, kind, ev, err := outcomeEvent(p, a.signer)
	if err != nil {
		return err
	}
	return a.pub.PublishProto(ctx, subject, eventbus.MsgID(p.PostID, kind), ev)
}

// outcomeEvent is the subject, message id kind and sealed event that announce p.
func outcomeEvent(p ledger.Publication, signer *seal.Signer) (subject, kind string, ev proto.Message, err error) {
	at := timestamppb.New(p.UpdatedAt)
	stmt := seal.Outcome{PostID: p.PostID, Channel: p.Channel, At: p.UpdatedAt}
	sealed := func() *eventsv1.Seal {
		s := signer.Sign(stmt)
		return &eventsv1.Seal{KeyId: s.KeyID, Signature: s.Signature}
	}
	switch p.State {
	case ledger.StatePublished:
		stmt.State, stmt.RemoteID, stmt.URL = seal.StatePublished, p.RemoteID, p.URL
		return eventbus.SubjectPublished, "published", &eventsv1.PostPublished{PostId: p.PostID, Channel: p.Channel, RemoteId: p.RemoteID, Url: p.URL, PublishedAt: at, Seal: sealed()}, nil
	case ledger.StateFailed:
		stmt.State, stmt.Reason = seal.StateFailed, p.Error
		return eventbus.SubjectFailed, "failed", &eventsv1.PostFailed{PostId: p.PostID, Channel: p.Channel, Reason: p.Error, FailedAt: at, Seal: sealed()}, nil
	case ledger.StateUnknown:
		stmt.State, stmt.Reason = seal.StateUnknown, p.Error
		return eventbus.SubjectUnknown, "unknown", &eventsv1.PostUnknown{PostId: p.PostID, Channel: p.Channel, Reason: p.Error, At: at, Seal: sealed()}, nil
	default:
		return "", "", nil, fmt.Errorf("announce %s: unexpected state %q", p.PostID, p.State)
	}
}
