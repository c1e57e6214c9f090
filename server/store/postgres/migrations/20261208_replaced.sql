-- +goose Up
-- A write under an idempotency key that replaced feedback by its
-- client-chosen ids (PutFeedback) replays how many it replaced.
ALTER TABLE idempotency ADD COLUMN replaced integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE idempotency DROP COLUMN replaced;
