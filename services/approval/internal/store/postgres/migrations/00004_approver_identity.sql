-- A removed approver stays removed: adding the same address again creates a new approver with a new id,
-- so the links sent to the removed one (bound to its id) never work again. The email is therefore unique
-- only among current approvers. (00003 is left to another change.)

-- +goose Up
ALTER TABLE approvers DROP CONSTRAINT approvers_email_key;
CREATE UNIQUE INDEX approvers_current_email ON approvers (email) WHERE removed_at = 0;

-- +goose Down
-- Fails while an address has been removed and added again: two rows would share the email.
DROP INDEX approvers_current_email;
ALTER TABLE approvers ADD CONSTRAINT approvers_email_key UNIQUE (email);
