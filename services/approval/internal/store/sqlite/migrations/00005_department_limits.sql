-- Per-department limits that keep a runaway flow from flooding the approvers: how many posts per minute
-- one of its keys may request, and how many of its posts may wait for a decision at once. Zero means the
-- service's default; a department without a row uses the defaults. The index serves the count of a
-- department's pending posts, asked at every request.

-- +goose Up
CREATE TABLE department_limits (
    department_id    TEXT PRIMARY KEY REFERENCES departments (id),
    posts_per_minute INTEGER NOT NULL DEFAULT 0,
    max_undecided    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX posts_department_status ON posts (department_id, status);

-- +goose Down
DROP INDEX posts_department_status;
DROP TABLE department_limits;
