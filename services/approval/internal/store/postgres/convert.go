package postgres

import (
	"fmt"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/mediajson"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres/pgdb"
)

func convertErr[R, D any](rows []R, err error, f func(R) (D, error)) ([]D, error) {
	if err != nil {
		return nil, err
	}
	out := make([]D, len(rows))
	for i, r := range rows {
		if out[i], err = f(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func convert[R, D any](rows []R, err error, f func(R) D) ([]D, error) {
	if err != nil {
		return nil, err
	}
	out := make([]D, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out, nil
}

func toDepartment(r pgdb.Department) approval.Department {
	return approval.Department{ID: r.ID, Name: r.Name, CreatedAt: fromMicros(r.CreatedAt)}
}

func toAPIKey(r pgdb.ApiKey) approval.APIKey {
	return approval.APIKey{
		ID: r.ID, DepartmentID: r.DepartmentID, Label: r.Label, Prefix: r.Prefix, Hash: r.Hash,
		CreatedAt: fromMicros(r.CreatedAt), RevokedAt: fromMicros(r.RevokedAt),
	}
}

func toApprover(r pgdb.Approver) approval.Approver {
	return approval.Approver{ID: r.ID, Email: r.Email, Name: r.Name, CreatedAt: fromMicros(r.CreatedAt)}
}

func toPost(r pgdb.Post) (approval.Post, error) {
	media, err := mediajson.Decode(r.Media)
	if err != nil {
		return approval.Post{}, fmt.Errorf("post %s: %w", r.ID, err)
	}
	return approval.Post{
		ID: r.ID, DepartmentID: r.DepartmentID, Text: r.Text, RequestedBy: r.RequestedBy, IdempotencyKey: r.IdempotencyKey,
		Status: approval.Status(r.Status), CreatedAt: fromMicros(r.CreatedAt), UpdatedAt: fromMicros(r.UpdatedAt),
		Decision: approval.Outcome(r.Decision), DecidedBy: r.DecidedBy, DecidedAt: fromMicros(r.DecidedAt), Comment: r.DecisionComment,
		Channel: r.Channel, RemoteID: r.RemoteID, RemoteURL: r.RemoteUrl, PublishedAt: fromMicros(r.PublishedAt), FailureReason: r.FailureReason,
		ExpiresAt: fromMicros(r.ExpiresAt), Mode: approval.Mode(r.Mode), Required: int(r.Required), WaitingFor: r.WaitingFor, FinalText: r.FinalText,
		Media: media,
	}, nil
}

func toToken(r pgdb.ApprovalToken) approval.Token {
	return approval.Token{
		Hash: r.Hash, PostID: r.PostID, ApproverID: r.ApproverID, CreatedAt: fromMicros(r.CreatedAt),
		ExpiresAt: fromMicros(r.ExpiresAt), UsedAt: fromMicros(r.UsedAt), ReplacedAt: fromMicros(r.ReplacedAt),
	}
}

func toAudit(r pgdb.AuditEvent) approval.AuditEntry {
	return approval.AuditEntry{
		PostID: r.PostID, At: fromMicros(r.At), Actor: r.Actor, Origin: r.Origin, Action: r.Action,
		FromStatus: approval.Status(r.FromStatus), ToStatus: approval.Status(r.ToStatus), Comment: r.Comment,
		APIKeyID: r.ApiKeyID,
	}
}

func toOutbox(r pgdb.Outbox) approval.OutboxItem {
	return approval.OutboxItem{
		ID: r.ID, Kind: approval.OutboxKind(r.Kind), PostID: r.PostID, ApproverID: r.ApproverID,
		CreatedAt: fromMicros(r.CreatedAt), Attempts: int(r.Attempts), NextAttemptAt: fromMicros(r.NextAttemptAt), LastError: r.LastError,
	}
}

func toDecision(r pgdb.Decision) approval.Decision {
	return approval.Decision{
		PostID: r.PostID, ApproverID: r.ApproverID, ApproverEmail: r.ApproverEmail, Outcome: approval.Outcome(r.Outcome),
		Comment: r.Comment, EditedText: r.EditedText, DecidedAt: fromMicros(r.DecidedAt),
	}
}
