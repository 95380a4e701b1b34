-- Queries shared by the SQLite and PostgreSQL stores: sqlc generates a package for each engine from this
-- one file, so it sticks to SQL both engines speak.

-- name: CreateDepartment :exec
INSERT INTO departments (id, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(name), sqlc.arg(created_at));

-- name: GetDepartment :one
SELECT * FROM departments WHERE id = sqlc.arg(id);

-- name: ListDepartments :many
SELECT * FROM departments ORDER BY name;

-- name: CreateAPIKey :exec
INSERT INTO api_keys (id, department_id, label, prefix, hash, created_at)
VALUES (sqlc.arg(id), sqlc.arg(department_id), sqlc.arg(label), sqlc.arg(prefix), sqlc.arg(hash), sqlc.arg(created_at));

-- name: GetAPIKey :one
SELECT * FROM api_keys WHERE id = sqlc.arg(id);

-- name: GetAPIKeyByHash :one
SELECT k.id, k.department_id, k.label, k.prefix, k.hash, k.created_at, k.revoked_at, d.name AS department_name
FROM api_keys k JOIN departments d ON d.id = k.department_id
WHERE k.hash = sqlc.arg(hash);

-- name: ListAPIKeys :many
SELECT * FROM api_keys WHERE department_id = sqlc.arg(department_id) ORDER BY created_at, id;

-- name: RevokeAPIKey :exec
UPDATE api_keys SET revoked_at = sqlc.arg(revoked_at) WHERE id = sqlc.arg(id) AND revoked_at = 0;

-- A current approver's address updates their name; a removed one's is a new approver with a new id, so the
-- links sent to the removed one stay dead (the email is unique only among current approvers).
-- name: UpsertApprover :one
INSERT INTO approvers (id, email, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(email), sqlc.arg(name), sqlc.arg(created_at))
ON CONFLICT (email) WHERE removed_at = 0 DO UPDATE SET name = excluded.name
RETURNING *;

-- name: GetApprover :one
SELECT * FROM approvers WHERE id = sqlc.arg(id) AND removed_at = 0;

-- name: ListApprovers :many
SELECT * FROM approvers WHERE removed_at = 0 ORDER BY email;

-- name: RemoveApprover :execrows
UPDATE approvers SET removed_at = sqlc.arg(removed_at) WHERE id = sqlc.arg(id) AND removed_at = 0;

-- name: InsertPost :execrows
INSERT INTO posts (id, department_id, text, requested_by, idempotency_key, status, created_at, updated_at, failure_reason, expires_at,
                   mode, required, waiting_for, media)
VALUES (sqlc.arg(id), sqlc.arg(department_id), sqlc.arg(text), sqlc.arg(requested_by), sqlc.arg(idempotency_key),
        sqlc.arg(status), sqlc.arg(created_at), sqlc.arg(updated_at), sqlc.arg(failure_reason), sqlc.arg(expires_at),
        sqlc.arg(mode), sqlc.arg(required), sqlc.arg(waiting_for), sqlc.arg(media))
ON CONFLICT (id) DO NOTHING;

-- name: GetPost :one
SELECT * FROM posts WHERE id = sqlc.arg(id);

-- ListPosts serves every filter; the two below serve the common ones with a query the planner answers
-- from an index in the listing's order (a parameter that may be empty hides the index from it).
-- name: ListPosts :many
SELECT * FROM posts
WHERE (CAST(sqlc.arg(department_id) AS TEXT) = '' OR department_id = sqlc.arg(department_id))
  AND (CAST(sqlc.arg(status) AS TEXT) = '' OR status = sqlc.arg(status))
  AND (CAST(sqlc.arg(waiting) AS BIGINT) = 0 OR (status = 'pending' AND waiting_for <> ''))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListDepartmentPostsByStatus :many
SELECT * FROM posts
WHERE department_id = sqlc.arg(department_id) AND status = sqlc.arg(status)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListDepartmentPosts :many
SELECT * FROM posts
WHERE department_id = sqlc.arg(department_id)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: DecidePost :execrows
UPDATE posts
SET status = sqlc.arg(status), decision = sqlc.arg(decision), decided_by = sqlc.arg(decided_by),
    decided_at = sqlc.arg(decided_at), decision_comment = sqlc.arg(decision_comment), updated_at = sqlc.arg(decided_at),
    final_text = sqlc.arg(final_text)
WHERE id = sqlc.arg(id) AND status = 'pending';

-- A decision per approver and post: the primary key makes a second answer by the same approver (through
-- another link, say a re-sent one) a no-op the store reports.
-- name: InsertDecision :execrows
INSERT INTO decisions (post_id, approver_id, approver_email, outcome, comment, edited_text, decided_at)
VALUES (sqlc.arg(post_id), sqlc.arg(approver_id), sqlc.arg(approver_email), sqlc.arg(outcome), sqlc.arg(comment),
        sqlc.arg(edited_text), sqlc.arg(decided_at))
ON CONFLICT (post_id, approver_id) DO NOTHING;

-- name: ListDecisions :many
SELECT * FROM decisions WHERE post_id = sqlc.arg(post_id) ORDER BY decided_at, approver_email;

-- name: CountPostsWaiting :one
SELECT COUNT(*) FROM posts WHERE status = 'pending' AND waiting_for <> '';

-- name: WaitingPosts :many
SELECT * FROM posts WHERE status = 'pending' AND waiting_for <> '' ORDER BY created_at, id LIMIT sqlc.arg(max_rows);

-- AskPost records that a waiting post's approvers are now asked, under the policy of that moment.
-- name: AskPost :execrows
UPDATE posts SET waiting_for = '', mode = sqlc.arg(mode), required = sqlc.arg(required), updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id) AND status = 'pending' AND waiting_for <> '';

-- name: GetPolicy :one
SELECT * FROM policies WHERE department_id = sqlc.arg(department_id);

-- name: UpsertPolicy :exec
INSERT INTO policies (department_id, mode, quorum, ttl_micros, allow_self_approval, all_approvers, teams_webhook_url, updated_at)
VALUES (sqlc.arg(department_id), sqlc.arg(mode), sqlc.arg(quorum), sqlc.arg(ttl_micros), sqlc.arg(allow_self_approval),
        sqlc.arg(all_approvers), sqlc.arg(teams_webhook_url), sqlc.arg(updated_at))
ON CONFLICT (department_id) DO UPDATE SET mode = excluded.mode, quorum = excluded.quorum, ttl_micros = excluded.ttl_micros,
    allow_self_approval = excluded.allow_self_approval, all_approvers = excluded.all_approvers,
    teams_webhook_url = excluded.teams_webhook_url, updated_at = excluded.updated_at;

-- name: DeletePolicyApprovers :exec
DELETE FROM policy_approvers WHERE department_id = sqlc.arg(department_id);

-- name: InsertPolicyApprover :exec
INSERT INTO policy_approvers (department_id, approver_id) VALUES (sqlc.arg(department_id), sqlc.arg(approver_id));

-- The policy's approvers who are still current.
-- name: ListPolicyApprovers :many
SELECT a.* FROM approvers a JOIN policy_approvers pa ON pa.approver_id = a.id
WHERE pa.department_id = sqlc.arg(department_id) AND a.removed_at = 0
ORDER BY a.email;

-- name: OverduePosts :many
SELECT id FROM posts
WHERE status = 'pending' AND expires_at > 0 AND expires_at <= sqlc.arg(now)
ORDER BY expires_at, id
LIMIT sqlc.arg(max_rows);

-- ClosePost ends a pending post without a decision (expired, cancelled). The condition on the status makes
-- it a compare-and-set: of replicas sweeping at once, or a cancel racing a decision, exactly one wins.
-- name: ClosePost :execrows
UPDATE posts SET status = sqlc.arg(status), updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id) AND status = 'pending';

-- TouchPendingPost locks a pending post's row for the rest of the transaction (and says whether it is
-- still pending), so that what the transaction does next cannot race a decision or a cancellation.
-- name: TouchPendingPost :execrows
UPDATE posts SET updated_at = sqlc.arg(updated_at) WHERE id = sqlc.arg(id) AND status = 'pending';

-- name: RecordOutcome :execrows
UPDATE posts
SET status = sqlc.arg(status), channel = sqlc.arg(channel), remote_id = sqlc.arg(remote_id),
    remote_url = sqlc.arg(remote_url), published_at = sqlc.arg(published_at),
    failure_reason = sqlc.arg(failure_reason), updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id)
  -- An unknown or failed outcome may still change when ops resolve or retry the publication (unknown to
  -- published, failed to published after a retry), but a repeated outcome changes nothing, and published
  -- is final. (No non-ASCII in this file: sqlc's rewriting counts bytes as characters.)
  AND (status = 'approved' OR (status IN ('unknown', 'failed') AND status <> sqlc.arg(status)));

-- name: CreateToken :exec
INSERT INTO approval_tokens (hash, post_id, approver_id, created_at, expires_at)
VALUES (sqlc.arg(hash), sqlc.arg(post_id), sqlc.arg(approver_id), sqlc.arg(created_at), sqlc.arg(expires_at));

-- name: GetToken :one
SELECT * FROM approval_tokens WHERE hash = sqlc.arg(hash);

-- name: UseToken :execrows
UPDATE approval_tokens SET used_at = sqlc.arg(used_at) WHERE hash = sqlc.arg(hash) AND used_at = 0 AND replaced_at = 0;

-- name: ReplacePostTokens :exec
UPDATE approval_tokens SET replaced_at = sqlc.arg(replaced_at) WHERE post_id = sqlc.arg(post_id) AND used_at = 0 AND replaced_at = 0;

-- name: InsertAudit :exec
INSERT INTO audit_events (post_id, at, actor, origin, action, from_status, to_status, comment, api_key_id)
VALUES (sqlc.arg(post_id), sqlc.arg(at), sqlc.arg(actor), sqlc.arg(origin), sqlc.arg(action),
        sqlc.arg(from_status), sqlc.arg(to_status), sqlc.arg(comment), sqlc.arg(api_key_id));

-- name: ListAudit :many
SELECT * FROM audit_events WHERE post_id = sqlc.arg(post_id) ORDER BY id;

-- name: InsertOutbox :exec
INSERT INTO outbox (kind, post_id, approver_id, created_at, next_attempt_at)
VALUES (sqlc.arg(kind), sqlc.arg(post_id), sqlc.arg(approver_id), sqlc.arg(created_at), sqlc.arg(next_attempt_at));

-- name: DueOutbox :many
SELECT * FROM outbox WHERE next_attempt_at <= sqlc.arg(now) ORDER BY next_attempt_at, id LIMIT sqlc.arg(max_rows);

-- name: DeleteOutbox :exec
DELETE FROM outbox WHERE id = sqlc.arg(id);

-- A deferred item gives up its lease: it is due again at next_attempt_at, for any replica.
-- name: DeferOutbox :exec
UPDATE outbox SET attempts = attempts + 1, lease_until = 0, next_attempt_at = sqlc.arg(next_attempt_at), last_error = sqlc.arg(last_error)
WHERE id = sqlc.arg(id);

-- name: GetDepartmentLimits :one
SELECT posts_per_minute, max_undecided FROM department_limits WHERE department_id = sqlc.arg(department_id);

-- name: SetDepartmentLimits :exec
INSERT INTO department_limits (department_id, posts_per_minute, max_undecided)
VALUES (sqlc.arg(department_id), sqlc.arg(posts_per_minute), sqlc.arg(max_undecided))
ON CONFLICT (department_id) DO UPDATE SET posts_per_minute = excluded.posts_per_minute, max_undecided = excluded.max_undecided;

-- name: CountUndecided :one
SELECT count(*) FROM posts WHERE department_id = sqlc.arg(department_id) AND status = 'pending';

-- name: CreateSubscription :exec
INSERT INTO webhook_subscriptions (id, department_id, url, events, secret, created_at)
VALUES (sqlc.arg(id), sqlc.arg(department_id), sqlc.arg(url), sqlc.arg(events), sqlc.arg(secret), sqlc.arg(created_at));

-- An empty department_id lists every department's (ops).
-- name: ListSubscriptions :many
SELECT * FROM webhook_subscriptions
WHERE CAST(sqlc.arg(department_id) AS TEXT) = '' OR department_id = sqlc.arg(department_id)
ORDER BY created_at, id;

-- name: GetSubscription :one
SELECT * FROM webhook_subscriptions WHERE id = sqlc.arg(id);

-- name: CountSubscriptions :one
SELECT count(*) FROM webhook_subscriptions WHERE department_id = sqlc.arg(department_id);

-- An empty department_id deletes in any department (ops); otherwise only the department's own.
-- name: DeleteSubscription :execrows
DELETE FROM webhook_subscriptions
WHERE id = sqlc.arg(id) AND (CAST(sqlc.arg(department_id) AS TEXT) = '' OR department_id = sqlc.arg(department_id));

-- name: DeleteSubscriptionDeliveries :exec
DELETE FROM webhook_deliveries WHERE subscription_id = sqlc.arg(subscription_id);

-- FanOutWebhook queues one delivery of an event to every subscriber of the department that wants it.
-- Repeating it for the same outbox item adds nothing (the unique key), so a fan-out cut short by a crash
-- is simply done again.
-- name: FanOutWebhook :execrows
INSERT INTO webhook_deliveries (subscription_id, outbox_id, post_id, event, body, created_at, next_attempt_at)
SELECT s.id, sqlc.arg(outbox_id), sqlc.arg(post_id), sqlc.arg(event), sqlc.arg(body), sqlc.arg(created_at), sqlc.arg(created_at)
FROM webhook_subscriptions s
WHERE s.department_id = sqlc.arg(department_id) AND s.events LIKE sqlc.arg(event_pattern)
ON CONFLICT (subscription_id, outbox_id) DO NOTHING;

-- name: DeleteWebhookDelivery :exec
DELETE FROM webhook_deliveries WHERE id = sqlc.arg(id);

-- A failed attempt gives up the lease: the delivery is due again at next_attempt_at, for any replica.
-- name: DeferWebhookDelivery :exec
UPDATE webhook_deliveries
SET attempts = attempts + 1, lease_until = 0, next_attempt_at = sqlc.arg(next_attempt_at), last_error = sqlc.arg(last_error)
WHERE id = sqlc.arg(id);

-- name: MarkSubscriptionFailing :exec
UPDATE webhook_subscriptions
SET failing_since = CASE WHEN failing_since = 0 THEN sqlc.arg(failing_since) ELSE failing_since END, last_error = sqlc.arg(last_error)
WHERE id = sqlc.arg(id);

-- name: ClearSubscriptionFailing :exec
UPDATE webhook_subscriptions SET failing_since = 0, last_error = '' WHERE id = sqlc.arg(id) AND failing_since <> 0;

-- name: CountWebhookDeliveries :one
SELECT count(*) FROM webhook_deliveries;
