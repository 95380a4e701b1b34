package approval

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/heraldshared/humantext"
)

// ReasonNotProcessed is the failure reason of a request that kept failing until Herald gave up on it. It
// says nothing of the cause, which may be internal; the log has it.
const ReasonNotProcessed = "Herald could not process this request and gave up after repeated attempts; nothing was posted and no approver was asked. Send it again, or ask the Herald operators if it keeps failing."

// FailRequest records a post request that will never be processed (cause says why: an ErrInvalid from
// Submit, or whatever failed on the last attempt Herald allows) as a failed post, so that the department
// sees it failed and why instead of a post that never appears. It writes as little as possible, so that it
// cannot meet the failure that sank the request: the post row with no text (the text may be what was
// refused, and an approver never saw it), the reason, one audit entry, and no outbox item.
//
// It refuses (ErrInvalid) a request that cannot be recorded at all: a post id that is not a UUID or an
// unknown department. A post already stored is left as it is.
func (s *Service) FailRequest(ctx context.Context, r Request, cause error) error {
	if _, err := uuid.Parse(r.PostID); err != nil {
		return invalid("post id %q is not a UUID", r.PostID)
	}
	if _, err := s.store.GetDepartment(ctx, r.DepartmentID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return invalid("post %s names unknown department %q", r.PostID, r.DepartmentID)
		}
		return fmt.Errorf("fail request %s: %w", r.PostID, err)
	}
	reason := ReasonNotProcessed
	if errors.Is(cause, ErrInvalid) {
		// The domain's own words about the request, which tell the department what to fix. They quote
		// nothing of the text itself (humantext names the character by its code point), so they can be
		// stored where the text could not.
		reason = "Herald refused this request: " + strings.TrimPrefix(cause.Error(), ErrInvalid.Error()+": ")
	}
	now := s.now()
	created := r.createdAt(now)
	p := Post{
		ID:             r.PostID,
		DepartmentID:   r.DepartmentID,
		RequestedBy:    keepLine(r.RequestedBy),
		IdempotencyKey: keepLine(r.IdempotencyKey),
		Status:         StatusFailed,
		FailureReason:  reason,
		CreatedAt:      created,
		UpdatedAt:      now,
	}
	audit := AuditEntry{PostID: p.ID, At: now, Actor: "herald", Origin: "department:" + p.DepartmentID, Action: "failed", ToStatus: StatusFailed, Comment: reason}
	isNew, err := s.store.CreatePost(ctx, p, audit, nil)
	if err != nil {
		return fmt.Errorf("fail request %s: %w", p.ID, err)
	}
	if isNew {
		s.log.ErrorContext(ctx, "post request failed for good", "post_id", p.ID, "department_id", p.DepartmentID, "reason", reason, "cause", cause)
	}
	return nil
}

// keepLine returns s if it is a short line a store certainly keeps, and "" otherwise: a failed request
// keeps only what cannot be what sank it.
func keepLine(s string) string {
	if utf8.RuneCountInString(s) > 200 || humantext.CheckLine(s) != nil {
		return ""
	}
	return s
}
