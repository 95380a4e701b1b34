// Package postgres is the approval service's Store on PostgreSQL through pgx: the production engine.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/mediajson"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres/pgdb"
	"github.com/heraldhq/herald/services/heraldshared/pgmigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is an approval.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	q    *pgdb.Queries
}

var _ approval.Store = (*Store)(nil)

// Open connects to the database at url, creates schema if it is not empty and makes it the search path,
// and applies pending migrations. The schema is how one database server hosts each service's own tables.
func Open(ctx context.Context, url, schema string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	if schema != "" {
		if err := pgmigrate.CreateSchema(ctx, cfg.ConnConfig, schema); err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, q: pgdb.New(pool)}, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := pgmigrate.Locker("herald-approval", pool.Config().ConnConfig.RuntimeParams["search_path"])
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func (s *Store) inTx(ctx context.Context, fn func(q *pgdb.Queries) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := fn(s.q.WithTx(tx)); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return approval.ErrNotFound
	}
	return err
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// CreateDepartment implements approval.Store.
func (s *Store) CreateDepartment(ctx context.Context, d approval.Department) error {
	err := s.q.CreateDepartment(ctx, pgdb.CreateDepartmentParams{ID: d.ID, Name: d.Name, CreatedAt: micros(d.CreatedAt)})
	if isUniqueViolation(err) {
		return approval.ErrAlreadyExists
	}
	return err
}

// GetDepartment implements approval.Store.
func (s *Store) GetDepartment(ctx context.Context, id string) (approval.Department, error) {
	r, err := s.q.GetDepartment(ctx, id)
	if err != nil {
		return approval.Department{}, notFound(err)
	}
	return toDepartment(r), nil
}

// ListDepartments implements approval.Store.
func (s *Store) ListDepartments(ctx context.Context) ([]approval.Department, error) {
	rows, err := s.q.ListDepartments(ctx)
	return convert(rows, err, toDepartment)
}

// GetDepartmentLimits implements approval.Store.
func (s *Store) GetDepartmentLimits(ctx context.Context, departmentID string) (approval.Limits, error) {
	r, err := s.q.GetDepartmentLimits(ctx, departmentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return approval.Limits{}, nil
	}
	if err != nil {
		return approval.Limits{}, err
	}
	return approval.Limits{PostsPerMinute: int(r.PostsPerMinute), MaxUndecided: int(r.MaxUndecided)}, nil
}

// SetDepartmentLimits implements approval.Store.
func (s *Store) SetDepartmentLimits(ctx context.Context, departmentID string, l approval.Limits) error {
	if _, err := s.GetDepartment(ctx, departmentID); err != nil {
		return err
	}
	return s.q.SetDepartmentLimits(ctx, pgdb.SetDepartmentLimitsParams{
		DepartmentID: departmentID, PostsPerMinute: int32(l.PostsPerMinute), MaxUndecided: int32(l.MaxUndecided),
	})
}

// CountUndecided implements approval.Store.
func (s *Store) CountUndecided(ctx context.Context, departmentID string) (int, error) {
	n, err := s.q.CountUndecided(ctx, departmentID)
	return int(n), err
}

// CreateAPIKey implements approval.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k approval.APIKey) error {
	return s.q.CreateAPIKey(ctx, pgdb.CreateAPIKeyParams{
		ID: k.ID, DepartmentID: k.DepartmentID, Label: k.Label, Prefix: k.Prefix, Hash: k.Hash, CreatedAt: micros(k.CreatedAt),
	})
}

// GetAPIKeyByHash implements approval.Store.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (approval.APIKey, error) {
	r, err := s.q.GetAPIKeyByHash(ctx, hash)
	if err != nil {
		return approval.APIKey{}, notFound(err)
	}
	k := toAPIKey(pgdb.ApiKey{ID: r.ID, DepartmentID: r.DepartmentID, Label: r.Label, Prefix: r.Prefix, Hash: r.Hash, CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt})
	k.DepartmentName = r.DepartmentName
	return k, nil
}

// ListAPIKeys implements approval.Store.
func (s *Store) ListAPIKeys(ctx context.Context, departmentID string) ([]approval.APIKey, error) {
	rows, err := s.q.ListAPIKeys(ctx, departmentID)
	return convert(rows, err, toAPIKey)
}

// RevokeAPIKey implements approval.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) (approval.APIKey, error) {
	var k pgdb.ApiKey
	err := s.inTx(ctx, func(q *pgdb.Queries) error {
		if err := q.RevokeAPIKey(ctx, pgdb.RevokeAPIKeyParams{ID: id, RevokedAt: micros(at)}); err != nil {
			return err
		}
		var err error
		k, err = q.GetAPIKey(ctx, id)
		return notFound(err)
	})
	if err != nil {
		return approval.APIKey{}, err
	}
	return toAPIKey(k), nil
}

// UpsertApprover implements approval.Store.
func (s *Store) UpsertApprover(ctx context.Context, a approval.Approver) (approval.Approver, error) {
	r, err := s.q.UpsertApprover(ctx, pgdb.UpsertApproverParams{ID: a.ID, Email: a.Email, Name: a.Name, CreatedAt: micros(a.CreatedAt)})
	if err != nil {
		return approval.Approver{}, err
	}
	return toApprover(r), nil
}

// GetApprover implements approval.Store.
func (s *Store) GetApprover(ctx context.Context, id string) (approval.Approver, error) {
	r, err := s.q.GetApprover(ctx, id)
	if err != nil {
		return approval.Approver{}, notFound(err)
	}
	return toApprover(r), nil
}

// ListApprovers implements approval.Store.
func (s *Store) ListApprovers(ctx context.Context) ([]approval.Approver, error) {
	rows, err := s.q.ListApprovers(ctx)
	return convert(rows, err, toApprover)
}

// RemoveApprover implements approval.Store.
func (s *Store) RemoveApprover(ctx context.Context, id string, at time.Time) error {
	n, err := s.q.RemoveApprover(ctx, pgdb.RemoveApproverParams{ID: id, RemovedAt: micros(at)})
	if err != nil {
		return err
	}
	if n == 0 {
		return approval.ErrNotFound
	}
	return nil
}

// CreatePost implements approval.Store.
func (s *Store) CreatePost(ctx context.Context, p approval.Post, audit approval.AuditEntry, outbox []approval.OutboxItem) (bool, error) {
	created, err := s.CreatePosts(ctx, []approval.NewPost{{Post: p, Audit: audit, Outbox: outbox}})
	if err != nil {
		return false, err
	}
	return created[0], nil
}

// CreatePosts implements approval.Store.
func (s *Store) CreatePosts(ctx context.Context, ps []approval.NewPost) ([]bool, error) {
	created := make([]bool, len(ps))
	err := s.inTx(ctx, func(q *pgdb.Queries) error {
		for i, np := range ps {
			p := np.Post
			n, err := q.InsertPost(ctx, pgdb.InsertPostParams{
				ID: p.ID, DepartmentID: p.DepartmentID, Text: p.Text, RequestedBy: p.RequestedBy, IdempotencyKey: p.IdempotencyKey,
				Status: string(p.Status), CreatedAt: micros(p.CreatedAt), UpdatedAt: micros(p.UpdatedAt), FailureReason: p.FailureReason,
				ExpiresAt: micros(p.ExpiresAt), Mode: string(p.Mode), Required: int64(p.Required), WaitingFor: p.WaitingFor,
				Media: mediajson.Encode(p.Media),
			})
			if err != nil {
				return fmt.Errorf("post %s: %w", p.ID, err)
			}
			if n == 0 {
				continue
			}
			created[i] = true
			if err := insertAudit(ctx, q, np.Audit); err != nil {
				return fmt.Errorf("post %s: %w", p.ID, err)
			}
			for _, it := range np.Outbox {
				if err := insertOutbox(ctx, q, it); err != nil {
					return fmt.Errorf("post %s: %w", p.ID, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// GetPost implements approval.Store.
func (s *Store) GetPost(ctx context.Context, id string) (approval.Post, error) {
	r, err := s.q.GetPost(ctx, id)
	if err != nil {
		return approval.Post{}, notFound(err)
	}
	return toPost(r)
}

// ListPosts implements approval.Store.
func (s *Store) ListPosts(ctx context.Context, f approval.PostFilter) ([]approval.Post, error) {
	var rows []pgdb.Post
	var err error
	switch {
	case f.DepartmentID != "" && f.Status != "" && !f.WaitingForApprover:
		rows, err = s.q.ListDepartmentPostsByStatus(ctx, pgdb.ListDepartmentPostsByStatusParams{DepartmentID: f.DepartmentID, Status: string(f.Status), MaxRows: int32(min(f.Limit, 1<<30))})
	case f.DepartmentID != "" && f.Status == "" && !f.WaitingForApprover:
		rows, err = s.q.ListDepartmentPosts(ctx, pgdb.ListDepartmentPostsParams{DepartmentID: f.DepartmentID, MaxRows: int32(min(f.Limit, 1<<30))})
	default:
		rows, err = s.q.ListPosts(ctx, pgdb.ListPostsParams{DepartmentID: f.DepartmentID, Status: string(f.Status), Waiting: boolInt(f.WaitingForApprover), MaxRows: int32(min(f.Limit, 1<<30))})
	}
	return convertErr(rows, err, toPost)
}

// ListAudit implements approval.Store.
func (s *Store) ListAudit(ctx context.Context, postID string) ([]approval.AuditEntry, error) {
	rows, err := s.q.ListAudit(ctx, postID)
	return convert(rows, err, toAudit)
}

// CreateToken implements approval.Store.
func (s *Store) CreateToken(ctx context.Context, t approval.Token) error {
	return s.q.CreateToken(ctx, pgdb.CreateTokenParams{
		Hash: t.Hash, PostID: t.PostID, ApproverID: t.ApproverID, CreatedAt: micros(t.CreatedAt), ExpiresAt: micros(t.ExpiresAt),
	})
}

// CreateTokens implements approval.Store.
func (s *Store) CreateTokens(ctx context.Context, ts []approval.Token) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		for _, t := range ts {
			err := q.CreateToken(ctx, pgdb.CreateTokenParams{
				Hash: t.Hash, PostID: t.PostID, ApproverID: t.ApproverID, CreatedAt: micros(t.CreatedAt), ExpiresAt: micros(t.ExpiresAt),
			})
			if err != nil {
				return fmt.Errorf("token for post %s: %w", t.PostID, err)
			}
		}
		return nil
	})
}

// GetToken implements approval.Store.
func (s *Store) GetToken(ctx context.Context, hash string) (approval.Token, error) {
	r, err := s.q.GetToken(ctx, hash)
	if err != nil {
		return approval.Token{}, notFound(err)
	}
	return toToken(r), nil
}

// Decide implements approval.Store. The post's row is locked (a conditional touch) before the decision is
// added up, so that concurrent decisions on one post are counted one after the other on both engines.
func (s *Store) Decide(ctx context.Context, p approval.DecideParams) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		n, err := q.UseToken(ctx, pgdb.UseTokenParams{Hash: p.TokenHash, UsedAt: micros(p.At)})
		if err != nil {
			return err
		}
		if n == 0 {
			return approval.ErrTokenUsed
		}
		n, err = q.TouchPendingPost(ctx, pgdb.TouchPendingPostParams{ID: p.PostID, UpdatedAt: micros(p.At)})
		if err != nil {
			return err
		}
		if n == 0 {
			return approval.ErrClosed
		}
		approverID := p.ApproverID
		if approverID == "" {
			approverID = p.Approver
		}
		n, err = q.InsertDecision(ctx, pgdb.InsertDecisionParams{
			PostID: p.PostID, ApproverID: approverID, ApproverEmail: p.Approver, Outcome: string(p.Outcome),
			Comment: p.Comment, EditedText: p.EditedText, DecidedAt: micros(p.At),
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return approval.ErrAlreadyAnswered
		}
		status := p.Status
		if p.Resolve != nil {
			rows, err := q.ListDecisions(ctx, p.PostID)
			ds, err := convert(rows, err, toDecision)
			if err != nil {
				return err
			}
			status = p.Resolve(ds).Status
		}
		audit := p.Audit
		audit.ToStatus = status
		if status == approval.StatusPending {
			return insertAudit(ctx, q, audit)
		}
		final := ""
		if status == approval.StatusApproved {
			final = p.EditedText
		}
		n, err = q.DecidePost(ctx, pgdb.DecidePostParams{
			ID: p.PostID, Status: string(status), Decision: string(p.Outcome), DecidedBy: p.Approver,
			DecidedAt: micros(p.At), DecisionComment: p.Comment, FinalText: final,
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return approval.ErrClosed
		}
		if err := insertAudit(ctx, q, audit); err != nil {
			return err
		}
		ann := p.Announcement
		ann.Kind = approval.AnnouncementOf(status)
		for _, it := range append([]approval.OutboxItem{ann}, p.Extra...) {
			if err := insertOutbox(ctx, q, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListDecisions implements approval.Store.
func (s *Store) ListDecisions(ctx context.Context, postID string) ([]approval.Decision, error) {
	rows, err := s.q.ListDecisions(ctx, postID)
	return convert(rows, err, toDecision)
}

// GetPolicy implements approval.Store.
func (s *Store) GetPolicy(ctx context.Context, departmentID string) (approval.Policy, error) {
	r, err := s.q.GetPolicy(ctx, departmentID)
	if err != nil {
		return approval.Policy{}, notFound(err)
	}
	p := approval.Policy{
		DepartmentID: r.DepartmentID, Mode: approval.Mode(r.Mode), Quorum: int(r.Quorum), TTL: time.Duration(r.TtlMicros) * time.Microsecond,
		AllowSelfApproval: r.AllowSelfApproval != 0, AllApprovers: r.AllApprovers != 0, TeamsWebhookURL: r.TeamsWebhookUrl,
		UpdatedAt: fromMicros(r.UpdatedAt),
	}
	if !p.AllApprovers {
		as, err := s.ListPolicyApprovers(ctx, departmentID)
		if err != nil {
			return approval.Policy{}, err
		}
		p.ApproverIDs = []string{}
		for _, a := range as {
			p.ApproverIDs = append(p.ApproverIDs, a.ID)
		}
	}
	return p, nil
}

// SetPolicy implements approval.Store.
func (s *Store) SetPolicy(ctx context.Context, p approval.Policy) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		err := q.UpsertPolicy(ctx, pgdb.UpsertPolicyParams{
			DepartmentID: p.DepartmentID, Mode: string(p.Mode), Quorum: int64(p.Quorum), TtlMicros: p.TTL.Microseconds(),
			AllowSelfApproval: boolInt(p.AllowSelfApproval), AllApprovers: boolInt(p.AllApprovers), TeamsWebhookUrl: p.TeamsWebhookURL,
			UpdatedAt: micros(p.UpdatedAt),
		})
		if err != nil {
			return err
		}
		if err := q.DeletePolicyApprovers(ctx, p.DepartmentID); err != nil {
			return err
		}
		for _, id := range p.ApproverIDs {
			if err := q.InsertPolicyApprover(ctx, pgdb.InsertPolicyApproverParams{DepartmentID: p.DepartmentID, ApproverID: id}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListPolicyApprovers implements approval.Store.
func (s *Store) ListPolicyApprovers(ctx context.Context, departmentID string) ([]approval.Approver, error) {
	rows, err := s.q.ListPolicyApprovers(ctx, departmentID)
	return convert(rows, err, toApprover)
}

// CountWaiting implements approval.Store.
func (s *Store) CountWaiting(ctx context.Context) (int, error) {
	n, err := s.q.CountPostsWaiting(ctx)
	return int(n), err
}

// WaitingPosts implements approval.Store.
func (s *Store) WaitingPosts(ctx context.Context, limit int) ([]approval.Post, error) {
	rows, err := s.q.WaitingPosts(ctx, int32(min(limit, 1<<30)))
	return convertErr(rows, err, toPost)
}

// AskApprovers implements approval.Store.
func (s *Store) AskApprovers(ctx context.Context, postID string, mode approval.Mode, required int, at time.Time, audit approval.AuditEntry, outbox []approval.OutboxItem) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		n, err := q.AskPost(ctx, pgdb.AskPostParams{ID: postID, Mode: string(mode), Required: int64(required), UpdatedAt: micros(at)})
		if err != nil {
			return err
		}
		if n == 0 {
			return approval.ErrClosed
		}
		if err := insertAudit(ctx, q, audit); err != nil {
			return err
		}
		for _, it := range outbox {
			if err := insertOutbox(ctx, q, it); err != nil {
				return err
			}
		}
		return nil
	})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// OverduePosts implements approval.Store.
func (s *Store) OverduePosts(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.q.OverduePosts(ctx, pgdb.OverduePostsParams{Now: micros(now), MaxRows: int32(min(limit, 1<<30))})
}

// ClosePost implements approval.Store.
func (s *Store) ClosePost(ctx context.Context, p approval.CloseParams) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		n, err := q.ClosePost(ctx, pgdb.ClosePostParams{ID: p.PostID, Status: string(p.Status), UpdatedAt: micros(p.At)})
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := q.GetPost(ctx, p.PostID); err != nil {
				return notFound(err)
			}
			return approval.ErrClosed
		}
		if err := insertAudit(ctx, q, p.Audit); err != nil {
			return err
		}
		for _, it := range append([]approval.OutboxItem{p.Announcement}, p.Extra...) {
			if err := insertOutbox(ctx, q, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// ResendApprovals implements approval.Store.
func (s *Store) ResendApprovals(ctx context.Context, postID string, at time.Time, audit approval.AuditEntry, outbox []approval.OutboxItem) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		n, err := q.TouchPendingPost(ctx, pgdb.TouchPendingPostParams{ID: postID, UpdatedAt: micros(at)})
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := q.GetPost(ctx, postID); err != nil {
				return notFound(err)
			}
			return approval.ErrClosed
		}
		if err := q.ReplacePostTokens(ctx, pgdb.ReplacePostTokensParams{PostID: postID, ReplacedAt: micros(at)}); err != nil {
			return err
		}
		if err := insertAudit(ctx, q, audit); err != nil {
			return err
		}
		for _, it := range outbox {
			if err := insertOutbox(ctx, q, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordOutcome implements approval.Store.
func (s *Store) RecordOutcome(ctx context.Context, p approval.OutcomeParams) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(q *pgdb.Queries) error {
		prev, err := q.GetPost(ctx, p.PostID)
		if err != nil {
			return notFound(err)
		}
		n, err := q.RecordOutcome(ctx, pgdb.RecordOutcomeParams{
			ID: p.PostID, Status: string(p.Status), Channel: p.Channel, RemoteID: p.RemoteID, RemoteUrl: p.RemoteURL,
			PublishedAt: micros(p.PublishedAt), FailureReason: p.FailureReason, UpdatedAt: micros(p.At),
		})
		if err != nil || n == 0 {
			return err
		}
		changed = true
		audit := p.Audit
		audit.FromStatus = approval.Status(prev.Status)
		if err := insertAudit(ctx, q, audit); err != nil {
			return err
		}
		for _, it := range p.Extra {
			if err := insertOutbox(ctx, q, it); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, err
}

// DueOutbox implements approval.Store.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]approval.OutboxItem, error) {
	rows, err := s.q.DueOutbox(ctx, pgdb.DueOutboxParams{Now: micros(now), MaxRows: int32(min(limit, 1<<30))})
	return convert(rows, err, toOutbox)
}

// ClaimOutbox implements approval.Store.
func (s *Store) ClaimOutbox(ctx context.Context, now, until time.Time, limit int) ([]approval.OutboxItem, error) {
	rows, err := s.q.ClaimOutbox(ctx, pgdb.ClaimOutboxParams{LeaseUntil: micros(until), Now: micros(now), MaxRows: int32(min(limit, 1<<30))})
	items, err := convert(rows, err, toOutbox)
	if err != nil {
		return nil, err
	}
	// RETURNING keeps no order: hand the items out oldest first, as DueOutbox does.
	slices.SortFunc(items, func(a, b approval.OutboxItem) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return items, nil
}

// DeleteOutbox implements approval.Store.
func (s *Store) DeleteOutbox(ctx context.Context, id int64) error {
	return s.q.DeleteOutbox(ctx, id)
}

// ExtendOutboxLease implements approval.Store.
func (s *Store) ExtendOutboxLease(ctx context.Context, ids []int64, now, until time.Time) (int, error) {
	extended := 0
	err := s.inTx(ctx, func(q *pgdb.Queries) error {
		extended = 0 // a retried transaction counts afresh
		for _, id := range ids {
			n, err := q.ExtendOutboxLease(ctx, pgdb.ExtendOutboxLeaseParams{ID: id, Now: micros(now), LeaseUntil: micros(until)})
			if err != nil {
				return fmt.Errorf("extend lease of outbox item %d: %w", id, err)
			}
			extended += int(n)
		}
		return nil
	})
	return extended, err
}

// FinishOutbox implements approval.Store.
func (s *Store) FinishOutbox(ctx context.Context, rs []approval.OutboxResult) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		for _, r := range rs {
			var err error
			if r.Err == "" {
				err = q.DeleteOutbox(ctx, r.ID)
			} else {
				err = q.DeferOutbox(ctx, pgdb.DeferOutboxParams{ID: r.ID, NextAttemptAt: micros(r.Next), LastError: r.Err})
			}
			if err != nil {
				return fmt.Errorf("outbox %d: %w", r.ID, err)
			}
		}
		return nil
	})
}

// DeferOutbox implements approval.Store.
func (s *Store) DeferOutbox(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return s.q.DeferOutbox(ctx, pgdb.DeferOutboxParams{ID: id, NextAttemptAt: micros(next), LastError: lastErr})
}

func insertAudit(ctx context.Context, q *pgdb.Queries, a approval.AuditEntry) error {
	return q.InsertAudit(ctx, pgdb.InsertAuditParams{
		PostID: a.PostID, At: micros(a.At), Actor: a.Actor, Origin: a.Origin, Action: a.Action,
		FromStatus: string(a.FromStatus), ToStatus: string(a.ToStatus), Comment: a.Comment, ApiKeyID: a.APIKeyID,
	})
}

func insertOutbox(ctx context.Context, q *pgdb.Queries, it approval.OutboxItem) error {
	return q.InsertOutbox(ctx, pgdb.InsertOutboxParams{
		Kind: string(it.Kind), PostID: it.PostID, ApproverID: it.ApproverID,
		CreatedAt: micros(it.CreatedAt), NextAttemptAt: micros(it.NextAttemptAt),
	})
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
