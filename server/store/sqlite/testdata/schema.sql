-- The schema the migrations give (TestSchemaIsTheCommittedOne checks it).

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
    m_first_bits       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE "group_rollups" (
    workspace_id TEXT NOT NULL,
    meta_key          TEXT NOT NULL,
    grain         INTEGER NOT NULL,
    slot         INTEGER NOT NULL,
    meta_value        TEXT NOT NULL,
    n            INTEGER NOT NULL,
    traces       INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, grain, slot, meta_key, meta_value)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    message     TEXT NOT NULL,
    ids         TEXT NOT NULL,
    created_at  INTEGER NOT NULL, replaced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE TABLE "metadata_entries" (
    workspace_id TEXT NOT NULL,
    day          INTEGER NOT NULL,
    meta_key          TEXT NOT NULL,
    meta_value          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    PRIMARY KEY (workspace_id, day, meta_key, meta_value, created_at, id)
) WITHOUT ROWID;

CREATE TABLE rollups (
    workspace_id TEXT NOT NULL,
    meta_key          TEXT NOT NULL,
    grain         INTEGER NOT NULL,
    slot         INTEGER NOT NULL,
    meta_value    TEXT NOT NULL,
    value        INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, grain, slot, meta_key, meta_value, value)
) WITHOUT ROWID;

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    secret      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE "trace_meta_values" (
    workspace_id TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    meta_key          TEXT NOT NULL,
    meta_value        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    PRIMARY KEY (workspace_id, trace_id, meta_key, meta_value, created_at, id)
) WITHOUT ROWID;

CREATE TABLE webhook_attempts (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,
    kind            INTEGER NOT NULL,
    n               INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    status          INTEGER NOT NULL,
    latency_us      INTEGER NOT NULL,
    error           TEXT NOT NULL,
    next_attempt_at INTEGER
);

CREATE TABLE webhook_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    xid          INTEGER NOT NULL DEFAULT 0,
    id           TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    webhook_id   TEXT,
    kind         INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    feedback_id  TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    value        INTEGER NOT NULL,
    weight       REAL NOT NULL,
    metadata     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id),
    url             TEXT NOT NULL,
    kinds           TEXT NOT NULL,
    filter          TEXT NOT NULL,
    description     TEXT NOT NULL,
    secret          BLOB NOT NULL,
    previous_secret BLOB,
    previous_until  INTEGER,
    state           TEXT NOT NULL,
    state_reason    TEXT NOT NULL,
    start_seq       INTEGER NOT NULL,
    position_xid    INTEGER NOT NULL DEFAULT 0,
    position_seq    INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease           TEXT NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE INDEX feedback_workspace_created_id ON feedback (workspace_id, created_at, id);

CREATE INDEX feedback_workspace_m_environment ON feedback (workspace_id, m_environment, created_at) WHERE m_environment IS NOT NULL;

CREATE INDEX feedback_workspace_m_organisation ON feedback (workspace_id, m_organisation, created_at) WHERE m_organisation IS NOT NULL;

CREATE INDEX feedback_workspace_m_prompt ON feedback (workspace_id, m_prompt, created_at) WHERE m_prompt IS NOT NULL;

CREATE INDEX feedback_workspace_m_user ON feedback (workspace_id, m_user, created_at, m_first_bits, value, weight) WHERE m_user IS NOT NULL;

CREATE UNIQUE INDEX feedback_workspace_token ON feedback (workspace_id, token_id) WHERE token_id IS NOT NULL;

CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id, created_at, id);

CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);

CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, seq);

CREATE INDEX webhook_attempts_failed ON webhook_attempts (webhook_id, seq) WHERE outcome <> 'delivered';

CREATE INDEX webhook_events_by_time ON webhook_events (at);

CREATE INDEX webhook_events_redelivered ON webhook_events (webhook_id) WHERE webhook_id IS NOT NULL;

CREATE INDEX webhook_events_walk ON webhook_events (workspace_id, xid, seq);

CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);
