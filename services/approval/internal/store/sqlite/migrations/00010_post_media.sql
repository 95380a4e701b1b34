-- The pictures of a post: a JSON array of {"name", "sha256" (hex), "content_type", "size"}, in the order
-- they are posted, '' for none. The bytes stay in the JetStream media bucket; this is what the approval
-- seal covers (the hashes) and what the retention sweep reads to know whose pictures an object holds.
-- One column rather than a table: the list is written once with the post, never queried by its parts.

-- +goose Up
ALTER TABLE posts ADD COLUMN media TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE posts DROP COLUMN media;
