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
    post_id = split_part(msg_id, ':', 1)
WHERE kind = 'event';
ALTER TABLE outbox DROP COLUMN subject;
ALTER TABLE outbox DROP COLUMN msg_id;
ALTER TABLE outbox DROP COLUMN payload;

-- +goose Down
-- The old announcement rows carried the encoded event, which SQL cannot rebuild, so going back is refused
-- while one is queued (let the outbox deliver it first).
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM outbox WHERE kind <> 'approval_email') THEN
        RAISE EXCEPTION 'outbox holds announcements of decisions; deliver them before migrating down';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE outbox ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN msg_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN payload BYTEA NOT NULL DEFAULT '\x';
UPDATE outbox SET subject = approver_id, msg_id = post_id;
ALTER TABLE outbox DROP COLUMN post_id;
ALTER TABLE outbox DROP COLUMN approver_id;
