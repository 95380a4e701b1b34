package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultPostgres is the development machines' PostgreSQL, as the test suites use it.
func defaultPostgres() string {
	if u := os.Getenv("HERALD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// postgresReachable says whether url answers, and if not why, so that the PostgreSQL halves are skipped
// with a reason rather than failing the run.
func postgresReachable(ctx context.Context, url string) (bool, string) {
	if url == "" || url == "off" {
		return false, "-pg off"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, fmt.Sprintf("PostgreSQL unreachable: %v", err)
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		return false, fmt.Sprintf("PostgreSQL unreachable: %v", err)
	}
	return true, ""
}

// postgresEnv returns the variables that put the approval service and the publisher in fresh schemas
// of url, and the schemas' names, to be dropped after.
func postgresEnv(url string) (map[string]string, []string) {
	s := randomSuffix()
	approval, publisher := "bench_"+s+"_approval", "bench_"+s+"_publisher"
	return map[string]string{
		"HERALD_DATABASE_URL": url, "HERALD_APPROVAL_DB_SCHEMA": approval, "HERALD_PUBLISHER_DB_SCHEMA": publisher,
	}, []string{approval, publisher}
}

// dropSchemas drops the schemas a run made, with everything in them.
func dropSchemas(ctx context.Context, url string, schemas []string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	for _, s := range schemas {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("drop %s: %w", s, err)
		}
	}
	return nil
}

// startHeraldOn starts Herald on db ("sqlite" or "postgres", in fresh schemas of o.pgURL).
func startHeraldOn(ctx context.Context, o options, db string) (*herald, error) {
	if db != "postgres" {
		return startHerald(ctx, nil, o.logOut)
	}
	env, schemas := postgresEnv(o.pgURL)
	h, err := startHerald(ctx, env, o.logOut)
	if err != nil {
		// The migrations may have run before the failure.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = dropSchemas(dctx, o.pgURL, schemas)
		return nil, err
	}
	h.pgURL, h.pgSchemas = o.pgURL, schemas
	return h, nil
}
