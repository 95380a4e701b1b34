package approval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Wake asks the outbox loop to look for work now rather than at its next tick.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunOutbox works through the outbox until ctx ends: it expires overdue posts, announces decisions and
// sends approval emails and reminders written by committed transactions. Failed items are retried with exponential backoff.
func (s *Service) RunOutbox(ctx context.Context, poll time.Duration) error {
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		// Posts waiting for an approver another replica added are asked here.
		s.askWaiting(ctx)
		// The sweep runs first: what it expires is announced by the drain that follows.
		if _, err := s.ExpireOverdue(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "expiry sweep", "err", err)
		}
		if err := s.DrainOutbox(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// DrainOutbox does every item that is due now, once. Items are claimed (leased for cfg.OutboxLease) before
// they are worked on, so replicas draining the same database at the same time share the work instead of
// each doing all of it.
func (s *Service) DrainOutbox(ctx context.Context) error {
	for {
		now := s.now()
		// A small batch: its items are delivered one after another under one lease, and each may take an
		// SMTP or webhook timeout (15 s); ten of them end well inside the 5-minute lease, so no other
		// replica claims an item this one is still sending (fifty could outlast it on a slow relay).
		items, err := s.store.ClaimOutbox(ctx, now, now.Add(s.cfg.OutboxLease), 10)
		if err != nil {
			return fmt.Errorf("claim outbox: %w", err)
		}
		if len(items) == 0 {
			return nil
		}
		for _, it := range items {
			if err := s.deliver(ctx, it); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				next := s.now().Add(retryDelay(it.Attempts + 1))
				s.log.WarnContext(ctx, "outbox item failed; will retry", "outbox_id", it.ID, "kind", it.Kind, "attempts", it.Attempts+1, "next_attempt", next, "err", err)
				if derr := s.store.DeferOutbox(ctx, it.ID, next, err.Error()); derr != nil {
					return fmt.Errorf("defer outbox %d: %w", it.ID, derr)
				}
				continue
			}
			if err := s.store.DeleteOutbox(ctx, it.ID); err != nil {
				return fmt.Errorf("delete outbox %d: %w", it.ID, err)
			}
		}
	}
}

// retryDelay is the wait before the nth retry: exponential from one second, capped at five minutes.
func retryDelay(n int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = 5 * time.Minute
	b.RandomizationFactor = 0.2
	d := b.NextBackOff()
	for i := 1; i < n && i < 20; i++ {
		d = b.NextBackOff()
	}
	return d
}

func (s *Service) deliver(ctx context.Context, it OutboxItem) error {
	switch it.Kind {
	case OutboxPostApproved, OutboxPostRejected:
		return s.announce(ctx, it.Kind, it.PostID)
	case OutboxPostExpired:
		return s.announceClosed(ctx, it.PostID, s.announcer.PostExpired)
	case OutboxPostCancelled:
		return s.announceClosed(ctx, it.PostID, s.announcer.PostCancelled)
	case OutboxTeamsRequest, OutboxTeamsOutcome:
		return s.postTeamsCard(ctx, it.Kind, it.PostID)
	case OutboxApprovalEmail:
		return s.sendApprovalEmail(ctx, it.PostID, it.ApproverID, false)
	case OutboxApprovalReminder:
		return s.sendApprovalEmail(ctx, it.PostID, it.ApproverID, true)
	default:
		return fmt.Errorf("unknown outbox kind %q", it.Kind)
	}
}

// announce tells the Announcer about a decision, built from the post: the decision stored on it (who, when,
// the comment) is exactly what was decided, and never changes afterwards.
func (s *Service) announce(ctx context.Context, kind OutboxKind, postID string) error {
	p, err := s.store.GetPost(ctx, postID)
	if err != nil {
		return fmt.Errorf("announce %s of %s: %w", kind, postID, err)
	}
	if kind == OutboxPostApproved {
		err = s.announcer.PostApproved(ctx, p)
	} else {
		err = s.announcer.PostRejected(ctx, p)
	}
	if err != nil {
		return fmt.Errorf("announce %s of %s: %w", kind, postID, err)
	}
	return nil
}

// announceClosed tells the Announcer that a post ended without a decision (expired, cancelled).
func (s *Service) announceClosed(ctx context.Context, postID string, announce func(context.Context, Post) error) error {
	p, err := s.store.GetPost(ctx, postID)
	if err != nil {
		return fmt.Errorf("announce the end of %s: %w", postID, err)
	}
	if err := announce(ctx, p); err != nil {
		return fmt.Errorf("announce %s of %s: %w", p.Status, postID, err)
	}
	return nil
}

// sendApprovalEmail mints a link for one approver and mails it (as a reminder, or the first time). The
// token is minted here, not when the post was stored, so that no usable secret ever sits in the database:
// a retry mints a fresh one. The link works until the post's deadline.
func (s *Service) sendApprovalEmail(ctx context.Context, postID, approverID string, reminder bool) error {
	p, err := s.store.GetPost(ctx, postID)
	if err != nil {
		return fmt.Errorf("approval email for %s: %w", postID, err)
	}
	if p.Status != StatusPending {
		return nil // decided before the mail went out: nothing to ask
	}
	a, err := s.store.GetApprover(ctx, approverID)
	if errors.Is(err, ErrNotFound) {
		return nil // removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("approval email for %s: %w", postID, err)
	}
	// In modes that wait for several answers the post stays pending after this approver answered: they
	// are not asked (or reminded) again.
	ds, err := s.store.ListDecisions(ctx, postID)
	if err != nil {
		return fmt.Errorf("approval email for %s: %w", postID, err)
	}
	for _, d := range ds {
		if d.ApproverID == approverID {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("approval email for %s: %w", postID, err)
	}
	d, err := s.store.GetDepartment(ctx, p.DepartmentID)
	if err != nil {
		return fmt.Errorf("approval email for %s: %w", postID, err)
	}
	secret := newSecret()
	now := s.now()
	expires := p.ExpiresAt
	if expires.IsZero() {
		expires = now.Add(s.cfg.TokenTTL) // a post stored before posts had deadlines
	}
	if !now.Before(expires) {
		return nil // the sweep expires it: nothing left to ask
	}
	t := Token{Hash: HashSecret(secret), PostID: p.ID, ApproverID: a.ID, CreatedAt: now, ExpiresAt: expires}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return fmt.Errorf("approval email for %s: %w", postID, err)
	}
	err = s.mailer.SendApprovalRequest(ctx, ApprovalEmail{
		To: a.Email, ToName: a.Name, DepartmentName: d.Name, RequestedBy: p.RequestedBy,
		Text: p.Text, Link: s.cfg.PublicURL + "/approvals/" + secret, ExpiresAt: t.ExpiresAt, Reminder: reminder,
		PostID: p.ID, Media: p.Media,
	})
	if err != nil {
		return fmt.Errorf("approval email for %s to approver %s: %w", postID, a.ID, err)
	}
	s.log.InfoContext(ctx, "approval email sent", "post_id", p.ID, "approver_id", a.ID, "reminder", reminder)
	return nil
}
