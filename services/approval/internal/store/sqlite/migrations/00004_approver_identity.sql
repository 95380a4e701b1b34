-- A removed approver stays removed: adding the same address again creates a new approver with a new id,
-- so the links sent to the removed one (bound to its id) never work again. The email is therefore unique
-- only among current approvers. (00003 is left to another change.)
--
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt the way SQLite's documentation
-- prescribes: foreign keys off (approval_tokens refers to approvers, and dropping the old table would
-- otherwise delete through that reference or fail), copy, drop, rename, check, all in one transaction.
-- PRAGMA foreign_keys is a no-op inside a transaction, hence NO TRANSACTION and an explicit one.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE approvers_new (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT NOT NULL DEFAULT 0
);
INSERT INTO approvers_new (id, email, name, created_at, removed_at)
SELECT id, email, name, created_at, removed_at FROM approvers;
DROP TABLE approvers;
ALTER TABLE approvers_new RENAME TO approvers;
CREATE UNIQUE INDEX approvers_current_email ON approvers (email) WHERE removed_at = 0;
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Fails while an address has been removed and added again: two rows would share the email.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE approvers_old (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT NOT NULL DEFAULT 0
);
INSERT INTO approvers_old (id, email, name, created_at, removed_at)
SELECT id, email, name, created_at, removed_at FROM approvers;
DROP TABLE approvers;
ALTER TABLE approvers_old RENAME TO approvers;
COMMIT;
PRAGMA foreign_keys = ON;
