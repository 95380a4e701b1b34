// Package approval is the approval service's domain: post requests, the people who decide on them, the
// decisions, and the rules that move a request from pending to its end. It declares the Store it needs and
// the Mailer and EventPublisher it drives; adapters live in sibling packages.
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

// Post is a department's request to publish.
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
}

// Token is an approval link's token: bound to one approver and one post, single use, expiring. Only the
// hash of the token is stored.
type Token struct {
	Hash       string
	PostID     string
	ApproverID string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero until used
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
}

// OutboxKind says what an outbox item asks for.
type OutboxKind string

// The kinds of work the outbox carries past a commit.
const (
	// OutboxEvent publishes Payload on Subject with MsgID.
	OutboxEvent OutboxKind = "event"
	// OutboxApprovalEmail mails the approver whose id is in Subject a link for the post whose id is in MsgID.
	OutboxApprovalEmail OutboxKind = "approval_email"
)

// OutboxItem is work to do after a transaction committed: written in the same transaction, so a crash
// between the commit and the work loses nothing; deleted once done.
type OutboxItem struct {
	ID            int64
	Kind          OutboxKind
	Subject       string
	MsgID         string
	Payload       []byte
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
	// ErrClosed means the post was settled (or cancelled) before this decision arrived.
	ErrClosed = errors.New("this post was already decided")
)

// invalid returns an ErrInvalid that says what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
