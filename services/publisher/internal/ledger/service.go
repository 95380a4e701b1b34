package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Approval is an approved post handed to the publisher. Who approved it and when go into the log lines
// about the post, so that the publisher's log alone says on whose word each post went out.
type Approval struct {
	PostID       string
	DepartmentID string
	Text         string
	ApprovedBy   string
	ApprovedAt   time.Time
	// Media are the approved pictures (their hashes were sealed with the text).
	Media []Media
}

// Announcer tells the rest of Herald what became of an approved post. It returns once the announcement is
// stored for delivery; announcing the same outcome again must be harmless, since a redelivered approval
// announces again.
type Announcer interface {
	// Announce announces p's outcome: p is published, failed or unknown.
	Announce(ctx context.Context, p Publication) error
}

// ErrInvalid means an approval (or an ops request) can never be carried out as it stands (no post id, no
// text, no remote id): asking again cannot help.
var ErrInvalid = errors.New("invalid request")

// ErrWrongState means an ops action does not apply to the publication's state (retrying a published post,
// resolving one that is not unknown).
var ErrWrongState = errors.New("publication is not in a state this action applies to")

// RetryLaterError asks for the approval to be handled again, no sooner than After (zero when nobody said):
// either the post certainly did not go out and may go out later, or the ledger is still settling an
// ambiguous attempt and needs more time than this delivery had. The ledger entry says which; handling
// the approval again never posts blind.
type RetryLaterError struct {
	After time.Duration
	Err   error
}

// Error implements error.
func (e *RetryLaterError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RetryLaterError) Unwrap() error { return e.Err }

// Policy bounds how the ledger settles an attempt whose outcome it does not know.
type Policy struct {
	// VisibilityDelay is how long after an attempt its post can be expected on the account's timeline.
	// X shows a new post within seconds; looking earlier would take a post that went out for one that
	// did not.
	VisibilityDelay time.Duration
	// MaxAttempts is how many times one post is sent at most, the first included.
	MaxAttempts int
	// MaxChecks is how many timeline reads one settling makes before the post is marked unknown.
	MaxChecks int
	// MaxInterval caps the backoff between timeline reads.
	MaxInterval time.Duration
	// Skew widens the timeline window for clocks that disagree (the publisher's and the channel's).
	Skew time.Duration
	// OpsTimeout bounds the work behind an ops retry, which goes on when the caller hangs up: no
	// redelivery would finish it.
	OpsTimeout time.Duration
}

// DefaultPolicy is the policy NewService uses unless told otherwise.
var DefaultPolicy = Policy{VisibilityDelay: 5 * time.Second, MaxAttempts: 3, MaxChecks: 5, MaxInterval: time.Minute, Skew: 2 * time.Minute, OpsTimeout: 2 * time.Minute}

// Option configures a Service.
type Option func(*Service)

// WithPolicy replaces DefaultPolicy; zero fields keep their default.
func WithPolicy(p Policy) Option {
	return func(s *Service) {
		d := DefaultPolicy
		if p.VisibilityDelay > 0 {
			d.VisibilityDelay = p.VisibilityDelay
		}
		if p.MaxAttempts > 0 {
			d.MaxAttempts = p.MaxAttempts
		}
		if p.MaxChecks > 0 {
			d.MaxChecks = p.MaxChecks
		}
		if p.MaxInterval > 0 {
			d.MaxInterval = p.MaxInterval
		}
		if p.Skew > 0 {
			d.Skew = p.Skew
		}
		if p.OpsTimeout > 0 {
			d.OpsTimeout = p.OpsTimeout
		}
		s.policy = d
	}
}

// The points where a crash leaves the ledger and the channel disagreeing, named for WithHook.
const (
	// PointAfterBegin: "attempting" is written, the channel not called yet.
	PointAfterBegin = "after_begin"
	// PointAfterCall: the channel answered, the outcome is not written yet.
	PointAfterCall = "after_call"
	// PointAfterFinish: the outcome is written and announced, the approval not acknowledged yet.
	PointAfterFinish = "after_finish"
)

// WithHook calls hook at each crash point of a first delivery. Only the crash tests set it (they kill the
// process there); it must return quickly.
func WithHook(hook func(point string)) Option {
	return func(s *Service) { s.hook = hook }
}

// WithMedia reads the pictures of approved posts from src. Without it, a post with pictures fails.
func WithMedia(src MediaSource) Option {
	return func(s *Service) { s.media = src }
}

// WithClock replaces the clock and the wait between timeline reads, for tests.
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(s *Service) { s.now, s.sleep = now, sleep }
}

// Service posts approved posts to a channel through the ledger. It is named like approval.Service, the other
// domain's entry point, rather than Publisher, which eventbus.Publisher already means (and which describes
// the adapter's job, not this one's) or Poster, which could as well be the Channel.
type Service struct {
	store     Store
	channel   Channel
	announcer Announcer
	log       *slog.Logger
	policy    Policy
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	hook      func(point string)
	media     MediaSource
}

// NewService returns a Service. Every dependency is required.
func NewService(store Store, channel Channel, announcer Announcer, log *slog.Logger, opts ...Option) (*Service, error) {
	if store == nil || channel == nil || announcer == nil || log == nil {
		return nil, errors.New("ledger: nil dependency")
	}
	s := &Service{store: store, channel: channel, announcer: announcer, log: log, policy: DefaultPolicy, now: time.Now, sleep: sleep, hook: func(string) {}}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// HandleApproved publishes an approved post at most once and announces the outcome. It is safe to call again
// with the same approval: by then the ledger says what to do. Errors: ErrInvalid for an approval that can
// never be published, *RetryLaterError when the channel was unavailable or the outcome is still being
// settled, anything else when the ledger or the announcement failed (handling the approval again later is
// the cure for all but ErrInvalid).
func (s *Service) HandleApproved(ctx context.Context, a Approval) error {
	if a.PostID == "" || a.Text == "" {
		return fmt.Errorf("%w: approval without post id or text: %q", ErrInvalid, a.PostID)
	}
	since, err := s.store.LatestRemoteID(ctx)
	if err != nil {
		return fmt.Errorf("latest remote id: %w", err)
	}
	now := s.timestamp()
	entry := Publication{PostID: a.PostID, Channel: s.channel.Name(), State: StateAttempting, Text: a.Text, Attempts: 1, SinceID: since, CreatedAt: now, UpdatedAt: now, Media: a.Media}
	existing, created, err := s.store.Begin(ctx, entry)
	if err != nil {
		return fmt.Errorf("begin %s: %w", entry.PostID, err)
	}
	log := s.log.With("post_id", entry.PostID, "channel", entry.Channel, "department_id", a.DepartmentID, "approved_by", a.ApprovedBy, "approved_at", a.ApprovedAt)
	if !created {
		return s.resume(ctx, existing, log)
	}
	s.hook(PointAfterBegin)
	if err := s.drive(ctx, entry, drive{post: true, first: true, limit: s.policy.MaxAttempts}, log); err != nil {
		return err
	}
	s.hook(PointAfterFinish)
	return nil
}

// resume handles a redelivered approval: the ledger already has the post.
func (s *Service) resume(ctx context.Context, e Publication, log *slog.Logger) error {
	if e.State == StateAttempting {
		// A previous delivery sent the post, or was about to, and did not record the outcome (a crash, a
		// deadline). Posting again could publish twice: look for it first.
		log.WarnContext(ctx, "redelivered while attempting; reconciling before anything else", "attempts", e.Attempts)
		return s.drive(ctx, e, drive{limit: s.policy.MaxAttempts}, log)
	}
	// Announce again: the announcement may not have been stored the first time; announcing twice is
	// harmless.
	return s.announce(ctx, e)
}

// drive says where drive starts.
type drive struct {
	// post: send the post first (its attempt is recorded); otherwise look for it first.
	post bool
	// first: no earlier attempt of this post exists, so a "not sent" answer releases the entry and a
	// duplicate answer is a rejection.
	first bool
	// limit is the highest attempt number that may be sent.
	limit int
}

// drive moves an attempting entry to an outcome: it posts, and whenever the answer leaves the outcome open
// it reads the account's timeline for the post. Found, the post is published with the id the channel
// gave it. Not found once the post should be visible, it is sent again (each attempt recorded before the
// call), up to the limit; what is still undecidable then becomes unknown. When the delivery runs out of
// time the entry stays attempting and the redelivery picks up here.
func (s *Service) drive(ctx context.Context, e Publication, d drive, log *slog.Logger) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.RandomizationFactor, bo.Multiplier = s.policy.VisibilityDelay, s.policy.MaxInterval, 0.5, 2
	checks, duplicate, lastErr := 0, false, ""
	// Before the first look, wait until the latest attempt would be visible.
	wait := e.UpdatedAt.Add(s.policy.VisibilityDelay).Sub(s.now())
	for {
		if d.post {
			pics, err := s.pictures(ctx, e)
			if err != nil {
				if !errors.Is(err, ErrMediaUnusable) {
					if d.first {
						if rerr := s.store.Release(ctx, e.PostID); rerr != nil {
							return fmt.Errorf("release %s: %w", e.PostID, rerr)
						}
					}
					// Later attempts stay attempting: the redelivery looks for the earlier ones first.
					return &RetryLaterError{After: s.policy.VisibilityDelay, Err: fmt.Errorf("post %s: %w", e.PostID, err)}
				}
				if d.first {
					log.ErrorContext(ctx, "an approved picture is unusable; nothing posted", "err", err)
					return s.finish(ctx, e, StateFailed, "", "", err.Error(), log)
				}
				// An earlier attempt may have gone out with the pictures: say so rather than fail it.
				log.ErrorContext(ctx, "an approved picture is unusable on a later attempt; ops must resolve the post", "err", err)
				return s.finish(ctx, e, StateUnknown, "", "", err.Error()+"; an earlier attempt may have gone out, check the account", log)
			}
			res, err := s.channel.Post(ctx, e.Text, pics)
			if d.first {
				s.hook(PointAfterCall)
			}
			if err == nil {
				log.InfoContext(ctx, "post published", "remote_id", res.RemoteID, "attempt", e.Attempts)
				return s.finish(ctx, e, StatePublished, res.RemoteID, res.URL, "", log)
			}
			ce, kind := kindOf(err)
			lastErr = ce.Message
			switch {
			case kind == Rejected || kind == Duplicate && d.first:
				log.WarnContext(ctx, "channel rejected the post", "err", ce.Message)
				return s.finish(ctx, e, StateFailed, "", "", ce.Message, log)
			case kind == Retryable && d.first:
				if err := s.store.Release(ctx, e.PostID); err != nil {
					return fmt.Errorf("release %s: %w", e.PostID, err)
				}
				log.WarnContext(ctx, "channel unavailable; will retry", "err", ce.Message, "retry_after", ce.RetryAfter)
				return &RetryLaterError{After: ce.RetryAfter, Err: fmt.Errorf("post %s: %w", e.PostID, err)}
			case kind == Duplicate:
				// X refuses the text because the account has it: an earlier attempt went out. Never post it
				// again; find it.
				duplicate = true
				log.WarnContext(ctx, "channel says an earlier attempt went out; looking for it", "attempt", e.Attempts)
				wait = s.policy.VisibilityDelay
			case kind == Retryable:
				// This attempt did not go out; an earlier one may have. Look before sending again.
				log.WarnContext(ctx, "channel unavailable on a later attempt; reconciling", "err", ce.Message, "attempt", e.Attempts)
				wait = max(ce.RetryAfter, s.policy.VisibilityDelay)
			default:
				log.WarnContext(ctx, "outcome of the attempt unknown; reconciling", "err", ce.Message, "attempt", e.Attempts)
				wait = s.policy.VisibilityDelay
			}
			d.first = false
		}
		for {
			if err := s.pause(ctx, wait); err != nil {
				return &RetryLaterError{After: wait, Err: fmt.Errorf("post %s: still reconciling attempt %d: %w", e.PostID, e.Attempts, err)}
			}
			found, n, err := s.find(ctx, e)
			checks++
			switch {
			case found != nil:
				if n > 1 {
					log.ErrorContext(ctx, "the channel shows the post more than once; keeping the oldest", "copies", n)
				}
				log.InfoContext(ctx, "post found on the timeline", "remote_id", found.ID, "attempt", e.Attempts, "checks", checks)
				return s.finish(ctx, e, StatePublished, found.ID, found.URL, "", log)
			case err != nil:
				log.WarnContext(ctx, "cannot read the timeline", "err", err, "checks", checks)
				lastErr = err.Error()
			}
			if err == nil && !duplicate {
				break
			}
			if checks >= s.policy.MaxChecks {
				msg := fmt.Sprintf("after %d attempts and %d timeline reads the outcome is unknown (last: %s); check the account before retrying", e.Attempts, checks, lastErr)
				if duplicate {
					msg = fmt.Sprintf("X says the text is already posted but the post is not on the timeline after %d reads; check the account", checks)
				}
				log.ErrorContext(ctx, "post outcome unknown; ops must resolve it", "err", msg)
				return s.finish(ctx, e, StateUnknown, "", "", msg, log)
			}
			wait = bo.NextBackOff()
		}
		// Not on the timeline once it would be visible: the attempt did not go out.
		if e.Attempts >= d.limit {
			msg := fmt.Sprintf("not on the timeline after %d attempts (last answer: %s); check the account before retrying", e.Attempts, lastErr)
			log.ErrorContext(ctx, "post outcome unknown; ops must resolve it", "err", msg)
			return s.finish(ctx, e, StateUnknown, "", "", msg, log)
		}
		next := e
		next.Attempts, next.UpdatedAt = e.Attempts+1, s.timestamp()
		if err := s.store.Update(ctx, e, next, nil); err != nil {
			return s.conflict(ctx, e.PostID, err)
		}
		e = next
		log.InfoContext(ctx, "post not on the timeline; sending it again", "attempt", e.Attempts)
		d.post = true
	}
}

// pictures reads e's approved pictures, checked against their hashes.
func (s *Service) pictures(ctx context.Context, e Publication) ([]Attachment, error) {
	if len(e.Media) == 0 {
		return nil, nil
	}
	if s.media == nil {
		return nil, fmt.Errorf("%w: the publisher cannot read the media bucket", ErrMediaUnusable)
	}
	out := make([]Attachment, len(e.Media))
	for i, m := range e.Media {
		data, err := s.media.Get(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("picture %d: %w", i+1, err)
		}
		out[i] = Attachment{ContentType: m.ContentType, Data: data}
	}
	return out, nil
}

// pause waits d unless the delivery's deadline comes first: then the caller leaves the entry attempting.
func (s *Service) pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	// Leave time after the wait for a timeline read.
	const margin = 5 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d+margin {
		return errors.New("not enough time left in this delivery")
	}
	return s.sleep(ctx, d)
}

// find looks for e's post among the account's posts since its first attempt: the oldest match and how
// many there are.
func (s *Service) find(ctx context.Context, e Publication) (*RemotePost, int, error) {
	posts, err := s.channel.Recent(ctx, TimelineQuery{SinceID: e.SinceID, After: e.CreatedAt.Add(-s.policy.Skew)})
	if err != nil {
		return nil, 0, fmt.Errorf("read timeline: %w", err)
	}
	var found *RemotePost
	n := 0
	for i := range posts {
		// With pictures X adds a link to them at the end of the text it shows.
		if SameText(posts[i].Text, e.Text) || len(e.Media) > 0 && SameText(trimMediaLink(posts[i].Text), e.Text) {
			found, n = &posts[i], n+1
		}
	}
	return found, n, nil
}

// finish records e's outcome and announces it.
func (s *Service) finish(ctx context.Context, e Publication, state State, remoteID, url, msg string, log *slog.Logger) error {
	to := e
	to.State, to.RemoteID, to.URL, to.Error, to.UpdatedAt = state, remoteID, url, msg, s.timestamp()
	if err := s.store.Update(ctx, e, to, nil); err != nil {
		// The channel call happened; if this write is lost the redelivery finds "attempting" and
		// reconciles rather than posting blind.
		return s.conflict(ctx, e.PostID, fmt.Errorf("finish %s as %s: %w", e.PostID, state, err))
	}
	return s.announce(ctx, to)
}

// conflict handles a failed update: when someone else moved the entry meanwhile, what they recorded
// stands and is announced again; anything else is returned.
func (s *Service) conflict(ctx context.Context, postID string, err error) error {
	if !errors.Is(err, ErrConflict) {
		return err
	}
	cur, gerr := s.store.Get(ctx, postID)
	if gerr != nil {
		return fmt.Errorf("%w (and reading it again: %w)", err, gerr)
	}
	if cur.State == StateAttempting {
		return &RetryLaterError{After: s.policy.VisibilityDelay, Err: err}
	}
	return s.announce(ctx, cur)
}

func (s *Service) announce(ctx context.Context, e Publication) error {
	if err := s.announcer.Announce(ctx, e); err != nil {
		return fmt.Errorf("announce %s %s: %w", e.State, e.PostID, err)
	}
	return nil
}
