-- Times are unix microseconds (UTC) in BIGINT columns, the same in SQLite and PostgreSQL, so that both
-- engines' generated code carries the same types. Zero means "not yet".

-- +goose Up
CREATE TABLE departments (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    department_id TEXT NOT NULL REFERENCES departments (id),
    label         TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_department ON api_keys (department_id);

CREATE TABLE approvers (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE posts (
    id               TEXT PRIMARY KEY,
    department_id    TEXT NOT NULL REFERENCES departments (id),
    text             TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    decision         TEXT NOT NULL DEFAULT '',
    decided_by       TEXT NOT NULL DEFAULT '',
    decided_at       BIGINT NOT NULL DEFAULT 0,
    decision_comment TEXT NOT NULL DEFAULT '',
    channel          TEXT NOT NULL DEFAULT '',
    remote_id        TEXT NOT NULL DEFAULT '',
    remote_url       TEXT NOT NULL DEFAULT '',
    published_at     BIGINT NOT NULL DEFAULT 0,
    failure_reason   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX posts_department_created ON posts (department_id, created_at);
CREATE INDEX posts_created ON posts (created_at);

CREATE TABLE approval_tokens (
    hash        TEXT PRIMARY KEY,
    post_id     TEXT NOT NULL REFERENCES posts (id),
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approval_tokens_post ON approval_tokens (post_id);

CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    post_id     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    origin      TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    comment     TEXT NOT NULL
);
CREATE INDEX audit_events_post ON audit_events (post_id, id);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    msg_id          TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- +goose Down
DROP TABLE outbox;
DROP TABLE audit_events;
DROP TABLE approval_tokens;
DROP TABLE posts;
DROP TABLE approvers;
DROP TABLE api_keys;
DROP TABLE departments;
