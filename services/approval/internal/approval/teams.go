package approval

import (
	"context"
	"fmt"
	"time"
)

// Teams posts cards to a Microsoft Teams channel through a Workflows incoming webhook (Office 365
// connectors are retired). A department's policy names the webhook; cards only inform: every approver
// still decides through their own emailed link.
type Teams interface {
	PostCard(ctx context.Context, webhookURL string, c TeamsCard) error
}

// TeamsCard is what a card says about a post.
type TeamsCard struct {
	PostID      string
	Department  string
	RequestedBy string
	// Text is the text asked for; FinalText the approver's edit, if any.
	Text      string
	FinalText string
	ExpiresAt time.Time
	// Status is StatusPending for the request card, the outcome otherwise.
	Status    Status
	DecidedBy string
	Comment   string
	// ReviewURL is the gateway's approval page, where approvers are pointed at their own links.
	ReviewURL string
}

// teamsItems returns the Teams outbox item of kind for p if its department's policy names a webhook.
func (s *Service) teamsItems(pol Policy, kind OutboxKind, postID string, now time.Time) []OutboxItem {
	if s.cfg.Teams == nil || pol.TeamsWebhookURL == "" {
		return nil
	}
	return []OutboxItem{{Kind: kind, PostID: postID, CreatedAt: now, NextAttemptAt: now}}
}

// teamsOutcome returns the Teams outcome item for a post that ends without a decision. The webhook is
// looked up when it is delivered (none: it does nothing), which spares the sweep a policy read per post.
func (s *Service) teamsOutcome(postID string, now time.Time) []OutboxItem {
	if s.cfg.Teams == nil {
		return nil
	}
	return []OutboxItem{{Kind: OutboxTeamsOutcome, PostID: postID, CreatedAt: now, NextAttemptAt: now}}
}

// postTeamsCard posts the card of kind for a post to its department's webhook, read now: a policy that
// dropped its webhook meanwhile posts nothing.
func (s *Service) postTeamsCard(ctx context.Context, kind OutboxKind, postID string) error {
	if s.cfg.Teams == nil {
		return nil
	}
	p, err := s.store.GetPost(ctx, postID)
	if err != nil {
		return fmt.Errorf("teams card for %s: %w", postID, err)
	}
	pol, err := s.policyFor(ctx, p.DepartmentID)
	if err != nil || pol.TeamsWebhookURL == "" {
		return err
	}
	d, err := s.store.GetDepartment(ctx, p.DepartmentID)
	if err != nil {
		return fmt.Errorf("teams card for %s: %w", postID, err)
	}
	c := TeamsCard{
		PostID: p.ID, Department: d.Name, RequestedBy: p.RequestedBy, Text: p.Text, FinalText: p.FinalText,
		ExpiresAt: p.ExpiresAt, Status: StatusPending, ReviewURL: s.cfg.PublicURL + "/approvals/",
	}
	if kind == OutboxTeamsOutcome {
		c.Status, c.DecidedBy, c.Comment = p.Status, p.DecidedBy, p.Comment
	}
	if err := s.cfg.Teams.PostCard(ctx, pol.TeamsWebhookURL, c); err != nil {
		return fmt.Errorf("teams card for %s: %w", postID, err)
	}
	return nil
}
