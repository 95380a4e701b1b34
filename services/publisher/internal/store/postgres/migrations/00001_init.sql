-- Times are unix microseconds (UTC) in BIGINT columns, as in the approval service's schema.

-- +goose Up
CREATE TABLE publications (
    post_id    TEXT PRIMARY KEY,
    channel    TEXT NOT NULL,
    state      TEXT NOT NULL,
    text       TEXT NOT NULL,
    remote_id  TEXT NOT NULL DEFAULT '',
    url        TEXT NOT NULL DEFAULT '',
    error      TEXT NOT NULL DEFAULT '',
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX publications_created ON publications (created_at);

-- +goose Down
DROP TABLE publications;
