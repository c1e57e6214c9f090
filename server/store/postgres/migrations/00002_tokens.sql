-- +goose Up
-- Feedback recorded through a browser-safe token carries the token's id, so
-- a second submission with the same token updates the same row.
ALTER TABLE feedback ADD COLUMN token_id text;
CREATE UNIQUE INDEX feedback_workspace_token ON feedback (workspace_id, token_id) WHERE token_id IS NOT NULL;

-- Server-wide secrets, such as the key that seals feedback tokens; kept in
-- the database so every replica and every restart uses the same one.
CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE secrets;
DROP INDEX feedback_workspace_token;
ALTER TABLE feedback DROP COLUMN token_id;
