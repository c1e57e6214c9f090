-- +goose Up
-- feedbackd's schema on SQLite. Times are Unix microseconds (UTC); ids are
-- canonical UUID text. The derived tables (rollups, group_slots,
-- feedback_pairs) are kept by the store in each write's own transaction,
-- from the deltas server/store/rollup computes; docs/analytics.md says what
-- each holds and why.
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

-- Server-wide secrets, such as the key that seals feedback tokens; kept in
-- the database so every restart uses the same one.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Writes made under an Idempotency-Key, recorded in the write's own
-- transaction: a retry finds the ids it got the first time.
CREATE TABLE idempotency (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    message     TEXT NOT NULL,
    ids         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Portkey's special metadata keys have columns of their own: the value as
-- text (a string as it is, anything else as JSON; NULL when absent or
-- null); in m_strings a bit per key (1 _user, 2 _organisation, 4 _prompt,
-- 8 _environment) saying it is a JSON string, and in m_firsts the same bit
-- when the row is its trace's first feedback with that value. token_id is
-- set on feedback recorded through a feedback token, whose later
-- submissions update the same row.
CREATE TABLE feedback (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    trace_id       TEXT NOT NULL,
    value          INTEGER NOT NULL CHECK (value BETWEEN -10 AND 10),
    weight         REAL NOT NULL CHECK (weight BETWEEN 0 AND 1),
    metadata       TEXT NOT NULL CHECK (json_type(metadata) = 'object'),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    token_id       TEXT,
    m_user         TEXT,
    m_organisation TEXT,
    m_prompt       TEXT,
    m_environment  TEXT,
    m_strings      INTEGER NOT NULL DEFAULT 0,
    m_firsts       INTEGER NOT NULL DEFAULT 0
);
-- Listings walk (created_at, id) newest first; a trace's rows are found
-- for listings and for every write (first-feedback flags).
CREATE INDEX feedback_workspace_created_id ON feedback (workspace_id, created_at, id);
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id);
CREATE UNIQUE INDEX feedback_workspace_token ON feedback (workspace_id, token_id) WHERE token_id IS NOT NULL;
-- The _user index covers groups by _user too (m_firsts, value, weight):
-- they read no row.
CREATE INDEX feedback_workspace_m_user ON feedback (workspace_id, m_user, created_at, m_firsts, value, weight) WHERE m_user IS NOT NULL;
CREATE INDEX feedback_workspace_m_organisation ON feedback (workspace_id, m_organisation, created_at) WHERE m_organisation IS NOT NULL;
CREATE INDEX feedback_workspace_m_prompt ON feedback (workspace_id, m_prompt, created_at) WHERE m_prompt IS NOT NULL;
CREATE INDEX feedback_workspace_m_environment ON feedback (workspace_id, m_environment, created_at) WHERE m_environment IS NOT NULL;

-- Graph rollups: per dimension (dim '' for all feedback, or a key with
-- dim_value one of its string values), span and slot, the count and sum of
-- value x weight of each score. Keyed by span and slot first, here and in
-- group_slots: a write's rows of every dimension and value then share the
-- few pages of the current slots, however many values a key has, and a
-- read seeks once per slot.
CREATE TABLE rollups (
    workspace_id TEXT NOT NULL,
    dim          TEXT NOT NULL,
    span         INTEGER NOT NULL,
    slot         INTEGER NOT NULL,
    dim_value    TEXT NOT NULL,
    score        INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, span, slot, dim, dim_value, score)
) WITHOUT ROWID;

-- Group slots: per _organisation, _prompt or _environment value, span and
-- slot, the feedback count, their value x weight, and how many are their
-- trace's first feedback with the value.
CREATE TABLE group_slots (
    workspace_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    span         INTEGER NOT NULL,
    slot         INTEGER NOT NULL,
    value        TEXT NOT NULL,
    n            INTEGER NOT NULL,
    firsts       INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, span, slot, key, value)
) WITHOUT ROWID;

-- Pair entries: one per feedback and top-level string pair outside the
-- special keys, so that a query filtered by such a pair finds its rows
-- without parsing every row's metadata. Keyed by UTC day first, so that a
-- day's new entries land together at the end of the index.
CREATE TABLE feedback_pairs (
    workspace_id TEXT NOT NULL,
    day          INTEGER NOT NULL,
    key          TEXT NOT NULL,
    val          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    PRIMARY KEY (workspace_id, day, key, val, created_at, id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE feedback_pairs;
DROP TABLE group_slots;
DROP TABLE rollups;
DROP TABLE feedback;
DROP TABLE idempotency;
DROP TABLE secrets;
DROP TABLE api_keys;
DROP TABLE workspaces;
