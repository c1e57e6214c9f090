-- +goose Up
-- Times are Unix microseconds (UTC); ids are canonical UUID text.
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

CREATE TABLE feedback (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    trace_id     TEXT NOT NULL,
    value        INTEGER NOT NULL CHECK (value BETWEEN -10 AND 10),
    weight       REAL NOT NULL CHECK (weight BETWEEN 0 AND 1),
    metadata     TEXT NOT NULL CHECK (json_type(metadata) = 'object'),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Listing walks a workspace's ids newest first; trace and time filters
-- narrow it.
CREATE INDEX feedback_workspace_id ON feedback (workspace_id, id);
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id);
CREATE INDEX feedback_workspace_created ON feedback (workspace_id, created_at);

-- +goose Down
DROP TABLE feedback;
DROP TABLE api_keys;
DROP TABLE workspaces;
