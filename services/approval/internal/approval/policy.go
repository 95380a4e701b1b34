package approval

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Mode says how many approvers' answers settle a post.
type Mode string

// The modes of a policy.
const (
	// ModeFirst: the first answer decides.
	ModeFirst Mode = "first"
	// ModeAll: every approver asked must approve; any rejection rejects.
	ModeAll Mode = "all"
	// ModeQuorum: Quorum approvals approve; the post is rejected once so many approvers rejected that the
	// quorum can no longer be reached.
	ModeQuorum Mode = "quorum"
)

// Policy is how a department's posts are approved.
type Policy struct {
	DepartmentID string
	// AllApprovers asks every current approver (the communications team): the default. Otherwise
	// ApproverIDs lists who is asked, and approvers removed since drop out.
	AllApprovers bool
	ApproverIDs  []string
	Mode         Mode
	// Quorum is the number of approvals ModeQuorum needs; zero otherwise.
	Quorum int
	// TTL is how long a post waits for a decision; zero means the service's default (HERALD_APPROVAL_TTL).
	TTL time.Duration
	// AllowSelfApproval lets an approver approve a post they requested themselves (requested_by equal to
	// their email address). Off by default: separation of duties.
	AllowSelfApproval bool
	// TeamsWebhookURL is a Teams Workflows incoming webhook that receives an Adaptive Card per request;
	// empty for none.
	TeamsWebhookURL string
	UpdatedAt       time.Time
}

// ModeString is the policy's mode as ops write it: first, all or quorum:N.
func (p Policy) ModeString() string {
	if p.Mode == ModeQuorum {
		return fmt.Sprintf("quorum:%d", p.Quorum)
	}
	return string(p.Mode)
}

// ParseMode reads first, all or quorum:N (N at least 1).
func ParseMode(s string) (Mode, int, error) {
	switch s := strings.TrimSpace(strings.ToLower(s)); {
	case s == "" || s == string(ModeFirst):
		return ModeFirst, 0, nil
	case s == string(ModeAll):
		return ModeAll, 0, nil
	case strings.HasPrefix(s, "quorum:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "quorum:"))
		if err != nil || n < 1 || n > 100 {
			return "", 0, invalid("mode %q: the quorum must be a number from 1 to 100", s)
		}
		return ModeQuorum, n, nil
	}
	return "", 0, invalid("mode %q: want first, all or quorum:N", s)
}

// Decision is one approver's answer to a post.
type Decision struct {
	PostID        string
	ApproverID    string
	ApproverEmail string
	Outcome       Outcome
	Comment       string
	// EditedText is the text the approver approved instead of the requested one; empty if unchanged.
	EditedText string
	DecidedAt  time.Time
}

// Resolution is what a post's decisions so far add up to.
type Resolution struct {
	// Status is StatusPending while more answers are needed, else StatusApproved or StatusRejected.
	Status Status
}

// resolve adds up a post's decisions under its mode: required is the number of approvals needed (ModeAll:
// every approver asked; ModeQuorum: the quorum) and asked how many approvers were asked.
func resolve(mode Mode, required, asked int, ds []Decision) Resolution {
	approvals, rejections := 0, 0
	for _, d := range ds {
		if d.Outcome == OutcomeApprove {
			approvals++
		} else {
			rejections++
		}
	}
	switch mode {
	case ModeAll:
		if rejections > 0 {
			return Resolution{Status: StatusRejected}
		}
		if approvals >= required {
			return Resolution{Status: StatusApproved}
		}
	case ModeQuorum:
		if approvals >= required {
			return Resolution{Status: StatusApproved}
		}
		// Those who have not answered cannot make up the quorum any more.
		if asked-rejections < required {
			return Resolution{Status: StatusRejected}
		}
	default: // ModeFirst
		if len(ds) > 0 {
			return Resolution{Status: map[Outcome]Status{OutcomeApprove: StatusApproved, OutcomeReject: StatusRejected}[ds[len(ds)-1].Outcome]}
		}
	}
	return Resolution{Status: StatusPending}
}

// AnnouncementOf is the outbox item kind that announces a post settled in status.
func AnnouncementOf(status Status) OutboxKind {
	if status == StatusApproved {
		return OutboxPostApproved
	}
	return OutboxPostRejected
}

// PolicyInput is a policy as ops set it.
type PolicyInput struct {
	DepartmentID string
	// ApproverEmails lists who is asked, among the current approvers; empty asks every current approver.
	ApproverEmails []string
	// Mode is first, all or quorum:N; empty means first.
	Mode string
	// TTL is how long a post waits; zero means the service's default.
	TTL               time.Duration
	AllowSelfApproval bool
	TeamsWebhookURL   string
}

// SetPolicy sets a department's approval policy. Posts already put to approvers keep the mode they were
// asked under; posts waiting for an approver are mailed at once if the policy now names one.
func (s *Service) SetPolicy(ctx context.Context, in PolicyInput) (Policy, []Approver, error) {
	if _, err := s.store.GetDepartment(ctx, in.DepartmentID); err != nil {
		return Policy{}, nil, fmt.Errorf("policy of department %q: %w", in.DepartmentID, err)
	}
	mode, quorum, err := ParseMode(in.Mode)
	if err != nil {
		return Policy{}, nil, err
	}
	if in.TTL != 0 && (in.TTL < time.Minute || in.TTL > 90*24*time.Hour) {
		return Policy{}, nil, invalid("expiry %s: want between 1m and 2160h (90 days), or zero for the default", in.TTL)
	}
	if err := checkWebhookURL(in.TeamsWebhookURL); err != nil {
		return Policy{}, nil, err
	}
	p := Policy{
		DepartmentID: in.DepartmentID, AllApprovers: len(in.ApproverEmails) == 0, Mode: mode, Quorum: quorum, TTL: in.TTL,
		AllowSelfApproval: in.AllowSelfApproval, TeamsWebhookURL: in.TeamsWebhookURL, UpdatedAt: s.now(),
	}
	var listed []Approver
	if !p.AllApprovers {
		current, err := s.store.ListApprovers(ctx)
		if err != nil {
			return Policy{}, nil, fmt.Errorf("policy of department %q: %w", in.DepartmentID, err)
		}
		byEmail := map[string]Approver{}
		for _, a := range current {
			byEmail[a.Email] = a
		}
		seen := map[string]bool{}
		for _, e := range in.ApproverEmails {
			e = strings.ToLower(strings.TrimSpace(e))
			a, ok := byEmail[e]
			if !ok {
				return Policy{}, nil, invalid("%q is not an approver: add it with CreateApprover first", e)
			}
			if !seen[a.ID] {
				seen[a.ID] = true
				p.ApproverIDs = append(p.ApproverIDs, a.ID)
				listed = append(listed, a)
			}
		}
		if mode == ModeQuorum && quorum > len(listed) {
			return Policy{}, nil, invalid("quorum %d is more than the %d approvers the policy lists", quorum, len(listed))
		}
	}
	if err := s.store.SetPolicy(ctx, p); err != nil {
		return Policy{}, nil, fmt.Errorf("set policy of department %q: %w", in.DepartmentID, err)
	}
	s.askWaiting(ctx)
	return s.GetPolicy(ctx, in.DepartmentID)
}

// checkWebhookURL accepts an empty URL, or an https URL (http only to this machine, for the local stand-in).
func checkWebhookURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return invalid("teams webhook URL is not a URL")
	}
	local := u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"
	if u.Scheme != "https" && !(u.Scheme == "http" && local) {
		return invalid("teams webhook URL must be https")
	}
	return nil
}

// GetPolicy returns a department's policy (the default if none was set) and the approvers it asks now.
func (s *Service) GetPolicy(ctx context.Context, departmentID string) (Policy, []Approver, error) {
	if _, err := s.store.GetDepartment(ctx, departmentID); err != nil {
		return Policy{}, nil, fmt.Errorf("policy of department %q: %w", departmentID, err)
	}
	p, err := s.policyFor(ctx, departmentID)
	if err != nil {
		return Policy{}, nil, err
	}
	as, err := s.approversFor(ctx, p)
	if err != nil {
		return Policy{}, nil, err
	}
	return p, as, nil
}

// policyFor returns a department's policy, or the default: every approver, first answer decides,
// HERALD_APPROVAL_TTL, no self-approval. A zero TTL becomes the service's default.
func (s *Service) policyFor(ctx context.Context, departmentID string) (Policy, error) {
	p, err := s.store.GetPolicy(ctx, departmentID)
	if errors.Is(err, ErrNotFound) {
		p, err = Policy{DepartmentID: departmentID, AllApprovers: true, Mode: ModeFirst}, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("policy of department %s: %w", departmentID, err)
	}
	if p.TTL <= 0 {
		p.TTL = s.cfg.TokenTTL
	}
	return p, nil
}

// approversFor returns the current approvers a policy asks.
func (s *Service) approversFor(ctx context.Context, p Policy) ([]Approver, error) {
	var as []Approver
	var err error
	if p.AllApprovers {
		as, err = s.store.ListApprovers(ctx)
	} else {
		as, err = s.store.ListPolicyApprovers(ctx, p.DepartmentID)
	}
	if err != nil {
		return nil, fmt.Errorf("approvers of department %s: %w", p.DepartmentID, err)
	}
	return as, nil
}

// required is how many approvals settle a post under p when asked approvers were asked.
func required(p Policy, asked int) int {
	switch p.Mode {
	case ModeAll:
		return asked
	case ModeQuorum:
		return p.Quorum
	}
	return 1
}

// askOutbox is the outbox for putting p to approvers: an email now and the reminders, each.
func (s *Service) askOutbox(p Post, approvers []Approver, now time.Time) []OutboxItem {
	outbox := make([]OutboxItem, 0, 3*len(approvers))
	for _, a := range approvers {
		outbox = append(outbox, OutboxItem{Kind: OutboxApprovalEmail, PostID: p.ID, ApproverID: a.ID, CreatedAt: now, NextAttemptAt: now})
		outbox = append(outbox, s.reminders(p, a.ID, now)...)
	}
	return outbox
}

// askWaiting mails the posts that were waiting for an approver, now that their policy has one. It runs
// after an approver is added or a policy set, and on every outbox tick (the approver may have been added
// through another replica). Each post is asked in a compare-and-set, so replicas ask it once.
func (s *Service) askWaiting(ctx context.Context) {
	posts, err := s.store.WaitingPosts(ctx, 100)
	if err != nil {
		s.log.ErrorContext(ctx, "posts waiting for an approver", "err", err)
		return
	}
	asked := 0
	for _, p := range posts {
		pol, err := s.policyFor(ctx, p.DepartmentID)
		if err != nil {
			s.log.ErrorContext(ctx, "ask approvers", "post_id", p.ID, "err", err)
			continue
		}
		as, err := s.approversFor(ctx, pol)
		if err != nil {
			s.log.ErrorContext(ctx, "ask approvers", "post_id", p.ID, "err", err)
			continue
		}
		if len(as) == 0 {
			continue
		}
		now := s.now()
		audit := AuditEntry{PostID: p.ID, At: now, Actor: "herald", Origin: "policy", Action: "asked", FromStatus: StatusPending, ToStatus: StatusPending,
			Comment: fmt.Sprintf("%d approvers asked", len(as))}
		outbox := append(s.askOutbox(p, as, now), s.teamsItems(pol, OutboxTeamsRequest, p.ID, now)...)
		err = s.store.AskApprovers(ctx, p.ID, pol.Mode, required(pol, len(as)), now, audit, outbox)
		if errors.Is(err, ErrClosed) {
			continue
		}
		if err != nil {
			s.log.ErrorContext(ctx, "ask approvers", "post_id", p.ID, "err", err)
			continue
		}
		asked++
		s.log.InfoContext(ctx, "post that waited for an approver is now mailed", "post_id", p.ID, "approvers", len(as))
	}
	if asked > 0 {
		s.Wake()
	}
}

// CountWaiting counts the pending posts that wait for an approver to be added (a metric for ops).
func (s *Service) CountWaiting(ctx context.Context) (int, error) {
	return s.store.CountWaiting(ctx)
}
