package ledger

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// OpsActor is who the ledger's audit names for actions taken with the admin token.
const OpsActor = "ops"

// Retry sends a failed or unknown post again, on ops' word that it is not on the channel, records the
// action in the audit with note, and announces the outcome. A post left attempting for longer than
// Policy.OpsTimeout (an ops retry cut short: no redelivery comes for it) is reconciled and then sent again
// if it is not on the channel. It returns the entry as it ends. The work
// goes on for up to Policy.OpsTimeout even when ctx ends first: no redelivery would finish it.
func (s *Service) Retry(ctx context.Context, postID, note string) (Publication, error) {
	e, err := s.store.Get(ctx, postID)
	if err != nil {
		return Publication{}, fmt.Errorf("retry %s: %w", postID, err)
	}
	now := s.timestamp()
	next := e
	// An earlier attempt may have gone out even though ops did not see it: a duplicate answer is looked
	// for rather than taken as a rejection, and the post gets a fresh budget of attempts.
	d := drive{post: true}
	switch {
	case e.State == StateFailed || e.State == StateUnknown:
		next.State, next.RemoteID, next.URL, next.Error, next.Attempts, next.UpdatedAt = StateAttempting, "", "", "", e.Attempts+1, now
		d.limit = next.Attempts + s.policy.MaxAttempts - 1
	case e.State == StateAttempting && now.Sub(e.UpdatedAt) > s.policy.OpsTimeout:
		// Stale: an ops retry cut short, whose approval will not be delivered again. Nobody else is
		// attempting it, so it is reconciled first and then sent again if it is not on the channel.
		next.UpdatedAt = now
		d = drive{limit: e.Attempts + s.policy.MaxAttempts}
	case e.State == StateAttempting:
		return Publication{}, fmt.Errorf("retry %s: %w: it is being attempted now (since %s)", postID, ErrWrongState, e.UpdatedAt.Format(time.RFC3339))
	default:
		return Publication{}, fmt.Errorf("retry %s: %w: it is %s (only failed, unknown or stale attempting posts are retried)", postID, ErrWrongState, e.State)
	}
	audit := &AuditEntry{PostID: postID, Actor: OpsActor, Action: "retry", From: e.State, To: StateAttempting, Note: note, At: now}
	if err := s.store.Update(ctx, e, next, audit); err != nil {
		return Publication{}, fmt.Errorf("retry %s: %w", postID, err)
	}
	log := s.log.With("post_id", postID, "channel", e.Channel, "ops_action", "retry")
	log.InfoContext(ctx, "ops retry", "from", e.State, "note", note)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.policy.OpsTimeout)
	defer cancel()
	if !d.post {
		// Look from now on: the last attempt is long visible.
		next.UpdatedAt = next.UpdatedAt.Add(-s.policy.VisibilityDelay)
	}
	err = s.drive(wctx, next, d, log)
	got, gerr := s.store.Get(ctx, postID)
	if gerr != nil {
		return Publication{}, fmt.Errorf("retry %s: %w", postID, gerr)
	}
	if err != nil && got.State != StateAttempting {
		// The outcome is recorded; only its announcement failed, and it is logged for ops.
		log.ErrorContext(ctx, "ops retry: outcome recorded but not announced", "err", err)
		return got, nil
	}
	if err != nil {
		return got, fmt.Errorf("retry %s: %w", postID, err)
	}
	return got, nil
}

// Resolution is ops' verdict on an unknown post.
type Resolution struct {
	// Published says the post is on the channel as RemoteID; otherwise it did not go out.
	Published bool
	RemoteID  string
	Note      string
}

// Resolve records ops' verdict on an unknown post, audits it and announces the outcome: published with
// the remote id ops found, or failed because it was not sent.
func (s *Service) Resolve(ctx context.Context, postID string, r Resolution) (Publication, error) {
	if r.Published {
		if _, err := strconv.ParseUint(r.RemoteID, 10, 64); err != nil {
			return Publication{}, fmt.Errorf("resolve %s: %w: remote id %q is not a post id", postID, ErrInvalid, r.RemoteID)
		}
	} else if r.RemoteID != "" {
		return Publication{}, fmt.Errorf("resolve %s: %w: a post that was not sent has no remote id", postID, ErrInvalid)
	}
	e, err := s.store.Get(ctx, postID)
	if err != nil {
		return Publication{}, fmt.Errorf("resolve %s: %w", postID, err)
	}
	if e.State != StateUnknown {
		return Publication{}, fmt.Errorf("resolve %s: %w: it is %s (only unknown posts are resolved)", postID, ErrWrongState, e.State)
	}
	now := s.timestamp()
	to := e
	to.UpdatedAt = now
	action := "resolve_not_sent"
	if r.Published {
		action = "resolve_published"
		to.State, to.RemoteID, to.URL, to.Error = StatePublished, r.RemoteID, s.channel.URL(r.RemoteID), ""
	} else {
		to.State, to.Error = StateFailed, "not sent (resolved by ops)"
		if r.Note != "" {
			to.Error += ": " + r.Note
		}
	}
	audit := &AuditEntry{PostID: postID, Actor: OpsActor, Action: action, From: e.State, To: to.State, RemoteID: r.RemoteID, Note: r.Note, At: now}
	if err := s.store.Update(ctx, e, to, audit); err != nil {
		return Publication{}, fmt.Errorf("resolve %s: %w", postID, err)
	}
	s.log.InfoContext(ctx, "ops resolved an unknown post", "post_id", postID, "state", to.State, "remote_id", r.RemoteID, "note", r.Note)
	if err := s.announce(ctx, to); err != nil {
		return to, err
	}
	return to, nil
}
