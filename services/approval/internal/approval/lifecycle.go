package approval

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// reminders returns the reminder items for one approver of p: at half and at nine tenths of the time
// between the request and the deadline. Each is an outbox item, claimed like any other, so every reminder
// goes out once however many replicas run; one that falls due after a decision does nothing.
func (s *Service) reminders(p Post, approverID string, now time.Time) []OutboxItem {
	ttl := p.ExpiresAt.Sub(p.CreatedAt)
	var items []OutboxItem
	for _, at := range []time.Time{p.CreatedAt.Add(ttl / 2), p.CreatedAt.Add(ttl * 9 / 10)} {
		if !at.After(now) {
			continue // a request that arrives late skips the reminders already past
		}
		items = append(items, OutboxItem{Kind: OutboxApprovalReminder, PostID: p.ID, ApproverID: approverID, CreatedAt: now, NextAttemptAt: at})
	}
	return items
}

// ExpireOverdue moves every pending post past its deadline to expired, with an audit entry and a
// PostExpired announcement, and returns how many it moved. Replicas may sweep at the same time: each post
// moves in a compare-and-set on its status, so exactly one of them moves it and the others skip it.
func (s *Service) ExpireOverdue(ctx context.Context) (int, error) {
	moved := 0
	for {
		now := s.now()
		ids, err := s.store.OverduePosts(ctx, now, 100)
		if err != nil {
			return moved, fmt.Errorf("overdue posts: %w", err)
		}
		if len(ids) == 0 {
			return moved, nil
		}
		progress := false
		for _, id := range ids {
			err := s.store.ClosePost(ctx, CloseParams{
				PostID: id, Status: StatusExpired, At: now,
				Audit:        AuditEntry{PostID: id, At: now, Actor: "herald", Origin: "deadline", Action: "expired", FromStatus: StatusPending, ToStatus: StatusExpired},
				Announcement: OutboxItem{Kind: OutboxPostExpired, PostID: id, CreatedAt: now, NextAttemptAt: now},
				Extra:        append(s.teamsOutcome(id, now), s.webhookItems(StatusExpired, id, now)...),
			})
			if errors.Is(err, ErrClosed) {
				continue // another replica, or a last-minute decision, came first
			}
			if err != nil {
				return moved, fmt.Errorf("expire %s: %w", id, err)
			}
			moved++
			progress = true
			s.log.InfoContext(ctx, "post expired undecided", "post_id", id)
		}
		if !progress {
			return moved, nil
		}
	}
}

// CancelPost cancels a pending post: its links then say so, and nothing is published. With departmentID
// set (the department cancelling through the gateway) another department's post is ErrOtherDepartment;
// ops leave it empty. A post no longer pending is ErrClosed.
func (s *Service) CancelPost(ctx context.Context, postID, departmentID, actor, origin string) (Post, error) {
	p, err := s.GetPost(ctx, postID, departmentID)
	if err != nil {
		return Post{}, fmt.Errorf("cancel: %w", err)
	}
	if p.Status != StatusPending {
		return Post{}, fmt.Errorf("cancel %s (%s): %w", postID, p.Status, ErrClosed)
	}
	now := s.now()
	err = s.store.ClosePost(ctx, CloseParams{
		PostID: p.ID, Status: StatusCancelled, At: now,
		Audit:        AuditEntry{PostID: p.ID, At: now, Actor: actor, Origin: origin, Action: "cancelled", FromStatus: StatusPending, ToStatus: StatusCancelled},
		Announcement: OutboxItem{Kind: OutboxPostCancelled, PostID: p.ID, CreatedAt: now, NextAttemptAt: now},
		Extra:        s.teamsOutcome(p.ID, now),
	})
	if err != nil {
		return Post{}, fmt.Errorf("cancel %s: %w", postID, err)
	}
	s.log.InfoContext(ctx, "post cancelled", "post_id", p.ID, "origin", origin)
	s.Wake()
	return s.store.GetPost(ctx, p.ID)
}

// ResendApprovals mails every approver of a pending post a fresh link; the links sent before stop working
// (one forwarded by mistake, say). It returns how many approvers are mailed.
func (s *Service) ResendApprovals(ctx context.Context, postID, actor string) (int, error) {
	p, err := s.store.GetPost(ctx, postID)
	if err != nil {
		return 0, fmt.Errorf("resend %s: %w", postID, err)
	}
	if p.Status != StatusPending {
		return 0, fmt.Errorf("resend %s (%s): %w", postID, p.Status, ErrClosed)
	}
	pol, err := s.policyFor(ctx, p.DepartmentID)
	if err != nil {
		return 0, fmt.Errorf("resend %s: %w", postID, err)
	}
	approvers, err := s.approversFor(ctx, pol)
	if err != nil {
		return 0, fmt.Errorf("resend %s: %w", postID, err)
	}
	now := s.now()
	outbox := make([]OutboxItem, 0, len(approvers))
	for _, a := range approvers {
		outbox = append(outbox, OutboxItem{Kind: OutboxApprovalEmail, PostID: p.ID, ApproverID: a.ID, CreatedAt: now, NextAttemptAt: now})
	}
	audit := AuditEntry{PostID: p.ID, At: now, Actor: actor, Origin: "ops", Action: "resent", FromStatus: StatusPending, ToStatus: StatusPending}
	if err := s.store.ResendApprovals(ctx, p.ID, now, audit, outbox); err != nil {
		return 0, fmt.Errorf("resend %s: %w", postID, err)
	}
	s.Wake()
	return len(approvers), nil
}
