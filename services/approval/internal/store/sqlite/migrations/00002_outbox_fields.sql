-- The outbox names the post and the approver in columns of their own instead of keeping their ids in
-- subject and msg_id, and an announcement of a decision no longer carries an encoded event: the events
-- adapter builds the event from the post when the item is delivered. Rows already queued are converted.

-- +goose Up
ALTER TABLE outbox ADD COLUMN post_id TEXT NOT NULL DEFAULT '';
-- Empty except for approval emails.
ALTER TABLE outbox ADD COLUMN approver_id TEXT NOT NULL DEFAULT '';
UPDATE outbox SET post_id = msg_id, approver_id = subject WHERE kind = 'approval_email';
-- An event's msg_id was eventbus.MsgID(post id, kind): "<post id>:approved".
UPDATE outbox
SET kind = CASE subject
        WHEN 'herald.posts.approved' THEN 'post_approved'
        WHEN 'herald.posts.rejected' THEN 'post_rejected'
        ELSE kind
    END,
    post_id = CASE WHEN instr(msg_id, ':') > 0 THEN substr(msg_id, 1, instr(msg_id, ':') - 1) ELSE msg_id END
WHERE kind = 'event';
ALTER TABLE outbox DROP COLUMN subject;
ALTER TABLE outbox DROP COLUMN msg_id;
ALTER TABLE outbox DROP COLUMN payload;

-- +goose Down
-- The old announcement rows carried the encoded event, which SQL cannot rebuild, so going back is refused
-- while one is queued (let the outbox deliver it first): the CHECK fails unless the count is zero.
CREATE TEMP TABLE outbox_down_guard (queued_announcements INTEGER CHECK (queued_announcements = 0));
INSERT INTO outbox_down_guard SELECT count(*) FROM outbox WHERE kind <> 'approval_email';
DROP TABLE outbox_down_guard;
ALTER TABLE outbox ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN msg_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN payload BLOB NOT NULL DEFAULT x'';
UPDATE outbox SET subject = approver_id, msg_id = post_id;
ALTER TABLE outbox DROP COLUMN post_id;
ALTER TABLE outbox DROP COLUMN approver_id;
