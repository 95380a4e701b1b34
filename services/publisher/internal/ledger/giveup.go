package ledger

import (
	"context"
	"errors"
	"fmt"
)

// GaveUpReason is what a department reads when the publisher stopped trying a post it never sent.
const GaveUpReason = "not published: the publisher gave up after repeated failures; ops can retry it (PublisherService.RetryPublication)"

// gaveUpOpen is what a department reads when the publisher stopped while an attempt's outcome was open.
const gaveUpOpen = "the publisher gave up while a post's outcome was still open; ops must check the account, then retry or resolve it"

// GiveUp settles an approval that will not be delivered again although handling it never succeeded (the
// channel or the ledger kept failing), so that no post is left approved forever with nobody working on it.
// Never tried: failed, with GaveUpReason; an attempt open: unknown, never posted blind; already settled:
// announced again. cause is logged, not shown: it may hold internals.
func (s *Service) GiveUp(ctx context.Context, a Approval, cause error) error {
	if a.PostID == "" || a.Text == "" {
		return fmt.Errorf("%w: approval without post id or text: %q", ErrInvalid, a.PostID)
	}
	log := s.log.With("post_id", a.PostID, "cause", cause)
	now := s.timestamp()
	e, created, err := s.store.Begin(ctx, Publication{PostID: a.PostID, Channel: s.channel.Name(), State: StateFailed, Text: a.Text, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return fmt.Errorf("give up %s: %w", a.PostID, err)
	}
	var to Publication
	switch {
	case created:
		to = e
		to.Error = GaveUpReason
		log.ErrorContext(ctx, "gave up an approval that was never sent; it is failed until ops retry it")
	case e.State == StateAttempting:
		to = e
		to.State, to.Error, to.UpdatedAt = StateUnknown, gaveUpOpen, now
		log.ErrorContext(ctx, "gave up an approval whose attempt is open; it is unknown until ops resolve it", "attempts", e.Attempts)
	default:
		return s.announce(ctx, e)
	}
	if err := s.store.Update(ctx, e, to, nil); err != nil {
		if errors.Is(err, ErrConflict) {
			return s.conflict(ctx, a.PostID, err)
		}
		return fmt.Errorf("give up %s: %w", a.PostID, err)
	}
	return s.announce(ctx, to)
}
