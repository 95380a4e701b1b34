package approval

import (
	"context"
	"fmt"
)

// Limits keep a runaway flow from flooding the approvers: each post request mails every approver, so a
// flow stuck in a loop would otherwise fill their inboxes. The gateway enforces them (answering 429); the
// approval service stores them and counts the undecided posts.
type Limits struct {
	// PostsPerMinute is how many posts one API key may request per minute.
	PostsPerMinute int
	// MaxUndecided is how many of a department's posts may wait for a decision at once.
	MaxUndecided int
}

// The defaults of Config.DefaultLimits: generous for a department's real use (a batch of new joiners'
// welcomes), small enough that a loop costs each approver at most a couple dozen emails.
const (
	DefaultPostsPerMinute = 10
	DefaultMaxUndecided   = 20
)

// maxLimit bounds what can be set, so that a typo cannot switch a limit off in effect.
const maxLimit = 100000

// withDefaults fills the zero fields of l from d.
func (l Limits) withDefaults(d Limits) Limits {
	if l.PostsPerMinute == 0 {
		l.PostsPerMinute = d.PostsPerMinute
	}
	if l.MaxUndecided == 0 {
		l.MaxUndecided = d.MaxUndecided
	}
	return l
}

// SetDepartmentLimits sets a department's limits (zero fields: the default) and returns them as set and
// as they apply.
func (s *Service) SetDepartmentLimits(ctx context.Context, departmentID string, l Limits) (set, effective Limits, err error) {
	if l.PostsPerMinute < 0 || l.MaxUndecided < 0 || l.PostsPerMinute > maxLimit || l.MaxUndecided > maxLimit {
		return Limits{}, Limits{}, invalid("limits must be between 0 (the default) and %d", maxLimit)
	}
	if err := s.store.SetDepartmentLimits(ctx, departmentID, l); err != nil {
		return Limits{}, Limits{}, fmt.Errorf("set limits of department %q: %w", departmentID, err)
	}
	return l, l.withDefaults(s.cfg.DefaultLimits), nil
}

// DepartmentLimits returns a department's limits as set (zero fields: the default) and as they apply.
func (s *Service) DepartmentLimits(ctx context.Context, departmentID string) (set, effective Limits, err error) {
	if _, err := s.store.GetDepartment(ctx, departmentID); err != nil {
		return Limits{}, Limits{}, fmt.Errorf("department %q: %w", departmentID, err)
	}
	set, err = s.store.GetDepartmentLimits(ctx, departmentID)
	if err != nil {
		return Limits{}, Limits{}, fmt.Errorf("limits of department %q: %w", departmentID, err)
	}
	return set, set.withDefaults(s.cfg.DefaultLimits), nil
}

// EffectiveLimits returns the limits that apply to a department, for the gateway; unlike DepartmentLimits
// it does not check that the department exists, since its caller just found it through a key.
func (s *Service) EffectiveLimits(ctx context.Context, departmentID string) (Limits, error) {
	set, err := s.store.GetDepartmentLimits(ctx, departmentID)
	if err != nil {
		return Limits{}, fmt.Errorf("limits of department %q: %w", departmentID, err)
	}
	return set.withDefaults(s.cfg.DefaultLimits), nil
}

// CountUndecided counts a department's posts that wait for a decision.
func (s *Service) CountUndecided(ctx context.Context, departmentID string) (int, error) {
	if departmentID == "" {
		return 0, invalid("department_id is required")
	}
	n, err := s.store.CountUndecided(ctx, departmentID)
	if err != nil {
		return 0, fmt.Errorf("count undecided posts of department %q: %w", departmentID, err)
	}
	return n, nil
}
