package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/heraldshared/humantext"
	"github.com/heraldhq/herald/services/heraldshared/tweetlen"
)

// Mailer sends the approval email to one approver.
type Mailer interface {
	SendApprovalRequest(ctx context.Context, e ApprovalEmail) error
}

// ApprovalEmail is what an approver is told about a post.
type ApprovalEmail struct {
	To             string
	ToName         string
	DepartmentName string
	RequestedBy    string
	Text           string
	Link           string
	ExpiresAt      time.Time
	// Reminder is set on a reminder: the approver was asked before and has not answered yet.
	Reminder bool
	// PostID names the post; Media are its pictures, which the mailer attaches.
	PostID string
	Media  []Media
}

// Announcer tells the rest of Herald about decisions. Each method returns once the announcement is stored
// for delivery; announcing the same decision again must be harmless, since the outbox repeats an
// announcement whose acknowledgement it did not see.
type Announcer interface {
	// PostApproved announces the approval recorded on p, which hands the post to the publisher.
	PostApproved(ctx context.Context, p Post) error
	// PostRejected announces the rejection recorded on p.
	PostRejected(ctx context.Context, p Post) error
	// PostExpired announces that p expired undecided. Informational: nothing acts on it.
	PostExpired(ctx context.Context, p Post) error
	// PostCancelled announces that p was cancelled before a decision. Informational too.
	PostCancelled(ctx context.Context, p Post) error
}

// KeyRevocations is told of every revoked key once the revocation is stored, so that gateways stop
// accepting the key at once instead of when their cache of key checks expires. Delivery is best effort:
// a lost announcement only delays the revocation to the end of that cache's time to live.
type KeyRevocations interface {
	KeyRevoked(ctx context.Context, k APIKey) error
}

// Config tunes a Service.
type Config struct {
	// PublicURL is the gateway's public base URL; approval links point at {PublicURL}/approvals/{token}.
	PublicURL string
	// TokenTTL is how long a post waits for a decision (HERALD_APPROVAL_TTL): its deadline, and so how long
	// its links work. Approvers who have not answered are reminded at half and at nine tenths of it.
	TokenTTL time.Duration
	// OutboxLease is how long a claimed outbox item is left to the replica that claimed it before another
	// may take it over (when the first died mid-delivery). It must exceed the longest delivery (an SMTP
	// exchange with its timeouts); zero means five minutes.
	OutboxLease time.Duration
	// OutboxConcurrency is how many outbox items (emails, announcements, cards) are delivered at once;
	// zero means DefaultOutboxConcurrency. The mailer bounds its own connections besides.
	OutboxConcurrency int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// KeyRevocations announces revoked keys; nil leaves gateways to notice when their cache expires.
	KeyRevocations KeyRevocations
	// DefaultLimits apply to departments without limits of their own; zero fields take
	// DefaultPostsPerMinute and DefaultMaxUndecided.
	DefaultLimits Limits
	// Teams posts cards to the webhooks policies name; nil posts none.
	Teams Teams
	// Webhooks delivers the departments' webhook subscriptions; nil takes no subscriptions.
	Webhooks *WebhookConfig
}

// DefaultOutboxConcurrency is Config.OutboxConcurrency when unset.
const DefaultOutboxConcurrency = 8

// Service carries out the approval service's use cases over a Store.
type Service struct {
	store     Store
	mailer    Mailer
	announcer Announcer
	cfg       Config
	log       *slog.Logger
	wake      chan struct{}
	wakeHooks chan struct{}
}

// NewService returns a Service. Every dependency is required.
func NewService(store Store, mailer Mailer, announcer Announcer, cfg Config, log *slog.Logger) (*Service, error) {
	switch {
	case store == nil:
		return nil, errors.New("approval: nil store")
	case mailer == nil:
		return nil, errors.New("approval: nil mailer")
	case announcer == nil:
		return nil, errors.New("approval: nil announcer")
	case log == nil:
		return nil, errors.New("approval: nil logger")
	case cfg.PublicURL == "":
		return nil, errors.New("approval: public URL is required for approval links")
	case cfg.Webhooks != nil && (cfg.Webhooks.Sender == nil || cfg.Webhooks.Payload == nil):
		return nil, errors.New("approval: webhooks need a sender and a payload")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 72 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultLimits.PostsPerMinute < 0 || cfg.DefaultLimits.MaxUndecided < 0 {
		return nil, errors.New("approval: default limits must not be negative")
	}
	cfg.DefaultLimits = cfg.DefaultLimits.withDefaults(Limits{PostsPerMinute: DefaultPostsPerMinute, MaxUndecided: DefaultMaxUndecided})
	if cfg.OutboxConcurrency <= 0 {
		cfg.OutboxConcurrency = DefaultOutboxConcurrency
	}
	if cfg.OutboxLease <= 0 {
		cfg.OutboxLease = 5 * time.Minute
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Service{store: store, mailer: mailer, announcer: announcer, cfg: cfg, log: log, wake: make(chan struct{}, 1), wakeHooks: make(chan struct{}, 1)}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// CreateDepartment adds a department.
func (s *Service) CreateDepartment(ctx context.Context, name string) (Department, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return Department{}, invalid("department name must be 1 to 100 characters")
	}
	if err := humantext.CheckLine(name); err != nil {
		return Department{}, invalid("department name %v", err)
	}
	d := Department{ID: uuid.NewString(), Name: name, CreatedAt: s.now()}
	if err := s.store.CreateDepartment(ctx, d); err != nil {
		return Department{}, fmt.Errorf("create department %q: %w", name, err)
	}
	return d, nil
}

// ListDepartments lists every department by name.
func (s *Service) ListDepartments(ctx context.Context) ([]Department, error) {
	return s.store.ListDepartments(ctx)
}

// CreateAPIKey issues a key for a department and returns it with its secret, which is not stored.
func (s *Service) CreateAPIKey(ctx context.Context, departmentID, label string) (APIKey, string, error) {
	if _, err := s.store.GetDepartment(ctx, departmentID); err != nil {
		return APIKey{}, "", fmt.Errorf("department %q: %w", departmentID, err)
	}
	if utf8.RuneCountInString(label) > 100 {
		return APIKey{}, "", invalid("label must be at most 100 characters")
	}
	secret := apiKeyPrefix + newSecret()
	k := APIKey{
		ID:           uuid.NewString(),
		DepartmentID: departmentID,
		Label:        strings.TrimSpace(label),
		Prefix:       secret[:len(apiKeyPrefix)+6],
		Hash:         HashSecret(secret),
		CreatedAt:    s.now(),
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return APIKey{}, "", fmt.Errorf("create api key: %w", err)
	}
	return k, secret, nil
}

// ListAPIKeys lists a department's keys, revoked ones included.
func (s *Service) ListAPIKeys(ctx context.Context, departmentID string) ([]APIKey, error) {
	return s.store.ListAPIKeys(ctx, departmentID)
}

// RevokeAPIKey makes a key unusable from now on, and announces it to the gateways. Revoking a revoked key
// announces it again, which is harmless and helps a gateway that missed the first announcement.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	k, err := s.store.RevokeAPIKey(ctx, id, s.now())
	if err != nil {
		return APIKey{}, fmt.Errorf("revoke api key %q: %w", id, err)
	}
	if s.cfg.KeyRevocations != nil {
		if err := s.cfg.KeyRevocations.KeyRevoked(ctx, k); err != nil {
			// The revocation is stored, which is what matters: the approval service refuses the key from
			// now on, and gateways that miss the announcement stop accepting it when their cache expires.
			s.log.WarnContext(ctx, "api key revoked but not announced to the gateways; they refuse it once their cache expires", "key_id", k.ID, "err", err)
		}
	}
	return k, nil
}

// AuthenticateKey returns the valid key that secret is, or ErrUnauthorized.
func (s *Service) AuthenticateKey(ctx context.Context, secret string) (APIKey, error) {
	if !strings.HasPrefix(secret, apiKeyPrefix) || len(secret) > 200 {
		return APIKey{}, ErrUnauthorized
	}
	hash := HashSecret(secret)
	k, err := s.store.GetAPIKeyByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("authenticate key: %w", err)
	}
	if !sameHash(k.Hash, hash) || !k.RevokedAt.IsZero() {
		return APIKey{}, ErrUnauthorized
	}
	return k, nil
}

// AddApprover adds a member of the communications team.
func (s *Service) AddApprover(ctx context.Context, email, name string) (Approver, error) {
	addr, err := mail.ParseAddress(strings.TrimSpace(email))
	if err != nil || addr.Address != strings.TrimSpace(email) {
		return Approver{}, invalid("approver email %q is not a plain email address", email)
	}
	if utf8.RuneCountInString(name) > 100 {
		return Approver{}, invalid("approver name must be at most 100 characters")
	}
	// The name goes into the To header of every approval email: a line break there made each one fail.
	if err := humantext.CheckLine(name); err != nil {
		return Approver{}, invalid("approver name %v", err)
	}
	a := Approver{ID: uuid.NewString(), Email: strings.ToLower(addr.Address), Name: strings.TrimSpace(name), CreatedAt: s.now()}
	a, err = s.store.UpsertApprover(ctx, a)
	if err != nil {
		return Approver{}, fmt.Errorf("add approver: %w", err)
	}
	s.askWaiting(ctx) // posts that waited for an approver are mailed now
	return a, nil
}

// ListApprovers lists the current approvers.
func (s *Service) ListApprovers(ctx context.Context) ([]Approver, error) {
	return s.store.ListApprovers(ctx)
}

// RemoveApprover removes an approver for good: links already sent to them stop working, and adding the
// address again makes a new approver rather than bringing those links back.
func (s *Service) RemoveApprover(ctx context.Context, id string) error {
	return s.store.RemoveApprover(ctx, id, s.now())
}

// Submit records a requested post and queues an approval email to every approver. A redelivered request
// changes nothing. A request for an unknown department is invalid and never will be valid.
func (s *Service) Submit(ctx context.Context, r Request) error {
	return s.SubmitBatch(ctx, []Request{r})[0]
}

// SubmitBatch does what Submit does for each request, storing them all in one transaction: one commit (one
// fsync) for the lot instead of one each. It returns an error for each request, in order. A request that
// is refused does not hold up the others; if the batch's transaction fails, each request is stored in a
// transaction of its own, so a request the database refuses fails alone.
func (s *Service) SubmitBatch(ctx context.Context, rs []Request) []error {
	errs := make([]error, len(rs))
	c := newSubmitCache(s)
	var batch []NewPost
	var idx []int // batch[i] is rs[idx[i]]
	var askers []int
	for i, r := range rs {
		np, asked, err := s.prepareSubmit(ctx, r, c)
		if err != nil {
			errs[i] = err
			continue
		}
		batch = append(batch, np)
		idx = append(idx, i)
		askers = append(askers, asked)
	}
	if len(batch) == 0 {
		return errs
	}
	created, err := s.store.CreatePosts(ctx, batch)
	if err != nil && len(batch) > 1 {
		s.log.WarnContext(ctx, "storing a batch of post requests failed; storing them one by one", "posts", len(batch), "err", err)
		created = make([]bool, len(batch))
		for j, np := range batch {
			one, err := s.store.CreatePosts(ctx, []NewPost{np})
			if err != nil {
				errs[idx[j]] = fmt.Errorf("submit %s: %w", np.Post.ID, err)
				continue
			}
			created[j] = one[0]
		}
	} else if err != nil {
		errs[idx[0]] = fmt.Errorf("submit %s: %w", batch[0].Post.ID, err)
		return errs
	}
	woken := false
	for j, np := range batch {
		if errs[idx[j]] != nil {
			continue
		}
		p := np.Post
		if !created[j] {
			s.log.InfoContext(ctx, "post request redelivered; nothing to do", "post_id", p.ID)
			continue
		}
		if askers[j] == 0 {
			s.log.WarnContext(ctx, "post requested but its department's policy has no approver to ask; it is mailed once one is added", "post_id", p.ID)
		}
		s.log.InfoContext(ctx, "post requested", "post_id", p.ID, "department_id", p.DepartmentID, "approvers", askers[j])
		woken = true
	}
	if woken {
		s.Wake()
	}
	return errs
}

// submitCache keeps what one batch of requests reads about their departments, so a batch of a hundred
// requests from one department reads its policy and approvers once. It lives for one batch only: a policy
// changed meanwhile applies to the next.
type submitCache struct {
	s         *Service
	depts     map[string]error
	keys      map[string][]APIKey
	policies  map[string]Policy
	approvers map[string][]Approver
}

func newSubmitCache(s *Service) *submitCache {
	return &submitCache{s: s, depts: map[string]error{}, keys: map[string][]APIKey{}, policies: map[string]Policy{}, approvers: map[string][]Approver{}}
}

// department returns nil if the department exists, ErrNotFound if it does not, or the store's error.
func (c *submitCache) department(ctx context.Context, id string) error {
	if err, ok := c.depts[id]; ok {
		return err
	}
	_, err := c.s.store.GetDepartment(ctx, id)
	if err == nil || errors.Is(err, ErrNotFound) {
		c.depts[id] = err // a store failure is not remembered: the next request tries again
	}
	return err
}

func (c *submitCache) apiKeys(ctx context.Context, departmentID string) ([]APIKey, error) {
	if ks, ok := c.keys[departmentID]; ok {
		return ks, nil
	}
	ks, err := c.s.store.ListAPIKeys(ctx, departmentID)
	if err != nil {
		return nil, err
	}
	c.keys[departmentID] = ks
	return ks, nil
}

// policy returns a department's policy and the approvers it asks now.
func (c *submitCache) policy(ctx context.Context, departmentID string) (Policy, []Approver, error) {
	if p, ok := c.policies[departmentID]; ok {
		return p, c.approvers[departmentID], nil
	}
	p, err := c.s.policyFor(ctx, departmentID)
	if err != nil {
		return Policy{}, nil, err
	}
	as, err := c.s.approversFor(ctx, p)
	if err != nil {
		return Policy{}, nil, err
	}
	c.policies[departmentID], c.approvers[departmentID] = p, as
	return p, as, nil
}

// prepareSubmit checks a request and returns what storing it writes, and how many approvers it asks.
func (s *Service) prepareSubmit(ctx context.Context, r Request, c *submitCache) (NewPost, int, error) {
	if _, err := uuid.Parse(r.PostID); err != nil {
		return NewPost{}, 0, invalid("post id %q is not a UUID", r.PostID)
	}
	if strings.TrimSpace(r.Text) == "" {
		return NewPost{}, 0, invalid("post %s has no text", r.PostID)
	}
	// The gateway checks both already; a request that reached the bus some other way is held to the same
	// rules, before anything is stored or mailed.
	if err := humantext.CheckMultiline(r.Text); err != nil {
		return NewPost{}, 0, invalid("the text %v", err)
	}
	if err := humantext.CheckLine(r.RequestedBy); err != nil {
		return NewPost{}, 0, invalid("requested_by %v", err)
	}
	if err := checkMedia(r.PostID, r.Media); err != nil {
		return NewPost{}, 0, err
	}
	if err := c.department(ctx, r.DepartmentID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return NewPost{}, 0, invalid("post %s names unknown department %q", r.PostID, r.DepartmentID)
		}
		return NewPost{}, 0, fmt.Errorf("submit %s: %w", r.PostID, err)
	}
	if err := s.checkRequestKey(ctx, r, c); err != nil {
		return NewPost{}, 0, err
	}
	pol, approvers, err := c.policy(ctx, r.DepartmentID)
	if err != nil {
		return NewPost{}, 0, fmt.Errorf("submit %s: %w", r.PostID, err)
	}
	now := s.now()
	created := r.createdAt(now)
	p := Post{
		ID:             r.PostID,
		DepartmentID:   r.DepartmentID,
		Text:           r.Text,
		RequestedBy:    r.RequestedBy,
		IdempotencyKey: r.IdempotencyKey,
		Status:         StatusPending,
		CreatedAt:      created,
		UpdatedAt:      now,
		Media:          r.Media,
	}
	// The deadline counts from when the department asked, as the reminders do.
	p.ExpiresAt = created.Add(pol.TTL)
	p.Mode, p.Required = pol.Mode, required(pol, len(approvers))
	if len(approvers) == 0 {
		// Not silently parked: the status says so, ops see it (metric, ListPosts filter), and adding an
		// approver mails it (askWaiting).
		p.WaitingFor = WaitingForApprover
	}
	outbox := s.askOutbox(p, approvers, now)
	if len(approvers) > 0 {
		outbox = append(outbox, s.teamsItems(pol, OutboxTeamsRequest, p.ID, now)...)
	}
	audit := AuditEntry{PostID: p.ID, At: now, Actor: p.RequestedBy, Origin: "department:" + p.DepartmentID, Action: "requested", ToStatus: StatusPending, APIKeyID: r.APIKeyID}
	return NewPost{Post: p, Audit: audit, Outbox: outbox}, len(approvers), nil
}

// checkRequestKey refuses a request whose API key is unknown, another department's, or was revoked before
// the request was stored: anyone able to publish post requests could otherwise have approvers mailed in
// the name of a revoked key. A request without a key id was queued before gateways sent one and passes.
func (s *Service) checkRequestKey(ctx context.Context, r Request, c *submitCache) error {
	if r.APIKeyID == "" {
		return nil
	}
	at := r.StoredAt
	if at.IsZero() {
		at = r.RequestedAt
	}
	if at.IsZero() {
		at = s.now()
	}
	keys, err := c.apiKeys(ctx, r.DepartmentID)
	if err != nil {
		return fmt.Errorf("submit %s: keys of department %s: %w", r.PostID, r.DepartmentID, err)
	}
	for _, k := range keys {
		if k.ID != r.APIKeyID {
			continue
		}
		if !k.RevokedAt.IsZero() && !k.RevokedAt.After(at) {
			return fmt.Errorf("%w: %w: post %s names API key %s, revoked at %s, before the request (%s)",
				ErrInvalid, ErrKeyRefused, r.PostID, k.ID, k.RevokedAt.Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
		}
		return nil
	}
	return fmt.Errorf("%w: %w: post %s names API key %q, which department %s does not have",
		ErrInvalid, ErrKeyRefused, r.PostID, r.APIKeyID, r.DepartmentID)
}

// GetPost returns a post. With departmentID set, another department's post is ErrOtherDepartment, which
// is also ErrNotFound.
func (s *Service) GetPost(ctx context.Context, id, departmentID string) (Post, error) {
	p, err := s.store.GetPost(ctx, id)
	if err != nil {
		return Post{}, fmt.Errorf("get post %s: %w", id, err)
	}
	if departmentID != "" && p.DepartmentID != departmentID {
		return Post{}, fmt.Errorf("get post %s: %w", id, ErrOtherDepartment)
	}
	return s.withDecisions(ctx, p)
}

// withDecisions fills in p's decisions.
func (s *Service) withDecisions(ctx context.Context, p Post) (Post, error) {
	ds, err := s.store.ListDecisions(ctx, p.ID)
	if err != nil {
		return Post{}, fmt.Errorf("decisions of %s: %w", p.ID, err)
	}
	if len(ds) > 0 {
		p.Decisions = ds
	}
	return p, nil
}

// ListAudit returns a post's history, oldest first.
func (s *Service) ListAudit(ctx context.Context, postID string) ([]AuditEntry, error) {
	if _, err := s.store.GetPost(ctx, postID); err != nil {
		return nil, fmt.Errorf("audit of %s: %w", postID, err)
	}
	return s.store.ListAudit(ctx, postID)
}

// ListPosts lists posts, newest first.
func (s *Service) ListPosts(ctx context.Context, f PostFilter) ([]Post, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 500 {
		f.Limit = 500
	}
	return s.store.ListPosts(ctx, f)
}

// LinkState says whether an approval link can still be used.
type LinkState string

// The states of an approval link.
const (
	LinkOpen    LinkState = "open"
	LinkUsed    LinkState = "used"
	LinkExpired LinkState = "expired"
	LinkClosed  LinkState = "closed"
	// LinkCancelled: the department (or ops) cancelled the post before anyone decided.
	LinkCancelled LinkState = "cancelled"
	// LinkReplaced: ops re-sent the approval emails, and this link was replaced by a newer one.
	LinkReplaced LinkState = "replaced"
)

// ApprovalView is what an approval link shows.
type ApprovalView struct {
	Post       Post
	Approver   Approver
	Department Department
	State      LinkState
	ExpiresAt  time.Time
}

// ViewApproval returns what the link with token points at. It changes nothing.
func (s *Service) ViewApproval(ctx context.Context, token string) (ApprovalView, error) {
	t, err := s.lookupToken(ctx, token)
	if err != nil {
		return ApprovalView{}, err
	}
	p, err := s.store.GetPost(ctx, t.PostID)
	if err != nil {
		return ApprovalView{}, fmt.Errorf("approval post %s: %w", t.PostID, err)
	}
	a, err := s.linkApprover(ctx, t)
	if err != nil {
		return ApprovalView{}, err
	}
	d, err := s.store.GetDepartment(ctx, p.DepartmentID)
	if err != nil {
		return ApprovalView{}, fmt.Errorf("approval department %s: %w", p.DepartmentID, err)
	}
	if p, err = s.withDecisions(ctx, p); err != nil {
		return ApprovalView{}, err
	}
	return ApprovalView{Post: p, Approver: a, Department: d, State: s.linkState(t, p), ExpiresAt: t.ExpiresAt}, nil
}

func (s *Service) linkState(t Token, p Post) LinkState {
	switch {
	case !t.UsedAt.IsZero():
		return LinkUsed
	case !t.ReplacedAt.IsZero():
		return LinkReplaced
	case p.Status == StatusExpired:
		return LinkExpired
	case p.Status == StatusCancelled:
		return LinkCancelled
	case p.Status != StatusPending:
		return LinkClosed
	case !s.now().Before(t.ExpiresAt):
		return LinkExpired
	default:
		return LinkOpen
	}
}

// linkApprover returns the approver a link was sent to, or ErrLinkRevoked once they were removed: a
// removed approver's id never comes back, so neither does the link.
func (s *Service) linkApprover(ctx context.Context, t Token) (Approver, error) {
	a, err := s.store.GetApprover(ctx, t.ApproverID)
	if errors.Is(err, ErrNotFound) {
		return Approver{}, ErrLinkRevoked
	}
	if err != nil {
		return Approver{}, fmt.Errorf("approval link approver %s: %w", t.ApproverID, err)
	}
	return a, nil
}

func (s *Service) lookupToken(ctx context.Context, token string) (Token, error) {
	if token == "" || len(token) > 100 {
		return Token{}, fmt.Errorf("approval link: %w", ErrNotFound)
	}
	t, err := s.store.GetToken(ctx, HashSecret(token))
	if err != nil {
		return Token{}, fmt.Errorf("approval link: %w", err)
	}
	return t, nil
}

// Decide records an approver's decision through their link, without edits.
func (s *Service) Decide(ctx context.Context, token string, outcome Outcome, comment, origin string) (Post, error) {
	return s.DecideEdited(ctx, token, outcome, comment, origin, "")
}

// DecideEdited records an approver's decision through their link. editedText, when set with an approval,
// replaces the requested text: it is what gets published and what the approval seals. The post's policy
// (its mode, snapshotted when the approvers were asked) says whether this decision settles it; a settled
// post is handed on through the outbox.
func (s *Service) DecideEdited(ctx context.Context, token string, outcome Outcome, comment, origin, editedText string) (Post, error) {
	if outcome != OutcomeApprove && outcome != OutcomeReject {
		return Post{}, invalid("outcome must be approve or reject")
	}
	if utf8.RuneCountInString(comment) > 1000 {
		return Post{}, invalid("comment must be at most 1000 characters")
	}
	t, err := s.lookupToken(ctx, token)
	if err != nil {
		return Post{}, err
	}
	p, err := s.store.GetPost(ctx, t.PostID)
	if err != nil {
		return Post{}, fmt.Errorf("decide %s: %w", t.PostID, err)
	}
	switch s.linkState(t, p) {
	case LinkUsed:
		return Post{}, ErrTokenUsed
	case LinkClosed:
		return Post{}, ErrClosed
	case LinkCancelled:
		return Post{}, ErrPostCancelled
	case LinkReplaced:
		return Post{}, ErrLinkReplaced
	case LinkExpired:
		return Post{}, ErrTokenExpired
	}
	a, err := s.linkApprover(ctx, t)
	if err != nil {
		return Post{}, err
	}
	if outcome == OutcomeApprove {
		if editedText, err = s.checkEdit(p, editedText); err != nil {
			return Post{}, err
		}
	} else {
		editedText = "" // nothing is published: an edit with a rejection means nothing
	}
	pol, err := s.policyFor(ctx, p.DepartmentID)
	if err != nil {
		return Post{}, fmt.Errorf("decide %s: %w", p.ID, err)
	}
	// Separation of duties: whoever asked for the post may not approve it, unless the policy allows it.
	// Rejecting their own request stays possible (it only withdraws it).
	if outcome == OutcomeApprove && !pol.AllowSelfApproval && strings.EqualFold(strings.TrimSpace(p.RequestedBy), a.Email) {
		return Post{}, ErrSelfApproval
	}
	asked := p.Required
	if p.Mode == ModeQuorum {
		// Who could still make up the quorum: the approvers the policy asks now.
		as, err := s.approversFor(ctx, pol)
		if err != nil {
			return Post{}, fmt.Errorf("decide %s: %w", p.ID, err)
		}
		asked = max(len(as), p.Required)
	}
	now := s.now()
	status := StatusRejected
	if outcome == OutcomeApprove {
		status = StatusApproved
	}
	params := DecideParams{
		TokenHash: t.Hash, PostID: p.ID, Status: status, Outcome: outcome, Approver: a.Email, ApproverID: a.ID,
		Comment: comment, At: now, EditedText: editedText,
		Announcement: OutboxItem{Kind: AnnouncementOf(status), PostID: p.ID, CreatedAt: now, NextAttemptAt: now},
		Audit:        AuditEntry{PostID: p.ID, At: now, Actor: a.Email, Origin: origin, Action: string(outcome), FromStatus: StatusPending, Comment: comment},
	}
	if editedText != "" {
		params.Audit.Action = "approve_with_edits"
	}
	params.Extra = s.teamsItems(pol, OutboxTeamsOutcome, p.ID, now)
	if outcome == OutcomeReject {
		// Written only if the post settles; the fan-out does nothing if it settled otherwise.
		params.Extra = append(params.Extra, s.webhookItems(StatusRejected, p.ID, now)...)
	}
	if p.Mode != ModeFirst && p.Mode != "" {
		mode, req := p.Mode, p.Required
		params.Resolve = func(ds []Decision) Resolution { return resolve(mode, req, asked, ds) }
	}
	if err := s.store.Decide(ctx, params); err != nil {
		return Post{}, fmt.Errorf("decide %s: %w", p.ID, err)
	}
	s.log.InfoContext(ctx, "decision recorded", "post_id", p.ID, "outcome", outcome, "approver_id", a.ID, "edited", editedText != "")
	s.Wake()
	return s.GetPost(ctx, p.ID, "")
}

// checkEdit validates an approver's edited text and returns it, or "" when it is the requested text
// unchanged. It is held to the rules the gateway holds requests to.
func (s *Service) checkEdit(p Post, edited string) (string, error) {
	edited = strings.ReplaceAll(edited, "\r\n", "\n") // browsers send form text with CRLF line breaks
	if edited == "" || edited == p.Text {
		return "", nil
	}
	if p.Mode != "" && p.Mode != ModeFirst {
		// With several approvers each approves what they saw: an edit by one (the last, say) would be
		// published on the others' approvals of the original text. Edits are for a post one person decides.
		return "", invalid("the text can be edited only when one approver decides (this post needs %s); approve or reject it as it is, or ask the department for new text", p.Mode)
	}
	if strings.TrimSpace(edited) == "" {
		return "", invalid("the edited text is empty")
	}
	if err := humantext.CheckMultiline(edited); err != nil {
		return "", invalid("the edited text %v", err)
	}
	if n := tweetlen.Count(edited); n > tweetlen.MaxLength {
		return "", invalid("the edited text is %d characters as X counts them; at most %d fit", n, tweetlen.MaxLength)
	}
	return edited, nil
}

// RecordPublished records that the publisher published an approved post.
func (s *Service) RecordPublished(ctx context.Context, r PublisherReport) error {
	return s.recordOutcome(ctx, OutcomeParams{
		PostID: r.PostID, Status: StatusPublished, Channel: r.Channel, RemoteID: r.RemoteID,
		RemoteURL: r.RemoteURL, PublishedAt: r.PublishedAt,
	})
}

// RecordFailed records that the channel refused an approved post.
func (s *Service) RecordFailed(ctx context.Context, r PublisherReport) error {
	return s.recordOutcome(ctx, OutcomeParams{PostID: r.PostID, Status: StatusFailed, Channel: r.Channel, FailureReason: r.Reason})
}

// RecordUnknown records that the publisher cannot tell whether an approved post went out.
func (s *Service) RecordUnknown(ctx context.Context, r PublisherReport) error {
	return s.recordOutcome(ctx, OutcomeParams{PostID: r.PostID, Status: StatusUnknown, Channel: r.Channel, FailureReason: r.Reason})
}

func (s *Service) recordOutcome(ctx context.Context, p OutcomeParams) error {
	if p.PostID == "" {
		return invalid("publisher report without a post id")
	}
	now := s.now()
	p.At = now
	if !p.PublishedAt.IsZero() {
		p.PublishedAt = p.PublishedAt.UTC().Truncate(time.Microsecond)
	}
	p.Audit = AuditEntry{PostID: p.PostID, At: now, Actor: "publisher", Origin: "channel:" + p.Channel, Action: string(p.Status), ToStatus: p.Status, Comment: p.FailureReason}
	p.Extra = s.webhookItems(p.Status, p.PostID, now)
	changed, err := s.store.RecordOutcome(ctx, p)
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", p.Status, p.PostID, err)
	}
	if changed {
		s.log.InfoContext(ctx, "post outcome recorded", "post_id", p.PostID, "status", p.Status, "remote_id", p.RemoteID)
		if len(p.Extra) > 0 {
			s.Wake()
		}
	}
	return nil
}

// createdAt is when the post was asked for: when the gateway accepted it, or now for a request that does not
// say (events from before requested_at existed).
func (r Request) createdAt(now time.Time) time.Time {
	if r.RequestedAt.IsZero() {
		return now
	}
	return r.RequestedAt.UTC().Truncate(time.Microsecond)
}

// checkMedia holds a request's pictures to what the gateway lets through: at most MaxMedia, each named
// for this post (so that the retention sweep knows whose it is, and a request cannot claim another post's
// pictures), with a type X takes and a size.
func checkMedia(postID string, media []Media) error {
	if len(media) > MaxMedia {
		return invalid("post %s has %d pictures; at most %d", postID, len(media), MaxMedia)
	}
	for i, m := range media {
		if m.Name != postID+"/"+strconv.Itoa(i) {
			return invalid("post %s: picture %d is named %q, not after the post", postID, i, m.Name)
		}
		switch m.ContentType {
		case "image/jpeg", "image/png", "image/gif", "image/webp":
		default:
			return invalid("post %s: picture %d has type %q", postID, i, m.ContentType)
		}
		if m.Size <= 0 || m.SHA256 == [32]byte{} {
			return invalid("post %s: picture %d has no size or hash", postID, i)
		}
	}
	return nil
}
