-- Reconciliation and ops actions (issue 10).
-- since_id is the newest post id the ledger knew of when the first attempt began: reading the account's
-- timeline from it finds the attempt's post without reading further back. publication_audit records every
-- ops action on a publication (retry, resolve): who, when, what, and their note.

-- +goose Up
ALTER TABLE publications ADD COLUMN since_id TEXT NOT NULL DEFAULT '';
CREATE INDEX publications_state_updated ON publications (state, updated_at);
CREATE TABLE publication_audit (
    id         BIGINT NOT NULL,
    post_id    TEXT NOT NULL REFERENCES publications (post_id),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    remote_id  TEXT NOT NULL DEFAULT '',
    note       TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL,
    PRIMARY KEY (post_id, id)
);

-- +goose Down
DROP TABLE publication_audit;
DROP INDEX publications_state_updated;
ALTER TABLE publications DROP COLUMN since_id;
