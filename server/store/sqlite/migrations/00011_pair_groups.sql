-- +goose Up
-- Metadata pair entries also hold their feedback's trace id and special
-- keys' columns (migration 00003's rendering), so groups by a special key
-- under a filter on a key without columns (region = eu) read the entries
-- of that pair alone. Before, they read every matching row through the
-- entries' rowids: at 10 million rows a month of one region is 333,000
-- rows spread over a third of the file (1.4 s), where its entries are a
-- contiguous run of the index. The table is rebuilt from the rows, as
-- migration 00007 built it; the triggers follow.
-- +goose StatementBegin
DROP TRIGGER feedback_pairs_update;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TRIGGER feedback_pairs_delete;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TABLE feedback_pairs;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TABLE feedback_pairs (
    workspace_id   TEXT NOT NULL,
    day            INTEGER NOT NULL,
    key            TEXT NOT NULL,
    val            TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    fid            INTEGER NOT NULL,
    value          INTEGER NOT NULL,
    weight         REAL NOT NULL,
    trace_id       TEXT NOT NULL,
    m_user         TEXT,
    m_organisation TEXT,
    m_prompt       TEXT,
    m_environment  TEXT,
    PRIMARY KEY (workspace_id, day, key, val, created_at, fid)
) WITHOUT ROWID;
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, fid, value, weight,
    trace_id, m_user, m_organisation, m_prompt, m_environment)
SELECT f.workspace_id, f.created_at / 86400000000, j.key, j.value, f.created_at, f.rowid, f.value, f.weight,
    f.trace_id, f.m_user, f.m_organisation, f.m_prompt, f.m_environment
FROM feedback AS f, json_each(f.metadata) AS j
WHERE j.type = 'text' AND j.key NOT IN ('_user', '_organisation', '_prompt', '_environment') AND length(j.value) <= 256;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_pairs_delete AFTER DELETE ON feedback BEGIN
    DELETE FROM feedback_pairs
    WHERE (workspace_id, day, key, val, created_at, fid) IN (
        SELECT OLD.workspace_id, OLD.created_at / 86400000000, j.key, j.value, OLD.created_at, OLD.rowid
        FROM json_each(OLD.metadata) AS j WHERE j.type = 'text');
END;
-- +goose StatementEnd
-- +goose StatementBegin
-- m_* change only with metadata, in the same UPDATE; the trace id of a
-- stored feedback never changes.
CREATE TRIGGER feedback_pairs_update AFTER UPDATE OF workspace_id, value, weight, metadata, created_at ON feedback BEGIN
    DELETE FROM feedback_pairs
    WHERE (workspace_id, day, key, val, created_at, fid) IN (
        SELECT OLD.workspace_id, OLD.created_at / 86400000000, j.key, j.value, OLD.created_at, OLD.rowid
        FROM json_each(OLD.metadata) AS j WHERE j.type = 'text');
    INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, fid, value, weight,
        trace_id, m_user, m_organisation, m_prompt, m_environment)
    SELECT NEW.workspace_id, NEW.created_at / 86400000000, j.key, j.value, NEW.created_at, NEW.rowid, NEW.value, NEW.weight,
        NEW.trace_id, NEW.m_user, NEW.m_organisation, NEW.m_prompt, NEW.m_environment
    FROM json_each(NEW.metadata) AS j
    WHERE j.type = 'text' AND j.key NOT IN ('_user', '_organisation', '_prompt', '_environment') AND length(j.value) <= 256;
END;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP TRIGGER feedback_pairs_update;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TRIGGER feedback_pairs_delete;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TABLE feedback_pairs;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TABLE feedback_pairs (
    workspace_id TEXT NOT NULL,
    day          INTEGER NOT NULL,
    key          TEXT NOT NULL,
    val          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    fid          INTEGER NOT NULL,
    value        INTEGER NOT NULL,
    weight       REAL NOT NULL,
    PRIMARY KEY (workspace_id, day, key, val, created_at, fid)
) WITHOUT ROWID;
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, fid, value, weight)
SELECT f.workspace_id, f.created_at / 86400000000, j.key, j.value, f.created_at, f.rowid, f.value, f.weight
FROM feedback AS f, json_each(f.metadata) AS j
WHERE j.type = 'text' AND j.key NOT IN ('_user', '_organisation', '_prompt', '_environment') AND length(j.value) <= 256;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_pairs_delete AFTER DELETE ON feedback BEGIN
    DELETE FROM feedback_pairs
    WHERE (workspace_id, day, key, val, created_at, fid) IN (
        SELECT OLD.workspace_id, OLD.created_at / 86400000000, j.key, j.value, OLD.created_at, OLD.rowid
        FROM json_each(OLD.metadata) AS j WHERE j.type = 'text');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_pairs_update AFTER UPDATE OF workspace_id, value, weight, metadata, created_at ON feedback BEGIN
    DELETE FROM feedback_pairs
    WHERE (workspace_id, day, key, val, created_at, fid) IN (
        SELECT OLD.workspace_id, OLD.created_at / 86400000000, j.key, j.value, OLD.created_at, OLD.rowid
        FROM json_each(OLD.metadata) AS j WHERE j.type = 'text');
    INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, fid, value, weight)
    SELECT NEW.workspace_id, NEW.created_at / 86400000000, j.key, j.value, NEW.created_at, NEW.rowid, NEW.value, NEW.weight
    FROM json_each(NEW.metadata) AS j
    WHERE j.type = 'text' AND j.key NOT IN ('_user', '_organisation', '_prompt', '_environment') AND length(j.value) <= 256;
END;
-- +goose StatementEnd
