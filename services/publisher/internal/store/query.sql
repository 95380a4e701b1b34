-- Queries shared by the SQLite and PostgreSQL ledgers (sqlc generates a package for each engine).

-- name: InsertPublication :execrows
INSERT INTO publications (post_id, channel, state, text, attempts, since_id, created_at, updated_at, media)
VALUES (sqlc.arg(post_id), sqlc.arg(channel), sqlc.arg(state), sqlc.arg(text), sqlc.arg(attempts), sqlc.arg(since_id), sqlc.arg(created_at), sqlc.arg(updated_at), sqlc.arg(media))
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

-- name: UpdatePublication :execrows
-- A compare-and-set: it changes the entry only while it is still in the state and attempt the caller read.
UPDATE publications
SET state = sqlc.arg(state), remote_id = sqlc.arg(remote_id), url = sqlc.arg(url), error = sqlc.arg(error),
    attempts = sqlc.arg(attempts), updated_at = sqlc.arg(updated_at)
WHERE post_id = sqlc.arg(post_id) AND state = sqlc.arg(from_state) AND attempts = sqlc.arg(from_attempts);

-- name: LatestRemoteID :many
SELECT remote_id FROM publications WHERE state = 'published' AND remote_id <> ''
ORDER BY updated_at DESC, post_id DESC LIMIT 1;

-- name: InsertAudit :exec
INSERT INTO publication_audit (id, post_id, actor, action, from_state, to_state, remote_id, note, at)
VALUES ((SELECT COALESCE(MAX(a.id), 0) + 1 FROM publication_audit a WHERE a.post_id = sqlc.arg(post_id)),
        sqlc.arg(post_id), sqlc.arg(actor), sqlc.arg(action), sqlc.arg(from_state), sqlc.arg(to_state), sqlc.arg(remote_id), sqlc.arg(note), sqlc.arg(at));

-- name: ListAudit :many
SELECT * FROM publication_audit WHERE post_id = sqlc.arg(post_id) ORDER BY id;
