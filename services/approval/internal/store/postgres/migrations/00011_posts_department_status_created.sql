-- A department's posts in one status, newest first, is the listing ops and the gateway ask for most (its
-- pending posts): with this index the database reads exactly the page it returns instead of every post of
-- the department in that status. It also serves the count of a department's pending posts, so the
-- narrower index of 00005 goes: one index less to update on every write.

-- +goose Up
CREATE INDEX posts_department_status_created ON posts (department_id, status, created_at DESC, id DESC);
DROP INDEX posts_department_status;

-- +goose Down
CREATE INDEX posts_department_status ON posts (department_id, status);
DROP INDEX posts_department_status_created;
