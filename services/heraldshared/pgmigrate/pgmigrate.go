// Package pgmigrate lets replicas that start together on one PostgreSQL database migrate it safely: one
// migrates while the others wait, instead of all running the same migration and all but one failing
// halfway through it.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3/lock"
)

// Locker returns a goose session locker holding a PostgreSQL advisory lock for the migrations of service
// in schema. Advisory locks are per database, not per schema, so the lock id is derived from both: each
// service's schema migrates on its own, and tests that migrate many schemas at once do not queue.
func Locker(service, schema string) (lock.SessionLocker, error) {
	l, err := lock.NewPostgresSessionLocker(lock.WithLockID(LockID(service, schema)))
	if err != nil {
		return nil, fmt.Errorf("migration lock for %s: %w", service, err)
	}
	return l, nil
}

// LockID is the advisory lock id of service's migrations in schema.
func LockID(service, schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(service + "\x00" + schema))
	return int64(h.Sum64())
}

// LostCreateRace reports whether err is what PostgreSQL answers the loser of two concurrent
// CREATE SCHEMA IF NOT EXISTS (the check and the insert into the catalogue are not atomic): the schema
// exists, which is what the caller wanted.
func LostCreateRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P06")
}

// CreateSchema creates schema unless it exists, on a connection of its own made from cc; replicas starting
// together may all try, and the loser of the race is told it exists (LostCreateRace).
func CreateSchema(ctx context.Context, cc *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil && !LostCreateRace(err) {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}
