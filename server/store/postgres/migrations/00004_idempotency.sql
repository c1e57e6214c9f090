-- +goose Up
-- Writes made under an Idempotency-Key, recorded in the write's own
-- transaction: a retry finds the ids it got the first time.
CREATE TABLE idempotency (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,
    message     text NOT NULL,
    ids         jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- +goose Down
DROP TABLE idempotency;
