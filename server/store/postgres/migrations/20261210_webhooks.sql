-- +goose Up
-- Webhooks (store.Webhooks), as in the SQLite store: a workspace's
-- subscriptions, the events the writes of its feedback record for them
-- (the outbox), and the attempts at delivering them.
--
-- Sequence values are taken before commit, so events do not become
-- visible in seq order. An event's xid is its transaction's id, and a
-- webhook walks its events in (xid, seq) order, taking only events whose
-- xid is below the oldest transaction still running
-- (pg_snapshot_xmin): no event can later appear before its position.
CREATE TABLE webhooks (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL REFERENCES workspaces (id),
    url             text NOT NULL,
    kinds           text NOT NULL,
    filter          jsonb NOT NULL,
    description     text NOT NULL,
    secret          bytea NOT NULL,
    previous_secret bytea,
    previous_until  timestamptz,
    state           text NOT NULL,
    state_reason    text NOT NULL,
    start_seq       bigint NOT NULL,
    position_xid    bigint NOT NULL DEFAULT 0,
    position_seq    bigint NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    lease           text NOT NULL DEFAULT '',
    lease_until     timestamptz NOT NULL DEFAULT '-infinity',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);

CREATE TABLE webhook_events (
    seq          bigserial PRIMARY KEY,
    xid          bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id           uuid NOT NULL,
    workspace_id uuid NOT NULL,
    webhook_id   uuid,
    kind         smallint NOT NULL,
    at           timestamptz NOT NULL,
    feedback_id  uuid NOT NULL,
    trace_id     text NOT NULL,
    value        smallint NOT NULL,
    weight       double precision NOT NULL,
    metadata     jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX webhook_events_walk ON webhook_events (workspace_id, xid, seq);
CREATE INDEX webhook_events_by_time ON webhook_events (at);
-- A webhook's redeliveries, removed with it.
CREATE INDEX webhook_events_redelivered ON webhook_events (webhook_id) WHERE webhook_id IS NOT NULL;

CREATE TABLE webhook_attempts (
    seq             bigserial PRIMARY KEY,
    webhook_id      uuid NOT NULL,
    event_id        uuid NOT NULL,
    event_seq       bigint NOT NULL,
    kind            smallint NOT NULL,
    n               integer NOT NULL,
    at              timestamptz NOT NULL,
    outcome         text NOT NULL,
    status          integer NOT NULL,
    latency_us      bigint NOT NULL,
    error           text NOT NULL,
    next_attempt_at timestamptz
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, seq);
-- A webhook's failed attempts, newest first, however many were delivered.
CREATE INDEX webhook_attempts_failed ON webhook_attempts (webhook_id, seq) WHERE outcome <> 'delivered';
CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_events;
DROP TABLE webhooks;
