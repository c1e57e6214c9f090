-- +goose Up
-- An index of the metadata keys without columns of their own: one entry
-- per feedback and top-level string value, except the special keys (their
-- columns and indexes serve them) and values longer than 256 characters.
-- It holds the feedback's time, score and weight, so a graph filtered by
-- such a pair (region = eu) reads only this index, and other analytics
-- find their rows through it instead of parsing every row's JSON. fid is
-- the feedback's rowid. Entries are keyed by UTC day first (created_at
-- divided by a day), so a day's new entries land together at the end of the
-- index, where the writer's cache holds them, however random their values
-- (session ids, say); a query seeks once per day of its range. The store
-- adds the entries of new rows when it inserts them; the triggers follow
-- updates and deletes.
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

-- +goose Down
DROP TRIGGER feedback_pairs_update;
DROP TRIGGER feedback_pairs_delete;
DROP TABLE feedback_pairs;
