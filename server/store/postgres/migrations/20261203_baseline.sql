-- +goose Up
-- feedbackd's schema on PostgreSQL, the same as the SQLite store's in
-- PostgreSQL's types (timestamptz, uuid, jsonb). The derived tables
-- (rollups, group_slots) are kept by the store in each write's own
-- transaction, from the deltas server/store/rollup computes; a GIN index
-- on metadata finds the rows of any metadata pair, where SQLite keeps pair
-- entries. docs/analytics.md says what each holds and why.
CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    name         text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Server-wide secrets, such as the key that seals feedback tokens; kept in
-- the database so every replica and every restart uses the same one.
CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL
);

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

-- The special keys' columns, m_strings and m_firsts as in the SQLite store:
-- the value as text (a string as it is, anything else as JSON), a bit per
-- key (1 _user, 2 _organisation, 4 _prompt, 8 _environment) for a string
-- value, and the same bit when the row is its trace's first feedback with
-- that value. The store fills them, so both stores render values alike.
CREATE TABLE feedback (
    id             uuid PRIMARY KEY,
    workspace_id   uuid NOT NULL REFERENCES workspaces (id),
    trace_id       text NOT NULL,
    value          smallint NOT NULL CHECK (value BETWEEN -10 AND 10),
    weight         double precision NOT NULL CHECK (weight BETWEEN 0 AND 1),
    metadata       jsonb NOT NULL CHECK (jsonb_typeof(metadata) = 'object'),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    token_id       text,
    m_user         text,
    m_organisation text,
    m_prompt       text,
    m_environment  text,
    m_strings      smallint NOT NULL DEFAULT 0,
    m_firsts       smallint NOT NULL DEFAULT 0
);
CREATE INDEX feedback_workspace_created_id ON feedback (workspace_id, created_at, id);
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id);
CREATE UNIQUE INDEX feedback_workspace_token ON feedback (workspace_id, token_id) WHERE token_id IS NOT NULL;
CREATE INDEX feedback_workspace_m_user ON feedback (workspace_id, m_user, created_at) WHERE m_user IS NOT NULL;
CREATE INDEX feedback_workspace_m_organisation ON feedback (workspace_id, m_organisation, created_at) WHERE m_organisation IS NOT NULL;
CREATE INDEX feedback_workspace_m_prompt ON feedback (workspace_id, m_prompt, created_at) WHERE m_prompt IS NOT NULL;
CREATE INDEX feedback_workspace_m_environment ON feedback (workspace_id, m_environment, created_at) WHERE m_environment IS NOT NULL;
CREATE INDEX feedback_metadata ON feedback USING gin (metadata jsonb_path_ops);

CREATE TABLE rollups (
    workspace_id uuid NOT NULL,
    dim          text NOT NULL,
    span         integer NOT NULL,
    slot         bigint NOT NULL,
    dim_value    text NOT NULL,
    score        smallint NOT NULL,
    n            bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    PRIMARY KEY (workspace_id, span, slot, dim, dim_value, score)
);

CREATE TABLE group_slots (
    workspace_id uuid NOT NULL,
    key          text NOT NULL,
    span         integer NOT NULL,
    slot         bigint NOT NULL,
    value        text NOT NULL,
    n            bigint NOT NULL,
    firsts       bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    PRIMARY KEY (workspace_id, span, slot, key, value)
);

-- +goose Down
DROP TABLE group_slots;
DROP TABLE rollups;
DROP TABLE feedback;
DROP TABLE idempotency;
DROP TABLE secrets;
DROP TABLE api_keys;
DROP TABLE workspaces;
