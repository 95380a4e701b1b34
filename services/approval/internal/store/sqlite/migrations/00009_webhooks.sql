-- Webhook subscriptions (the connector's triggers) and the deliveries waiting to go out to them.
--
-- webhook_subscriptions.secret is the whsec_ signing secret. It cannot be kept as a hash like API keys:
-- every delivery is signed with it, so it stays here, in the one database only the approval service
-- reads, and no RPC returns it after creation. events lists the wanted events between commas
-- (",published,rejected,") so that one LIKE finds the subscribers of an event. failing_since is set
-- when a delivery used up its attempts (ops see it) and cleared by the next delivery that succeeds.
--
-- webhook_deliveries are written by the fan-out of an outbox item (one per state change, written in the
-- same transaction as the change), one per subscriber; (subscription_id, outbox_id) is unique so that
-- a fan-out repeated after a crash adds nothing. They are claimed with a lease like the outbox, and
-- deleted once delivered, given up, or unsubscribed.

-- +goose Up
CREATE TABLE webhook_subscriptions (
    id            TEXT PRIMARY KEY,
    department_id TEXT NOT NULL REFERENCES departments (id),
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,
    secret        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    failing_since BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_subscriptions_department ON webhook_subscriptions (department_id, created_at);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL,
    outbox_id       BIGINT NOT NULL,
    post_id         TEXT NOT NULL,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    UNIQUE (subscription_id, outbox_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
