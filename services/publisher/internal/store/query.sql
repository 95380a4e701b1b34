-- Queries shared by the SQLite and PostgreSQL ledgers (sqlc generates a package for each engine).

-- name: InsertPublication :execrows
INSERT INTO publications (post_id, channel, state, text, attempts, created_at, updated_at)
VALUES (sqlc.arg(post_id), sqlc.arg(channel), sqlc.arg(state), sqlc.arg(text), sqlc.arg(attempts), sqlc.arg(created_at), sqlc.arg(updated_at))
ON CONFLICT (post_id) DO NOTHING;

-- name: GetPublication :one
SELECT * FROM publications WHERE post_id = sqlc.arg(post_id);

-- name: ListPublications :many
SELECT * FROM publications ORDER BY created_at DESC, post_id DESC LIMIT sqlc.arg(max_rows);

-- name: FinishPublication :execrows
UPDATE publications
SET state = sqlc.arg(state), remote_id = sqlc.arg(remote_id), url = sqlc.arg(url), error = sqlc.arg(error), updated_at = sqlc.arg(updated_at)
WHERE post_id = sqlc.arg(post_id) AND state = 'attempting';

-- name: ReleasePublication :execrows
DELETE FROM publications WHERE post_id = sqlc.arg(post_id) AND state = 'attempting';
