-- Outbox items are claimed before they are worked on, so that several replicas of the approval service
-- can share one database and still mail each approver once: a claim sets lease_until, and nobody else
-- takes the item until that time has passed (a replica that died mid-delivery gives it back that way).
-- (00005 belongs to another change.)

-- +goose Up
ALTER TABLE outbox ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE outbox DROP COLUMN lease_until;
