// Package postgres is the publisher's ledger on PostgreSQL through pgx: the production engine.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/heraldhq/herald/services/heraldshared/pgmigrate"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/store/mediacol"
	"github.com/heraldhq/herald/services/publisher/internal/store/postgres/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a ledger.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	q    *pgdb.Queries
}

var _ ledger.Store = (*Store)(nil)

// Open connects to the database at url, creates schema if it is not empty and makes it the search path,
// and applies pending migrations.
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
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	var locker lock.SessionLocker
	if err == nil {
		locker, err = pgmigrate.Locker("herald-publisher", cfg.ConnConfig.RuntimeParams["search_path"])
	}
	if err == nil {
		var p *goose.Provider
		if p, err = goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker)); err == nil {
			_, err = p.Up(ctx)
		}
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Store{pool: pool, q: pgdb.New(pool)}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Begin implements ledger.Store.
func (s *Store) Begin(ctx context.Context, p ledger.Publication) (ledger.Publication, bool, error) {
	n, err := s.q.InsertPublication(ctx, pgdb.InsertPublicationParams{
		PostID: p.PostID, Channel: p.Channel, State: string(p.State), Text: p.Text, Attempts: int64(p.Attempts), SinceID: p.SinceID,
		CreatedAt: p.CreatedAt.UnixMicro(), UpdatedAt: p.UpdatedAt.UnixMicro(), Media: mediacol.Encode(p.Media),
	})
	if err != nil {
		return ledger.Publication{}, false, err
	}
	if n == 1 {
		return p, true, nil
	}
	existing, err := s.Get(ctx, p.PostID)
	return existing, false, err
}

// Finish implements ledger.Store.
func (s *Store) Finish(ctx context.Context, p ledger.Publication) error {
	n, err := s.q.FinishPublication(ctx, pgdb.FinishPublicationParams{
		PostID: p.PostID, State: string(p.State), RemoteID: p.RemoteID, Url: p.URL, Error: p.Error, UpdatedAt: p.UpdatedAt.UnixMicro(),
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return ledger.ErrNotAttempting
	}
	return nil
}

// Release implements ledger.Store.
func (s *Store) Release(ctx context.Context, postID string) error {
	n, err := s.q.ReleasePublication(ctx, postID)
	if err != nil {
		return err
	}
	if n == 0 {
		return ledger.ErrNotAttempting
	}
	return nil
}

// Get implements ledger.Store.
func (s *Store) Get(ctx context.Context, postID string) (ledger.Publication, error) {
	r, err := s.q.GetPublication(ctx, postID)
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Publication{}, ledger.ErrNotFound
	}
	if err != nil {
		return ledger.Publication{}, err
	}
	return toPublication(r)
}

// List implements ledger.Store.
func (s *Store) List(ctx context.Context, limit int) ([]ledger.Publication, error) {
	rows, err := s.q.ListPublications(ctx, int32(min(limit, 1<<30)))
	if err != nil {
		return nil, err
	}
	out := make([]ledger.Publication, len(rows))
	for i, r := range rows {
		if out[i], err = toPublication(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func toPublication(r pgdb.Publication) (ledger.Publication, error) {
	media, err := mediacol.Decode(r.Media)
	if err != nil {
		return ledger.Publication{}, fmt.Errorf("publication %s: %w", r.PostID, err)
	}
	return ledger.Publication{
		Media:  media,
		PostID: r.PostID, Channel: r.Channel, State: ledger.State(r.State), Text: r.Text, RemoteID: r.RemoteID, URL: r.Url,
		Error: r.Error, Attempts: int(r.Attempts), SinceID: r.SinceID, CreatedAt: time.UnixMicro(r.CreatedAt).UTC(), UpdatedAt: time.UnixMicro(r.UpdatedAt).UTC(),
	}, nil
}

// Update implements ledger.Store: a compare-and-set on the state and attempt read, with the audit entry in
// the same transaction.
func (s *Store) Update(ctx context.Context, from, to ledger.Publication, audit *ledger.AuditEntry) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	q := s.q.WithTx(tx)
	n, err := q.UpdatePublication(ctx, pgdb.UpdatePublicationParams{
		PostID: from.PostID, FromState: string(from.State), FromAttempts: int64(from.Attempts),
		State: string(to.State), RemoteID: to.RemoteID, Url: to.URL, Error: to.Error, Attempts: int64(to.Attempts), UpdatedAt: to.UpdatedAt.UnixMicro(),
	})
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := q.GetPublication(ctx, from.PostID); isNoRows(err) {
			return ledger.ErrNotFound
		}
		return ledger.ErrConflict
	}
	if audit != nil {
		if err := q.InsertAudit(ctx, pgdb.InsertAuditParams{
			PostID: audit.PostID, Actor: audit.Actor, Action: audit.Action, FromState: string(audit.From), ToState: string(audit.To),
			RemoteID: audit.RemoteID, Note: audit.Note, At: audit.At.UnixMicro(),
		}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return tx.Commit(ctx)
}

// LatestRemoteID implements ledger.Store.
func (s *Store) LatestRemoteID(ctx context.Context) (string, error) {
	ids, err := s.q.LatestRemoteID(ctx)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// ListAudit implements ledger.Store.
func (s *Store) ListAudit(ctx context.Context, postID string) ([]ledger.AuditEntry, error) {
	rows, err := s.q.ListAudit(ctx, postID)
	if err != nil {
		return nil, err
	}
	out := make([]ledger.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = ledger.AuditEntry{
			PostID: r.PostID, Actor: r.Actor, Action: r.Action, From: ledger.State(r.FromState), To: ledger.State(r.ToState),
			RemoteID: r.RemoteID, Note: r.Note, At: time.UnixMicro(r.At).UTC(),
		}
	}
	return out, nil
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
