package approval

import (
	"context"
	"time"
)

// PostFilter narrows ListPosts. Zero fields do not filter.
type PostFilter struct {
	DepartmentID string
	Status       Status
	// WaitingForApprover keeps only pending posts that nobody could be asked about yet.
	WaitingForApprover bool
	Limit              int
}

// DecideParams is everything one decision writes, in one transaction.
type DecideParams struct {
	TokenHash string
	PostID    string
	Status    Status // the post's new status
	Outcome   Outcome
	Approver  string
	Comment   string
	At        time.Time
	Audit     AuditEntry
	// Announcement is the outbox item that tells the rest of Herald about the decision.
	Announcement OutboxItem

	// ApproverID is the deciding approver; their decision is recorded once per post.
	ApproverID string
	// EditedText is the text the approver approved instead of the requested one, if they edited it; it
	// becomes the post's final text when the post is approved.
	EditedText string
	// Resolve adds the post's decisions up (the new one included, read in the same transaction after the
	// post's row is locked) and says whether the post settles, and how. Nil settles it with Status at once
	// (ModeFirst). When the post stays pending, Audit is written with ToStatus pending and no Announcement.
	Resolve func(decisions []Decision) Resolution
	// Extra are more outbox items written with the Announcement (only when the post settles).
	Extra []OutboxItem
}

// CloseParams ends a pending post without a decision: it expired or was cancelled.
type CloseParams struct {
	PostID string
	Status Status // StatusExpired or StatusCancelled
	At     time.Time
	Audit  AuditEntry
	// Announcement is the outbox item that tells the rest of Herald.
	Announcement OutboxItem
	// Extra are more outbox items written with it.
	Extra []OutboxItem
}

// OutcomeParams records what the publisher reported for an approved post.
type OutcomeParams struct {
	PostID        string
	Status        Status
	Channel       string
	RemoteID      string
	RemoteURL     string
	PublishedAt   time.Time
	FailureReason string
	At            time.Time
	Audit         AuditEntry
	// Extra are outbox items written with the outcome (only when it changes the post).
	Extra []OutboxItem
}

// NewPost is one post for CreatePosts: the post with its audit entry and outbox items, as CreatePost takes them.
type NewPost struct {
	Post   Post
	Audit  AuditEntry
	Outbox []OutboxItem
}

// OutboxResult is what became of one claimed outbox item, for FinishOutbox: done (Err empty) or to be
// tried again at Next.
type OutboxResult struct {
	ID   int64
	Err  string
	Next time.Time
}

// Store is the approval service's persistence. Every method is atomic; methods that write several rows
// write them in one transaction. Implementations: store/sqlite and store/postgres, both checked by
// store/storetest.
type Store interface {
	CreateDepartment(ctx context.Context, d Department) error
	GetDepartment(ctx context.Context, id string) (Department, error)
	ListDepartments(ctx context.Context) ([]Department, error)
	// GetDepartmentLimits returns the limits set for a department; zero fields (and a department with none
	// set) use the defaults.
	GetDepartmentLimits(ctx context.Context, departmentID string) (Limits, error)
	// SetDepartmentLimits replaces the limits set for an existing department.
	SetDepartmentLimits(ctx context.Context, departmentID string, l Limits) error
	// CountUndecided counts the department's pending posts.
	CountUndecided(ctx context.Context, departmentID string) (int, error)

	CreateAPIKey(ctx context.Context, k APIKey) error
	// GetAPIKeyByHash returns the key with that hash, with its department's name, revoked or not.
	GetAPIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	ListAPIKeys(ctx context.Context, departmentID string) ([]APIKey, error)
	// RevokeAPIKey revokes a key; revoking a revoked key changes nothing and returns it.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) (APIKey, error)

	// UpsertApprover adds an approver, or renames the current approver with that email and returns them. A
	// removed approver is never brought back: their email becomes a new approver with a.ID, so that links
	// bound to the removed approver's id stay dead.
	UpsertApprover(ctx context.Context, a Approver) (Approver, error)
	GetApprover(ctx context.Context, id string) (Approver, error)
	ListApprovers(ctx context.Context) ([]Approver, error)
	// RemoveApprover removes a current approver for good; ErrNotFound if there is none with that id.
	RemoveApprover(ctx context.Context, id string, at time.Time) error

	// CreatePost stores a new post (with its status and failure reason as given) with its audit entry and
	// outbox items. If a post with that id exists it writes nothing and returns false: a redelivered request
	// is a no-op.
	CreatePost(ctx context.Context, p Post, audit AuditEntry, outbox []OutboxItem) (bool, error)
	// CreatePosts stores several new posts as CreatePost does, all in one transaction, and reports for each
	// whether it was created (false: a post with its id existed, or an earlier entry had the same id). If any
	// write fails, nothing is written and the error is returned: the caller cannot tell which post failed
	// and stores them one by one to find out.
	CreatePosts(ctx context.Context, ps []NewPost) ([]bool, error)
	GetPost(ctx context.Context, id string) (Post, error)
	ListPosts(ctx context.Context, f PostFilter) ([]Post, error)
	ListAudit(ctx context.Context, postID string) ([]AuditEntry, error)

	CreateToken(ctx context.Context, t Token) error
	// CreateTokens stores several tokens in one transaction.
	CreateTokens(ctx context.Context, ts []Token) error
	GetToken(ctx context.Context, hash string) (Token, error)
	// Decide settles a pending post through an unused token. ErrTokenUsed if the token was used meanwhile,
	// ErrClosed if the post is no longer pending; nothing is written then.
	Decide(ctx context.Context, p DecideParams) error
	// OverduePosts returns the ids of up to limit pending posts whose deadline is at or before now, oldest
	// deadline first.
	OverduePosts(ctx context.Context, now time.Time, limit int) ([]string, error)
	// ClosePost moves a pending post to p.Status with its audit entry and announcement. ErrClosed if the
	// post is no longer pending (another replica's sweep, a decision or a cancellation came first),
	// ErrNotFound if there is no such post; nothing is written then.
	ClosePost(ctx context.Context, p CloseParams) error
	// ResendApprovals replaces every unused link of a pending post (they stop working) and queues outbox,
	// the emails with fresh links, with an audit entry. ErrClosed if the post is no longer pending.
	ResendApprovals(ctx context.Context, postID string, at time.Time, audit AuditEntry, outbox []OutboxItem) error
	// ListDecisions returns a post's decisions, oldest first.
	ListDecisions(ctx context.Context, postID string) ([]Decision, error)

	// GetPolicy returns a department's policy, ErrNotFound if it has none (the default applies).
	GetPolicy(ctx context.Context, departmentID string) (Policy, error)
	// SetPolicy creates or replaces a department's policy, its approver list included.
	SetPolicy(ctx context.Context, p Policy) error
	// ListPolicyApprovers returns the current approvers a policy lists (for a policy without AllApprovers).
	ListPolicyApprovers(ctx context.Context, departmentID string) ([]Approver, error)

	// CountWaiting counts the pending posts that nobody could be asked about yet.
	CountWaiting(ctx context.Context) (int, error)
	// WaitingPosts returns up to limit of those, oldest first.
	WaitingPosts(ctx context.Context, limit int) ([]Post, error)
	// AskApprovers records that a waiting post is now put to its approvers under mode and required, with
	// an audit entry and the outbox items (emails, reminders). ErrClosed if the post is no longer pending
	// and waiting (another replica asked first, or it was cancelled).
	AskApprovers(ctx context.Context, postID string, mode Mode, required int, at time.Time, audit AuditEntry, outbox []OutboxItem) error

	// RecordOutcome moves an approved (or unknown) post to the publisher's outcome. It returns false and
	// writes nothing when the post is not in a state the outcome applies to (a redelivered event, say).
	RecordOutcome(ctx context.Context, p OutcomeParams) (bool, error)

	// DueOutbox returns up to limit items whose next attempt is due at now, oldest first, leased or not.
	// It only reads: work is taken with ClaimOutbox.
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error)
	// ClaimOutbox leases up to limit items that are due at now and not leased to anyone until until, oldest
	// first. Concurrent callers (replicas on one database) never get the same item while its lease runs,
	// so each item is worked on once; an item whose worker died is claimable again once its lease ends.
	ClaimOutbox(ctx context.Context, now, until time.Time, limit int) ([]OutboxItem, error)
	DeleteOutbox(ctx context.Context, id int64) error
	// FinishOutbox settles claimed items in one transaction: an item without Err is deleted, one with Err is
	// deferred as DeferOutbox does.
	FinishOutbox(ctx context.Context, rs []OutboxResult) error
	// DeferOutbox records a failed attempt and when to try again, and ends the item's lease.
	DeferOutbox(ctx context.Context, id int64, next time.Time, lastErr string) error

	// CreateSubscription stores a webhook subscription, its secret included.
	CreateSubscription(ctx context.Context, s Subscription) error
	// GetSubscription returns a subscription with its secret, ErrNotFound if there is none.
	GetSubscription(ctx context.Context, id string) (Subscription, error)
	// ListSubscriptions returns a department's subscriptions (every one with departmentID empty), oldest
	// first.
	ListSubscriptions(ctx context.Context, departmentID string) ([]Subscription, error)
	CountSubscriptions(ctx context.Context, departmentID string) (int, error)
	// DeleteSubscription deletes a subscription and its undelivered deliveries. With departmentID set,
	// only that department's: another's is ErrNotFound, like an unknown id.
	DeleteSubscription(ctx context.Context, id, departmentID string) error
	// FanOutWebhook queues a delivery of ev with body to each of the department's subscribers that want
	// it, due at at, and returns how many it queued. It is keyed by the outbox item outboxID: repeated,
	// it queues nothing new.
	FanOutWebhook(ctx context.Context, outboxID int64, departmentID, postID string, ev WebhookEvent, body []byte, at time.Time) (int, error)
	// ClaimWebhookDeliveries leases up to limit deliveries due at now until until, as ClaimOutbox does.
	ClaimWebhookDeliveries(ctx context.Context, now, until time.Time, limit int) ([]WebhookDelivery, error)
	// DeleteWebhookDelivery deletes a delivered delivery and, with subscriptionID set, clears that
	// subscription's failing mark, in one transaction.
	DeleteWebhookDelivery(ctx context.Context, id int64, subscriptionID string) error
	// DeferWebhookDelivery records a failed attempt and when to try again, and ends the lease.
	DeferWebhookDelivery(ctx context.Context, id int64, next time.Time, lastErr string) error
	// GiveUpWebhookDelivery deletes a delivery that used up its attempts and marks its subscription
	// failing (since at, unless it already was), in one transaction.
	GiveUpWebhookDelivery(ctx context.Context, id int64, subscriptionID string, at time.Time, lastErr string) error
	// CountWebhookDeliveries counts the deliveries not yet delivered or given up.
	CountWebhookDeliveries(ctx context.Context) (int, error)
}
