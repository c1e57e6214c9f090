-- +goose Up
-- Rollups folded in the background. Until now every insert added to the
-- rollups in its own transaction: up to 12 upserts (3 spans x 4
-- dimensions) for each row, most of the writer's time under load. Now an
-- insert writes only its row; the writer folds the rows inserted since the
-- last fold into the rollups in bulk (many rows share a cell), and records
-- in rollup_fold.folded the largest rowid folded so far. Readers add the
-- unfolded rows (rowid > folded, a short rowid range) to what the rollups
-- say, in the same snapshot. The store assigns rowids itself, above both
-- the largest rowid and folded, so a rowid below the mark always means a
-- folded row even after the newest rows were deleted. Updates and deletes
-- keep the rollups exact for folded rows only: an unfolded row is folded
-- later with whatever values it has then.
-- +goose StatementBegin
CREATE TABLE rollup_fold (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    folded INTEGER NOT NULL
);
-- +goose StatementEnd
-- +goose StatementBegin
-- The rollups are complete up to now.
INSERT INTO rollup_fold (id, folded) SELECT 1, coalesce(max(rowid), 0) FROM feedback;
-- +goose StatementEnd
-- The fold mark, and the metadata index of migration 00007, refer to rows
-- by rowid, which VACUUM may renumber unless it is an INTEGER PRIMARY KEY:
-- feedback is rebuilt with one (seq), keeping every row's rowid. Dropping
-- the old table drops its indexes and its rollup triggers; the indexes are
-- made again as they were, the triggers anew below.
-- +goose StatementBegin
CREATE TABLE feedback_new (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
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
    m_strings      INTEGER NOT NULL DEFAULT 0
);
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_new (seq, id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at,
    token_id, m_user, m_organisation, m_prompt, m_environment, m_strings)
SELECT rowid, id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at,
    token_id, m_user, m_organisation, m_prompt, m_environment, m_strings
FROM feedback ORDER BY rowid;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TABLE feedback;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback_new RENAME TO feedback;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_id ON feedback (workspace_id, id);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_created ON feedback (workspace_id, created_at);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE UNIQUE INDEX feedback_workspace_token ON feedback (workspace_id, token_id) WHERE token_id IS NOT NULL;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_m_user ON feedback (workspace_id, m_user, created_at) WHERE m_user IS NOT NULL;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_m_organisation ON feedback (workspace_id, m_organisation, created_at) WHERE m_organisation IS NOT NULL;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_m_prompt ON feedback (workspace_id, m_prompt, created_at) WHERE m_prompt IS NOT NULL;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE INDEX feedback_workspace_m_environment ON feedback (workspace_id, m_environment, created_at) WHERE m_environment IS NOT NULL;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_delete AFTER DELETE ON feedback
WHEN OLD.rowid <= (SELECT folded FROM rollup_fold) BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value AND n = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_update AFTER UPDATE OF workspace_id, value, weight, created_at, m_strings, m_user, m_organisation, m_prompt, m_environment ON feedback
WHEN OLD.rowid <= (SELECT folded FROM rollup_fold) BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value AND n = 0;
    INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, NEW.created_at / 900000000, NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_organisation', NEW.m_organisation WHERE NEW.m_strings & 2 UNION ALL SELECT '_prompt', NEW.m_prompt WHERE NEW.m_strings & 4 UNION ALL SELECT '_environment', NEW.m_environment WHERE NEW.m_strings & 8) AS d
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
    INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, s.span, NEW.created_at / (s.span * 1000000), NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_organisation', NEW.m_organisation WHERE NEW.m_strings & 2 UNION ALL SELECT '_prompt', NEW.m_prompt WHERE NEW.m_strings & 4 UNION ALL SELECT '_environment', NEW.m_environment WHERE NEW.m_strings & 8) AS d, (SELECT 3600 AS span UNION ALL SELECT 86400) AS s
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
END;
-- +goose StatementEnd

-- +goose Down
-- Back to triggers that follow every row: rebuild the rollups from the rows.
-- The table keeps its seq column (the rowid under another name).
-- +goose StatementBegin
DROP TRIGGER feedback_rollup_delete;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TRIGGER feedback_rollup_update;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_delete AFTER DELETE ON feedback BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value AND n = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_update AFTER UPDATE OF workspace_id, value, weight, created_at, m_strings, m_user, m_organisation, m_prompt, m_environment ON feedback BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse
    WHERE workspace_id = OLD.workspace_id AND (dim, dim_value) IN (SELECT '', '' UNION ALL SELECT '_organisation', OLD.m_organisation WHERE OLD.m_strings & 2 UNION ALL SELECT '_prompt', OLD.m_prompt WHERE OLD.m_strings & 4 UNION ALL SELECT '_environment', OLD.m_environment WHERE OLD.m_strings & 8)
      AND (span, slot) IN (VALUES (3600, OLD.created_at / 3600000000), (86400, OLD.created_at / 86400000000)) AND value = OLD.value AND n = 0;
    INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, NEW.created_at / 900000000, NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_organisation', NEW.m_organisation WHERE NEW.m_strings & 2 UNION ALL SELECT '_prompt', NEW.m_prompt WHERE NEW.m_strings & 4 UNION ALL SELECT '_environment', NEW.m_environment WHERE NEW.m_strings & 8) AS d
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
    INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, s.span, NEW.created_at / (s.span * 1000000), NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_organisation', NEW.m_organisation WHERE NEW.m_strings & 2 UNION ALL SELECT '_prompt', NEW.m_prompt WHERE NEW.m_strings & 4 UNION ALL SELECT '_environment', NEW.m_environment WHERE NEW.m_strings & 8) AS d, (SELECT 3600 AS span UNION ALL SELECT 86400) AS s
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
END;
-- +goose StatementEnd
-- +goose StatementBegin
DELETE FROM feedback_rollup;
-- +goose StatementEnd
-- +goose StatementBegin
DELETE FROM feedback_rollup_coarse;
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
SELECT workspace_id, dim, val, slot, value, count(*), sum(value * weight) FROM (
    SELECT workspace_id, '' AS dim, '' AS val, created_at / 900000000 AS slot, value, weight FROM feedback WHERE rowid > 0
    UNION ALL SELECT workspace_id, '_organisation', m_organisation, created_at / 900000000, value, weight FROM feedback WHERE rowid > 0 AND m_strings & 2
    UNION ALL SELECT workspace_id, '_prompt', m_prompt, created_at / 900000000, value, weight FROM feedback WHERE rowid > 0 AND m_strings & 4
    UNION ALL SELECT workspace_id, '_environment', m_environment, created_at / 900000000, value, weight FROM feedback WHERE rowid > 0 AND m_strings & 8
) WHERE true GROUP BY workspace_id, dim, val, slot, value
ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
    n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted;
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
SELECT workspace_id, dim, dim_value, s.span, slot / (s.span / 900), value, sum(n), sum(sum_weighted)
FROM feedback_rollup, (SELECT 3600 AS span UNION ALL SELECT 86400) AS s
WHERE true GROUP BY workspace_id, dim, dim_value, s.span, slot / (s.span / 900), value;
-- +goose StatementEnd
-- +goose StatementBegin
DROP TABLE rollup_fold;
-- +goose StatementEnd
