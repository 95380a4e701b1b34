-- The approved pictures of a publication: a JSON array of {"name", "sha256" (hex), "content_type",
-- "size"}, '' for none. Kept with the entry so that a redelivery, a reconciliation and an ops retry post
-- the same pictures the approval sealed.

-- +goose Up
ALTER TABLE publications ADD COLUMN media TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE publications DROP COLUMN media;
