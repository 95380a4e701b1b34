package approval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
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
// each doing all of it. A claimed batch is worked on cfg.OutboxConcurrency items at a time, with three
// writes for the whole batch: the claim, the approval links its emails carry, and what became of each item.
func (s *Service) DrainOutbox(ctx context.Context) error {
	for {
		now := s.now()
		// A batch of four rounds: each item may take an SMTP or webhook timeout (15 s), so four rounds end
		// well inside the 5-minute lease and no other replica claims an item this one is still sending.
		items, err := s.store.ClaimOutbox(ctx, now, now.Add(s.cfg.OutboxLease), 4*s.cfg.OutboxConcurrency)
		if err != nil {
			return fmt.Errorf("claim outbox: %w", err)
		}
		if len(items) == 0 {
			return nil
		}
		if err := s.work(ctx, items); err != nil {
			return err
		}
	}
}

// work delivers claimed items and records the results. An item left unrecorded (the process died, or the
// results' write failed) is claimed again once its lease ends, as with any delivery interrupted midway.
func (s *Service) work(ctx context.Context, items []OutboxItem) error {
	errs := make([]error, len(items))
	emails := make([]*pendingEmail, len(items))
	// First what each email says, with its link's token; the tokens are stored in one write before any
	// email goes out, so no link is mailed that does not work.
	var tokens []Token
	s.each(len(items), func(i int) {
		it := items[i]
		if it.Kind != OutboxApprovalEmail && it.Kind != OutboxApprovalReminder {
			return
		}
		emails[i], errs[i] = s.approvalEmail(ctx, it.PostID, it.ApproverID, it.Kind == OutboxApprovalReminder)
	})
	for _, e := range emails {
		if e != nil {
			tokens = append(tokens, e.token)
		}
	}
	if len(tokens) > 0 {
		if err := s.store.CreateTokens(ctx, tokens); err != nil {
			for i, e := range emails {
				if e != nil {
					emails[i], errs[i] = nil, fmt.Errorf("approval email for %s: %w", items[i].PostID, err)
				}
			}
		}
	}
	s.each(len(items), func(i int) {
		it := items[i]
		switch {
		case errs[i] != nil:
		case emails[i] != nil:
			errs[i] = s.mail(ctx, it, *emails[i])
		case it.Kind == OutboxApprovalEmail || it.Kind == OutboxApprovalReminder:
			// nothing left to ask
		default:
			errs[i] = s.deliver(ctx, it)
		}
	})
	if ctx.Err() != nil {
		return ctx.Err() // unrecorded: the items are claimed again when their lease ends
	}
	results := make([]OutboxResult, len(items))
	for i, it := range items {
		results[i] = OutboxResult{ID: it.ID}
		if errs[i] == nil {
			continue
		}
		next := s.now().Add(retryDelay(it.Attempts + 1))
		s.log.WarnContext(ctx, "outbox item failed; will retry", "outbox_id", it.ID, "kind", it.Kind, "attempts", it.Attempts+1, "next_attempt", next, "err", errs[i])
		results[i].Err, results[i].Next = errs[i].Error(), next
	}
	if err := s.store.FinishOutbox(ctx, results); err != nil {
		return fmt.Errorf("record %d outbox results: %w", len(results), err)
	}
	return nil
}

// each runs f(0) ... f(n-1), cfg.OutboxConcurrency at a time, and returns when all have.
func (s *Service) each(n int, f func(i int)) {
	var g errgroup.Group
	g.SetLimit(s.cfg.OutboxConcurrency)
	for i := range n {
		g.Go(func() error { f(i); return nil })
	}
	_ = g.Wait()
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

// deliver delivers an item other than an approval email (work sends those, with their links stored first).
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
	default:
		if ev, ok := webhookEventOfKind(it.Kind); ok {
			return s.fanOutWebhook(ctx, it, ev)
		}
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

// pendingEmail is an approval email ready to go, with the token of its link, not yet stored.
type pendingEmail struct {
	ApprovalEmail
	token Token
}

// approvalEmail mints a link for one approver and returns the email that carries it, or nil when there is
// nobody to ask any more (decided, expired, the approver removed or already answered). The token is
// minted when the email goes out, not when the post was stored, so that no usable secret ever sits in the
// database: a retry mints a fresh one. The link works until the post's deadline.
func (s *Service) approvalEmail(ctx context.Context, postID, approverID string, reminder bool) (*pendingEmail, error) {
	p, err := s.store.GetPost(ctx, postID)
	if err != nil {
		return nil, fmt.Errorf("approval email for %s: %w", postID, err)
	}
	if p.Status != StatusPending {
		return nil, nil // decided before the mail went out: nothing to ask
	}
	a, err := s.store.GetApprover(ctx, approverID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // removed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("approval email for %s: %w", postID, err)
	}
	// In modes that wait for several answers the post stays pending after this approver answered: they
	// are not asked (or reminded) again.
	ds, err := s.store.ListDecisions(ctx, postID)
	if err != nil {
		return nil, fmt.Errorf("approval email for %s: %w", postID, err)
	}
	for _, d := range ds {
		if d.ApproverID == approverID {
			return nil, nil
		}
	}
	d, err := s.store.GetDepartment(ctx, p.DepartmentID)
	if err != nil {
		return nil, fmt.Errorf("approval email for %s: %w", postID, err)
	}
	secret := newSecret()
	now := s.now()
	expires := p.ExpiresAt
	if expires.IsZero() {
		expires = now.Add(s.cfg.TokenTTL) // a post stored before posts had deadlines
	}
	if !now.Before(expires) {
		return nil, nil // the sweep expires it: nothing left to ask
	}
	t := Token{Hash: HashSecret(secret), PostID: p.ID, ApproverID: a.ID, CreatedAt: now, ExpiresAt: expires}
	return &pendingEmail{token: t, ApprovalEmail: ApprovalEmail{
		To: a.Email, ToName: a.Name, DepartmentName: d.Name, RequestedBy: p.RequestedBy,
		Text: p.Text, Link: s.cfg.PublicURL + "/approvals/" + secret, ExpiresAt: t.ExpiresAt, Reminder: reminder,
		PostID: p.ID, Media: p.Media,
	}}, nil
}

// mail sends an approval email whose token is stored.
func (s *Service) mail(ctx context.Context, it OutboxItem, e pendingEmail) error {
	if err := s.mailer.SendApprovalRequest(ctx, e.ApprovalEmail); err != nil {
		return fmt.Errorf("approval email for %s to approver %s: %w", it.PostID, it.ApproverID, err)
	}
	s.log.InfoContext(ctx, "approval email sent", "post_id", it.PostID, "approver_id", it.ApproverID, "reminder", e.Reminder)
	return nil
}
