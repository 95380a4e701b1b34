-- Queries only PostgreSQL speaks; sqlc generates them beside the shared ones in query.sql.

-- ClaimOutbox leases due items to the caller. SKIP LOCKED lets replicas claim at the same time without
-- waiting on each other or taking the same row: a row another transaction is claiming is skipped, and the
-- lease keeps it from being claimed again once that transaction commits.
-- name: ClaimOutbox :many
UPDATE outbox SET lease_until = sqlc.arg(lease_until)
WHERE id IN (
    SELECT o.id FROM outbox o
    WHERE o.next_attempt_at <= sqlc.arg(now) AND o.lease_until <= sqlc.arg(now)
    ORDER BY o.next_attempt_at, o.id
    LIMIT sqlc.arg(max_rows)
    FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- ClaimWebhookDeliveries leases due webhook deliveries the way ClaimOutbox leases outbox items.
-- name: ClaimWebhookDeliveries :many
UPDATE webhook_deliveries SET lease_until = sqlc.arg(lease_until)
WHERE id IN (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.next_attempt_at <= sqlc.arg(now) AND d.lease_until <= sqlc.arg(now)
    ORDER BY d.next_attempt_at, d.id
    LIMIT sqlc.arg(max_rows)
    FOR UPDATE SKIP LOCKED
)
RETURNING *;
