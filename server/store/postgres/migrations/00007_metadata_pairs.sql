-- +goose Up
-- An index of the metadata keys without columns of their own, as in the
-- SQLite store's migration 00007: one entry per feedback and top-level
-- string value, except the special keys and values longer than 256
-- characters, holding the feedback's time, score and weight, so a graph
-- filtered by such a pair (region = eu) reads only this index and other
-- analytics find their rows through it. Entries are keyed by UTC day first,
-- so a day's new entries land together at the end of the index however
-- random their values; a query seeks once per day of its range. Statement triggers keep it, as
-- they keep the rollups. (Version 00006 exists only in the SQLite store.)
-- +goose StatementBegin
CREATE TABLE feedback_pairs (
    workspace_id uuid NOT NULL,
    day          integer NOT NULL,
    key          text NOT NULL,
    val          text NOT NULL,
    created_at   timestamptz NOT NULL,
    feedback_id  uuid NOT NULL,
    value        smallint NOT NULL,
    weight       double precision NOT NULL,
    PRIMARY KEY (workspace_id, day, key, val, created_at, feedback_id) INCLUDE (value, weight)
);
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, feedback_id, value, weight)
SELECT f.workspace_id, floor(extract(epoch FROM f.created_at) / 86400)::integer, e.key, e.value #>> '{}', f.created_at, f.id, f.value, f.weight
FROM feedback f CROSS JOIN LATERAL jsonb_each(f.metadata) AS e
WHERE jsonb_typeof(e.value) = 'string' AND e.key NOT IN ('_user', '_organisation', '_prompt', '_environment')
  AND char_length(e.value #>> '{}') <= 256;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION feedback_pairs_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM feedback_pairs p USING (
            SELECT o.workspace_id, floor(extract(epoch FROM o.created_at) / 86400)::integer AS day,
                e.key, e.value #>> '{}' AS val, o.created_at, o.id
            FROM old_rows o CROSS JOIN LATERAL jsonb_each(o.metadata) AS e
            WHERE jsonb_typeof(e.value) = 'string') d
        WHERE p.workspace_id = d.workspace_id AND p.day = d.day AND p.key = d.key AND p.val = d.val
          AND p.created_at = d.created_at AND p.feedback_id = d.id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, feedback_id, value, weight)
        SELECT r.workspace_id, floor(extract(epoch FROM r.created_at) / 86400)::integer, e.key, e.value #>> '{}', r.created_at, r.id, r.value, r.weight
        FROM new_rows r CROSS JOIN LATERAL jsonb_each(r.metadata) AS e
        WHERE jsonb_typeof(e.value) = 'string' AND e.key NOT IN ('_user', '_organisation', '_prompt', '_environment')
          AND char_length(e.value #>> '{}') <= 256;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_pairs_insert AFTER INSERT ON feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_pairs_apply();
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_pairs_delete AFTER DELETE ON feedback
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_pairs_apply();
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_pairs_update AFTER UPDATE ON feedback
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_pairs_apply();
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER feedback_pairs_update ON feedback;
DROP TRIGGER feedback_pairs_delete ON feedback;
DROP TRIGGER feedback_pairs_insert ON feedback;
DROP FUNCTION feedback_pairs_apply();
DROP TABLE feedback_pairs;
