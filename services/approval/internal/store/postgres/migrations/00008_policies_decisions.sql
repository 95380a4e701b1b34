-- Per-department approval policies, every approver's decision, and what a post waits for.
--
-- policies: a department without a row has the default policy (every current approver, mode first,
-- HERALD_APPROVAL_TTL, no self-approval). all_approvers = 1 asks every current approver; otherwise
-- policy_approvers lists them (a removed approver drops out, since only current ones are asked).
-- posts.mode and posts.required snapshot the policy when the approvers are asked, so that changing a
-- policy does not move the goalposts of posts in flight: first needs 1, all needs every approver asked
-- (required), quorum:N needs N (required). posts.waiting_for says what a pending post waits for when it
-- could not be mailed (no approver); posts.final_text is the text an approver edited when approving.

-- +goose Up
CREATE TABLE policies (
    department_id       TEXT PRIMARY KEY REFERENCES departments (id),
    mode                TEXT NOT NULL,
    quorum              BIGINT NOT NULL DEFAULT 0,
    ttl_micros          BIGINT NOT NULL DEFAULT 0,
    allow_self_approval BIGINT NOT NULL DEFAULT 0,
    all_approvers       BIGINT NOT NULL DEFAULT 1,
    teams_webhook_url   TEXT NOT NULL DEFAULT '',
    updated_at          BIGINT NOT NULL
);

CREATE TABLE policy_approvers (
    department_id TEXT NOT NULL REFERENCES departments (id),
    approver_id   TEXT NOT NULL REFERENCES approvers (id),
    PRIMARY KEY (department_id, approver_id)
);

CREATE TABLE decisions (
    post_id        TEXT NOT NULL REFERENCES posts (id),
    approver_id    TEXT NOT NULL,
    approver_email TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    comment        TEXT NOT NULL,
    edited_text    TEXT NOT NULL DEFAULT '',
    decided_at     BIGINT NOT NULL,
    PRIMARY KEY (post_id, approver_id)
);

ALTER TABLE posts ADD COLUMN mode TEXT NOT NULL DEFAULT 'first';
ALTER TABLE posts ADD COLUMN required BIGINT NOT NULL DEFAULT 1;
ALTER TABLE posts ADD COLUMN waiting_for TEXT NOT NULL DEFAULT '';
ALTER TABLE posts ADD COLUMN final_text TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE posts DROP COLUMN final_text;
ALTER TABLE posts DROP COLUMN waiting_for;
ALTER TABLE posts DROP COLUMN required;
ALTER TABLE posts DROP COLUMN mode;
DROP TABLE decisions;
DROP TABLE policy_approvers;
DROP TABLE policies;
