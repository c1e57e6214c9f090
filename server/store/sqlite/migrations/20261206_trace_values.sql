-- +goose Up
-- Trace values: one entry per feedback and special key it holds (_user,
-- _organisation, _prompt, _environment; the value as the m_ columns hold
-- it), ordered by trace, key, value and then time and id. A trace's
-- entries for a value start with its first feedback with that value and
-- go on with the next, so a write finds the first it may take over, and
-- the next one when it removes the first, with one seek each, however
-- much feedback the trace holds (server/store/rollup/write.go). Feedback
-- made before this table existed gets its entries here.
CREATE TABLE trace_values (
    workspace_id TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    PRIMARY KEY (workspace_id, trace_id, key, value, created_at, id)
) WITHOUT ROWID;

INSERT INTO trace_values (workspace_id, trace_id, key, value, created_at, id)
SELECT workspace_id, trace_id, '_user', m_user, created_at, id FROM feedback WHERE m_user IS NOT NULL
UNION ALL
SELECT workspace_id, trace_id, '_organisation', m_organisation, created_at, id FROM feedback WHERE m_organisation IS NOT NULL
UNION ALL
SELECT workspace_id, trace_id, '_prompt', m_prompt, created_at, id FROM feedback WHERE m_prompt IS NOT NULL
UNION ALL
SELECT workspace_id, trace_id, '_environment', m_environment, created_at, id FROM feedback WHERE m_environment IS NOT NULL
-- In the table's order, so that its pages are written once each rather
-- than in the rows' random order of traces.
ORDER BY 1, 2, 3, 4, 5, 6;

-- 0.1.0's SQLite store could leave wrong first-feedback flags when one
-- write held feedback of several workspaces (feedbackd import's batches
-- can): every row's flags are worked out again from the trace values,
-- those that differ are set, and the group slots of the values whose
-- flags moved count their firsts again, so that writes from now on start
-- from exact data.
CREATE TEMP TABLE moved (id TEXT PRIMARY KEY, firsts INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO moved SELECT id, firsts
FROM (SELECT f.id, f.m_firsts, coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_user' AND t.value = f.m_user ORDER BY t.created_at, t.id LIMIT 1), 0)
        | (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_organisation' AND t.value = f.m_organisation ORDER BY t.created_at, t.id LIMIT 1), 0) << 1)
        | (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_prompt' AND t.value = f.m_prompt ORDER BY t.created_at, t.id LIMIT 1), 0) << 2)
        | (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_environment' AND t.value = f.m_environment ORDER BY t.created_at, t.id LIMIT 1), 0) << 3) AS firsts
    FROM feedback AS f)
WHERE firsts != m_firsts;
UPDATE feedback SET m_firsts = (SELECT firsts FROM moved WHERE moved.id = feedback.id) WHERE id IN (SELECT id FROM moved);

UPDATE group_slots SET firsts = (SELECT count(*) FROM feedback AS f WHERE f.workspace_id = group_slots.workspace_id
    AND f.m_organisation = group_slots.value AND f.created_at >= group_slots.slot * group_slots.span * 1000000
    AND f.created_at < (group_slots.slot + 1) * group_slots.span * 1000000 AND f.m_firsts & 2 != 0)
WHERE key = '_organisation' AND (workspace_id, value) IN (SELECT f.workspace_id, f.m_organisation FROM moved JOIN feedback AS f ON f.id = moved.id);

UPDATE group_slots SET firsts = (SELECT count(*) FROM feedback AS f WHERE f.workspace_id = group_slots.workspace_id
    AND f.m_prompt = group_slots.value AND f.created_at >= group_slots.slot * group_slots.span * 1000000
    AND f.created_at < (group_slots.slot + 1) * group_slots.span * 1000000 AND f.m_firsts & 4 != 0)
WHERE key = '_prompt' AND (workspace_id, value) IN (SELECT f.workspace_id, f.m_prompt FROM moved JOIN feedback AS f ON f.id = moved.id);

UPDATE group_slots SET firsts = (SELECT count(*) FROM feedback AS f WHERE f.workspace_id = group_slots.workspace_id
    AND f.m_environment = group_slots.value AND f.created_at >= group_slots.slot * group_slots.span * 1000000
    AND f.created_at < (group_slots.slot + 1) * group_slots.span * 1000000 AND f.m_firsts & 8 != 0)
WHERE key = '_environment' AND (workspace_id, value) IN (SELECT f.workspace_id, f.m_environment FROM moved JOIN feedback AS f ON f.id = moved.id);

DROP TABLE moved;

-- A trace's rows in time order: a listing of one trace walks its page
-- from the cursor down, and the first-feedback test of groups by a key
-- without a column reads only a row's earlier rows, however large the
-- trace.
DROP INDEX feedback_workspace_trace;
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id, created_at, id);

-- +goose Down
DROP INDEX feedback_workspace_trace;
CREATE INDEX feedback_workspace_trace ON feedback (workspace_id, trace_id);
DROP TABLE trace_values;
