package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// storageQuery is one ListPosts query timed at one table size.
type storageQuery struct {
	Rows  int     `json:"rows"`
	Query string  `json:"query"`
	Got   int     `json:"got"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

// storageResult is ListPosts on one database, first with a small table (the same-run baseline) and then
// at scale.
type storageResult struct {
	Database    string         `json:"database"`
	Rows        int            `json:"rows"`
	GenerateSec float64        `json:"generate_seconds"`
	Queries     []storageQuery `json:"queries"`
	// Ratios are p50 at scale over p50 with the small table, by query.
	Ratios map[string]float64 `json:"p50_ratio_to_small"`
}

// smallRows is the baseline table's size: what ListPosts costs before the table is large.
const smallRows = 1000

// Generated posts: ten departments (the demo one and nine more), 1 % pending, 4 % rejected, the rest
// published, 1 ms apart. The status does not follow the department, so the filtered query (the demo
// department's pending posts) has to skip published rows of its own department, as an ops query on a
// real table would.
const (
	genDept   = `CASE WHEN %[1]s %% 10 = 0 THEN %[2]s ELSE 'bench-dept-' || (%[1]s %% 10) END`
	genStatus = `CASE WHEN (%[1]s / 10) %% 100 = 0 THEN 'pending' WHEN (%[1]s / 10) %% 100 < 5 THEN 'rejected' ELSE 'published' END`
	genText   = `'Generated post number ' || %[1]s || ': our quarterly results are out, read the full report on the website today.'`
)

func generateSelect(n, dept string, base int64) string {
	return fmt.Sprintf(`SELECT 'bench-' || %[1]s, `+genDept+`, `+genText+`, 'bench@contoso.example', '', `+genStatus+`, %[3]d - %[1]s * 1000, %[3]d - %[1]s * 1000`,
		n, dept, base)
}

const postColumns = `(id, department_id, text, requested_by, idempotency_key, status, created_at, updated_at)`

// generator inserts posts numbered from..to (inclusive) straight into the approval service's tables, in
// SQL: a million posts through the API would benchmark the intake instead.
type generator interface {
	departments(ctx context.Context) error
	posts(ctx context.Context, from, to int) error
	close()
}

type pgGenerator struct {
	conn   *pgx.Conn
	schema string
	dept   string
	base   int64
}

func (g *pgGenerator) departments(ctx context.Context) error {
	_, err := g.conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.departments (id, name, created_at)
		SELECT 'bench-dept-' || d, 'Bench ' || d, 0 FROM generate_series(1, 9) AS d`, g.schema))
	return err
}

func (g *pgGenerator) posts(ctx context.Context, from, to int) error {
	q := fmt.Sprintf(`INSERT INTO %s.posts %s %s FROM generate_series($1::bigint, $2::bigint) AS g`,
		g.schema, postColumns, generateSelect("g", "$3::text", g.base))
	if _, err := g.conn.Exec(ctx, q, from, to, g.dept); err != nil {
		return err
	}
	// As autovacuum would before long: the planner needs to know the table grew.
	_, err := g.conn.Exec(ctx, fmt.Sprintf("ANALYZE %s.posts", g.schema))
	return err
}

func (g *pgGenerator) close() { g.conn.Close(context.Background()) }

type sqliteGenerator struct {
	db   *sql.DB
	dept string
	base int64
}

func (g *sqliteGenerator) departments(ctx context.Context) error {
	_, err := g.db.ExecContext(ctx, `WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 9)
		INSERT INTO departments (id, name, created_at) SELECT 'bench-dept-' || n, 'Bench ' || n, 0 FROM d`)
	return err
}

func (g *sqliteGenerator) posts(ctx context.Context, from, to int) error {
	q := `WITH RECURSIVE g(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2)
		INSERT INTO posts ` + postColumns + ` ` + generateSelect("n", "?3", g.base) + ` FROM g`
	if _, err := g.db.ExecContext(ctx, q, from, to, g.dept); err != nil {
		return err
	}
	_, err := g.db.ExecContext(ctx, "ANALYZE")
	return err
}

func (g *sqliteGenerator) close() { g.db.Close() }

// benchStorage fills the approval service's posts table on db in SQL and times ListPosts through gRPC
// (as ops and the gateway call it): the newest page, and the demo department's pending posts.
func benchStorage(ctx context.Context, o options, db string) (storageResult, error) {
	h, err := startHeraldOn(ctx, o, db)
	if err != nil {
		return storageResult{}, err
	}
	defer h.close()
	rows := o.sqliteRows
	base := time.Now().UnixMicro()
	var gen generator
	if db == "postgres" {
		rows = o.pgRows
		conn, err := pgx.Connect(ctx, o.pgURL)
		if err != nil {
			return storageResult{}, fmt.Errorf("connect: %w", err)
		}
		gen = &pgGenerator{conn: conn, schema: pgx.Identifier{h.pgSchemas[0]}.Sanitize(), dept: h.deptID, base: base}
	} else {
		sdb, err := sql.Open("sqlite", "file:"+filepath.Join(h.dataDir, "approval.db")+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return storageResult{}, fmt.Errorf("open approval.db: %w", err)
		}
		gen = &sqliteGenerator{db: sdb, dept: h.deptID, base: base}
	}
	defer gen.close()
	if err := gen.departments(ctx); err != nil {
		return storageResult{}, fmt.Errorf("generate departments: %w", err)
	}

	res := storageResult{Database: db, Rows: rows, Ratios: map[string]float64{}}
	client := approvalv1.NewApprovalServiceClient(h.conn)
	queries := []struct {
		name string
		req  *approvalv1.ListPostsRequest
	}{
		{"first page", &approvalv1.ListPostsRequest{PageSize: 50}},
		{"department+pending", &approvalv1.ListPostsRequest{PageSize: 50, DepartmentId: h.deptID, Status: approvalv1.PostStatus_POST_STATUS_PENDING}},
	}
	small := map[string]float64{}
	done := 0
	for _, size := range []int{min(smallRows, rows), rows} {
		began := time.Now()
		if err := gen.posts(ctx, done+1, size); err != nil {
			return res, fmt.Errorf("generate posts: %w", err)
		}
		if size == rows {
			res.GenerateSec = time.Since(began).Seconds()
		}
		done = size
		for _, q := range queries {
			var lat []time.Duration
			got := 0
			for range o.iterations {
				t0 := time.Now()
				list, err := client.ListPosts(h.admin(ctx), q.req)
				if err != nil {
					return res, fmt.Errorf("ListPosts %s: %w", q.name, err)
				}
				lat = append(lat, time.Since(t0))
				got = len(list.GetPosts())
			}
			slices.Sort(lat)
			sq := storageQuery{Rows: size, Query: q.name, Got: got, P50ms: ms(quantile(lat, 0.5)), P99ms: ms(quantile(lat, 0.99))}
			res.Queries = append(res.Queries, sq)
			if size == min(smallRows, rows) {
				small[q.name] = sq.P50ms
			} else if small[q.name] > 0 {
				res.Ratios[q.name] = sq.P50ms / small[q.name]
			}
			fmt.Printf("  %s %d rows, %s: %d posts, p50 %.2f ms, p99 %.2f ms\n", db, size, q.name, got, sq.P50ms, sq.P99ms)
		}
	}
	return res, nil
}
