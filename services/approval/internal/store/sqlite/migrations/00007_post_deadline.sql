-- A post has a deadline: undecided at expires_at, the sweep makes it expired. Zero for posts stored before
-- this migration, which the sweep leaves alone (their links still expire on their own). A link that was
-- replaced by a re-sent one (AdminService.ResendApprovals) records when, and stops working.

-- +goose Up
ALTER TABLE posts ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX posts_status_deadline ON posts (status, expires_at);
ALTER TABLE approval_tokens ADD COLUMN replaced_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE approval_tokens DROP COLUMN replaced_at;
DROP INDEX posts_status_deadline;
ALTER TABLE posts DROP COLUMN expires_at;
