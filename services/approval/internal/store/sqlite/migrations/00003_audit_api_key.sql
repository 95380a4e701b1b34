-- A post's "requested" row names the API key that authenticated the request, so that the audit trail
-- tells which of a department's keys (and so which flow) asked. Rows written before stay empty.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN api_key_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_events DROP COLUMN api_key_id;
