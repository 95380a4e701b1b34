// Package approval is the approval service's domain: post requests, the people who decide on them, the
// decisions, and the rules that move a request from pending to its end. It declares the Store it needs and
// the Mailer and Announcer it drives; adapters live in sibling packages. It knows nothing of protobuf or the
// event bus: internal/events translates both ways.
package approval

import (
	"errors"
	"fmt"
	"time"
)

// Status is where a post request is in its life.
type Status string

// The statuses of a post. Pending and Approved are in flight; the others are final as far as the
// department is concerned (Unknown waits for ops).
const (
	StatusPending   Status = "pending"
	StatusApproved  Status = "approved"
	StatusRejected  Status = "rejected"
	StatusPublished Status = "published"
	StatusFailed    Status = "failed"
	StatusUnknown   Status = "unknown"
	StatusExpired   Status = "expired"
	StatusCancelled Status = "cancelled"
)

// Outcome is an approver's answer.
type Outcome string

// The two answers an approver can give.
const (
	OutcomeApprove Outcome = "approve"
	OutcomeReject  Outcome = "reject"
)

// Department is a part of the organisation that asks for posts.
type Department struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey is a department's credential for the gateway. Only the hash of the secret is kept.
type APIKey struct {
	ID             string
	DepartmentID   string
	DepartmentName string
	Label          string
	Prefix         string
	Hash           string
	CreatedAt      time.Time
	RevokedAt      time.Time // zero while the key is valid
}

// Approver is a member of the communications team.
type Approver struct {
	ID        string
	Email     string
	Name      string
	CreatedAt time.Time
}

// Request is a department's request to publish, as the gateway passed it on.
type Request struct {
	PostID         string
	DepartmentID   string
	Text           string
	RequestedBy    string
	IdempotencyKey string
	// RequestedAt is when the gateway accepted the request; zero if it did not say.
	RequestedAt time.Time
	// APIKeyID is the API key that authenticated the request; empty in requests queued before gateways
	// sent it, which are accepted without a key check.
	APIKeyID string
	// StoredAt is when the event stream stored the request: set by the stream's server, not by whoever
	// published the event, so a forged request cannot date itself before a key's revocation. Zero if
	// unknown; RequestedAt stands in then.
	StoredAt time.Time
	// Media are the pictures to post with the text, in order.
	Media []Media
}

// Media is one picture of a post: an object in the media bucket, pinned by its hash. The approval seal
// covers the hashes, so the publisher posts exactly the pictures the approver saw.
type Media struct {
	// Name is the object's name in the bucket.
	Name string
	// SHA256 is the hash of the picture's bytes.
	SHA256 [32]byte
	// ContentType is image/jpeg, image/png, image/gif or image/webp.
	ContentType string
	Size        int64
}

// MaxMedia is the most pictures a post may carry (X's limit).
const MaxMedia = 4

// PublisherReport is what the publisher reported about an approved post.
type PublisherReport struct {
	PostID   string
	Channel  string
	RemoteID string
	// RemoteURL and PublishedAt are set when the post went out.
	RemoteURL   string
	PublishedAt time.Time
	// Reason is the channel's explanation when the post failed or its fate is unknown.
	Reason string
}

// Post is a department's request to publish, with what became of it.
type Post struct {
	ID             string
	DepartmentID   string
	Text           string
	RequestedBy    string
	IdempotencyKey string
	Status         Status
	CreatedAt      time.Time
	UpdatedAt      time.Time

	Decision    Outcome // empty until decided
	DecidedBy   string
	DecidedAt   time.Time
	Comment     string
	Channel     string
	RemoteID    string
	RemoteURL   string
	PublishedAt time.Time
	// FailureReason is the channel's explanation for StatusFailed or StatusUnknown.
	FailureReason string
	// ExpiresAt is the post's deadline: still pending then, it expires. Zero for posts stored before
	// posts had deadlines.
	ExpiresAt time.Time
	// Mode and Required are the policy's when the approvers were asked: Required approvals approve it
	// (1 in ModeFirst, every approver asked in ModeAll, the quorum in ModeQuorum).
	Mode     Mode
	Required int
	// WaitingFor says what a pending post waits for when nobody could be asked yet (no approver).
	WaitingFor string
	// FinalText is the text to publish when an approver edited it while approving; empty when the
	// requested Text goes out unchanged. Use Published().
	FinalText string
	// Decisions are every approver's answers so far, oldest first (filled by Service.GetPost).
	Decisions []Decision
	// Media are the pictures posted with the text, in order.
	Media []Media
}

// Published returns the text that is (or would be) published: the approver's edit, or the request's.
func (p Post) Published() string {
	if p.FinalText != "" {
		return p.FinalText
	}
	return p.Text
}

// WaitingForApprover is what a post waits for when its department's policy has nobody to ask.
const WaitingForApprover = "waiting for an approver to be added"

// Token is an approval link's token: bound to one approver and one post, single use, expiring. Only the
// hash of the token is stored.
type Token struct {
	Hash       string
	PostID     string
	ApproverID string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero until used
	// ReplacedAt is when a re-sent link replaced this one, which then stops working; zero otherwise.
	ReplacedAt time.Time
}

// AuditEntry is one append-only row of a post's history.
type AuditEntry struct {
	PostID     string
	At         time.Time
	Actor      string
	Origin     string
	Action     string
	FromStatus Status
	ToStatus   Status
	Comment    string
	// APIKeyID is the API key that authenticated the request, on a "requested" entry; empty otherwise and
	// for requests queued before gateways sent it.
	APIKeyID string
}

// OutboxKind says what an outbox item asks for.
type OutboxKind string

// The kinds of work the outbox carries past a commit.
const (
	// OutboxApprovalEmail mails the approver ApproverID a link for the post PostID.
	OutboxApprovalEmail OutboxKind = "approval_email"
	// OutboxPostApproved announces that the post PostID was approved, so that it gets published.
	OutboxPostApproved OutboxKind = "post_approved"
	// OutboxPostRejected announces that the post PostID was rejected.
	OutboxPostRejected OutboxKind = "post_rejected"
	// OutboxApprovalReminder reminds the approver ApproverID, with a fresh link, that the post PostID
	// still waits for them; it is written due at a set point before the deadline, and does nothing if the
	// post is settled by then.
	OutboxApprovalReminder OutboxKind = "approval_reminder"
	// OutboxPostExpired announces that the post PostID expired undecided.
	OutboxPostExpired OutboxKind = "post_expired"
	// OutboxPostCancelled announces that the post PostID was cancelled.
	OutboxPostCancelled OutboxKind = "post_cancelled"
	// OutboxTeamsRequest posts the request card for the post PostID to its department's Teams webhook.
	OutboxTeamsRequest OutboxKind = "teams_request"
	// OutboxTeamsOutcome posts what became of the post PostID to its department's Teams webhook.
	OutboxTeamsOutcome OutboxKind = "teams_outcome"
	// Kinds starting with "webhook_" (webhook_published, webhook_rejected, webhook_failed,
	// webhook_expired) fan that event of the post PostID out to its department's webhook subscribers.
)

// OutboxItem is work to do after a transaction committed: written in the same transaction, so a crash
// between the commit and the work loses nothing; deleted once done. It names what to do, not how: an
// announcement is built from the post when it is delivered, from the decision stored on the post, which
// never changes once made.
type OutboxItem struct {
	ID     int64
	Kind   OutboxKind
	PostID string
	// ApproverID is the approver to mail, for OutboxApprovalEmail; empty otherwise.
	ApproverID    string
	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
}

// Errors callers branch on. Adapters map them to gRPC codes and HTTP statuses.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrInvalid       = errors.New("invalid argument")
	ErrUnauthorized  = errors.New("unauthorized")
	// ErrTokenUsed means the approval link was already used.
	ErrTokenUsed = errors.New("this approval link was already used")
	// ErrTokenExpired means the approval link's time ran out.
	ErrTokenExpired = errors.New("this approval link has expired")
	// ErrPostCancelled means the post was cancelled before this decision. It is an ErrClosed to whoever
	// branches on that, with a message that says what happened.
	ErrPostCancelled error = closedError("this post was cancelled: there is nothing to decide")
	// ErrAlreadyAnswered means the approver already answered this post (through another of their links).
	ErrAlreadyAnswered = errors.New("you already answered for this post")
	// ErrSelfApproval means the approver asked for the post themselves, and the policy does not let them
	// approve it.
	ErrSelfApproval = errors.New("you requested this post yourself, and this department's policy does not let a requester approve their own post")
	// ErrClosed means the post was settled (or cancelled) before this decision arrived.
	ErrClosed = errors.New("this post was already decided")
	// ErrLinkReplaced means the approval link was replaced by a re-sent one and no longer works.
	ErrLinkReplaced = errors.New("this approval link was replaced by a newer one: use the link in the latest email")
	// ErrLinkRevoked means the approval link was sent to an approver who has since been removed: it no
	// longer works, and adding the address again does not bring it back.
	ErrLinkRevoked = errors.New("this approval link no longer works: the approver it was sent to was removed from Herald")
	// ErrOtherDepartment means the post asked for belongs to another department. It is an ErrNotFound to
	// anyone who branches on that; the gateway tells it apart from a post not recorded yet (see grpcapi).
	ErrOtherDepartment = fmt.Errorf("%w: the post belongs to another department", ErrNotFound)
	// ErrKeyRefused means a post request names an API key that is unknown, belongs to another department,
	// or was revoked before the request was stored. It always comes wrapped with ErrInvalid too: redelivery
	// cannot fix it.
	ErrKeyRefused = errors.New("the request's API key is not valid for it")
	// ErrWebhooksOff means this Herald was started without webhook deliveries, so it takes no
	// subscriptions.
	ErrWebhooksOff = errors.New("webhook triggers are not enabled on this Herald")
)

// closedError is an ErrClosed with its own message.
type closedError string

func (e closedError) Error() string        { return string(e) }
func (e closedError) Is(target error) bool { return target == ErrClosed }

// invalid returns an ErrInvalid that says what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
