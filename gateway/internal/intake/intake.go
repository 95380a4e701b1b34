// Package intake turns a department's request to post into a PostRequested event on JetStream. It
// validates the request and answers only once the stream has stored the event, so nothing acknowledged
// to a department can be lost.
package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/humantext"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/tweetlen"
)

// MaxTweetLength is X's limit on a tweet's weighted length (see tweetlen).
var MaxTweetLength = tweetlen.MaxLength

// Request is a department's request to post.
type Request struct {
	Tweet          string
	RequestedBy    string
	IdempotencyKey string
	// APIKeyID is the id of the API key that authenticated the request: set by the gateway, never from
	// the department's input. The approval service records it and refuses a request whose key it does not
	// know for the department, or that was revoked before the request was stored.
	APIKeyID string
	// Media are the pictures to post with the text, checked already (media.Check, media.CheckSet).
	Media []Attachment
}

// Attachment is one picture of a request.
type Attachment struct {
	ContentType string
	Data        []byte
}

// MediaStore keeps the pictures of requests; *media.Store implements it.
type MediaStore interface {
	Put(ctx context.Context, name, contentType string, data []byte) (media.Ref, error)
}

// ValidationError says which input is wrong and why.
type ValidationError struct {
	Target  string
	Message string
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Target + ": " + e.Message }

// Validate checks a request and returns a *ValidationError for the first problem. Nothing is repaired:
// what the department sent is what the approver sees, or the request is refused.
func Validate(r Request) error {
	if err := humantext.CheckMultiline(r.Tweet); err != nil {
		return &ValidationError{"tweet", err.Error()}
	}
	// X counts a tweet's weighted length, not its characters: counting runes would let through a text
	// X refuses after the approver approved it.
	switch n := tweetlen.Count(r.Tweet); {
	case strings.TrimSpace(r.Tweet) == "":
		return &ValidationError{"tweet", "is required and must not be blank"}
	case n > MaxTweetLength:
		return &ValidationError{"tweet", fmt.Sprintf("is %d characters long as X counts them (a URL counts 23, CJK characters and emoji 2); X allows at most %d", n, MaxTweetLength)}
	}
	if err := humantext.CheckLine(r.RequestedBy); err != nil {
		return &ValidationError{"requestedby", err.Error()}
	}
	switch {
	case strings.TrimSpace(r.RequestedBy) == "":
		return &ValidationError{"requestedby", "is required: say who in the department asks for this post"}
	case utf8.RuneCountInString(r.RequestedBy) > 200:
		return &ValidationError{"requestedby", "must be at most 200 characters"}
	}
	if len(r.IdempotencyKey) > 255 || strings.IndexFunc(r.IdempotencyKey, func(c rune) bool { return c > unicode.MaxASCII || !unicode.IsPrint(c) }) >= 0 {
		return &ValidationError{"Idempotency-Key", "must be at most 255 printable ASCII characters"}
	}
	return nil
}

// Intake accepts post requests.
type Intake struct {
	pub   *eventbus.Publisher
	media MediaStore
	now   func() time.Time
}

// New returns an Intake publishing through pub and storing pictures in store.
func New(pub *eventbus.Publisher, store MediaStore) (*Intake, error) {
	if pub == nil || store == nil {
		return nil, errors.New("intake: nil publisher or media store")
	}
	return &Intake{pub: pub, media: store, now: time.Now}, nil
}

// idempotencySpace namespaces the post ids derived from Idempotency-Keys.
var idempotencySpace = uuid.MustParse("6f1c8f1e-3a53-4c8e-9a57-1d7c0f9b2a10")

// PostID is the id a request gets: random (time-ordered) without an Idempotency-Key, and derived from the
// department and the key with one, so that the same key always names the same post, however late it is
// retried. The approval service ignores a request for an id it already has.
func PostID(departmentID, idempotencyKey string) string {
	if idempotencyKey == "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	return uuid.NewSHA1(idempotencySpace, []byte(departmentID+"\x00"+idempotencyKey)).String()
}

// Submit validates r and publishes it for departmentID, returning the post id once JetStream stored it.
// Errors are *ValidationError or wrap eventbus.ErrUnavailable.
func (in *Intake) Submit(ctx context.Context, departmentID string, r Request) (string, error) {
	if err := Validate(r); err != nil {
		return "", err
	}
	if len(r.Media) > media.MaxItems {
		return "", &ValidationError{"media", fmt.Sprintf("holds %d pictures; a post takes at most %d", len(r.Media), media.MaxItems)}
	}
	id := PostID(departmentID, r.IdempotencyKey)
	ev := &eventsv1.PostRequested{
		PostId: id, DepartmentId: departmentID, Text: r.Tweet, RequestedBy: strings.TrimSpace(r.RequestedBy),
		RequestedAt: timestamppb.New(in.now()), IdempotencyKey: r.IdempotencyKey, ApiKeyId: r.APIKeyID,
	}
	// The pictures first, so that the request never names an object that is not stored. Objects of a
	// request that then fails to publish are left for the retention sweep, which deletes the pictures of
	// posts the approval service never heard of once they are older than the retention period.
	for i, a := range r.Media {
		ref, err := in.media.Put(ctx, media.ObjectName(id, i), a.ContentType, a.Data)
		if err != nil {
			return "", fmt.Errorf("submit %s: %w: %w", id, eventbus.ErrUnavailable, err)
		}
		ev.Media = append(ev.Media, &eventsv1.MediaRef{ObjectName: ref.Name, Sha256: ref.SHA256[:], ContentType: ref.ContentType, Size: ref.Size})
	}
	if err := in.pub.PublishProto(ctx, eventbus.SubjectRequested, eventbus.MsgID(id, "requested"), ev); err != nil {
		return "", fmt.Errorf("submit %s: %w", id, err)
	}
	return id, nil
}
