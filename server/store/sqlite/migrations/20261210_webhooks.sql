-- +goose Up
-- Webhooks (store.Webhooks): a workspace's subscriptions, the events the
-- writes of its feedback record for them (the outbox), and the attempts
-- at delivering them.
--
-- A webhook walks its workspace's events in seq order (xid is 0 here: the
-- one writer commits in seq order), past its position (position_xid,
-- position_seq), from the events recorded after it was made (seq >
-- start_seq). Its next event's failed attempts and when the next is due,
-- and the lease of the dispatcher walking it, are kept on it.
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
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);

-- One row per change of a feedback, with the feedback as the change left
-- it (as it was, for a deletion). webhook_id is set on a redelivery: the
-- event again, for that webhook alone. AUTOINCREMENT: a seq is never
-- used twice, also after the newest events are trimmed.
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
CREATE INDEX webhook_events_walk ON webhook_events (workspace_id, xid, seq);
CREATE INDEX webhook_events_by_time ON webhook_events (at);
-- A webhook's redeliveries, removed with it.
CREATE INDEX webhook_events_redelivered ON webhook_events (webhook_id) WHERE webhook_id IS NOT NULL;

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
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, seq);
-- A webhook's failed attempts, newest first, however many were delivered.
CREATE INDEX webhook_attempts_failed ON webhook_attempts (webhook_id, seq) WHERE outcome <> 'delivered';
CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_events;
DROP TABLE webhooks;
