-- +goose Up
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

CREATE TABLE feedback (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    trace_id     text NOT NULL,
    value        smallint NOT NULL CHECK (value BETWEEN -10 AND 10),
    weight       double precision NOT NULL CHECK (weight BETWEEN 0 AND 1),
    metadata     jsonb NOT NULL CHECK (jsonb_typeof(metadata) = 'object'),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Listing walks a workspace's ids newest first; trace and time filters
-- narrow it, and metadata filters are containment (@>) on a GIN index.
CREATE INDEX feedback_workspace_id ON feedback (workspace_id, id);
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id);
CREATE INDEX feedback_workspace_created ON feedback (workspace_id, created_at);
CREATE INDEX feedback_metadata ON feedback USING gin (metadata jsonb_path_ops);

-- +goose Down
DROP TABLE feedback;
DROP TABLE api_keys;
DROP TABLE workspaces;
