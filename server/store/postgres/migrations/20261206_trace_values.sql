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
    workspace_id uuid NOT NULL,
    trace_id     text NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL,
    created_at   timestamptz NOT NULL,
    id           uuid NOT NULL,
    PRIMARY KEY (workspace_id, trace_id, key, value, created_at, id)
);

INSERT INTO trace_values (workspace_id, trace_id, key, value, created_at, id)
SELECT workspace_id, trace_id, '_user', m_user, created_at, id FROM feedback WHERE m_user IS NOT NULL
UNION ALL
SELECT workspace_id, trace_id, '_organisation', m_organisation, created_at, id FROM feedback WHERE m_organisation IS NOT NULL
UNION ALL
SELECT workspace_id, trace_id, '_prompt', m_prompt, created_at, id FROM feedback WHERE m_prompt IS NOT NULL
UNION ALL
SELECT workspace_id, trace_id, '_environment', m_environment, created_at, id FROM feedback WHERE m_environment IS NOT NULL
-- In the index's order, so that its pages are written once each rather
-- than in the rows' random order of traces.
ORDER BY 1, 2, 3, 4, 5, 6;

-- 0.1.0 could leave wrong first-feedback flags (its SQLite store did, when
-- one write held feedback of several workspaces; a database may have
-- moved here through export and import): every row's flags are set again
-- from the trace values, those that differ are set, and the group slots
-- of the values whose flags moved count their firsts again, so that
-- writes from now on start from exact data.
CREATE TEMP TABLE moved (id uuid PRIMARY KEY, firsts smallint NOT NULL);
INSERT INTO moved SELECT id, firsts
FROM (SELECT f.id, f.m_firsts, (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_user' AND t.value = f.m_user ORDER BY t.created_at, t.id LIMIT 1), false)::int
        | (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_organisation' AND t.value = f.m_organisation ORDER BY t.created_at, t.id LIMIT 1), false)::int << 1)
        | (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_prompt' AND t.value = f.m_prompt ORDER BY t.created_at, t.id LIMIT 1), false)::int << 2)
        | (coalesce(f.id = (SELECT t.id FROM trace_values AS t WHERE t.workspace_id = f.workspace_id AND t.trace_id = f.trace_id
            AND t.key = '_environment' AND t.value = f.m_environment ORDER BY t.created_at, t.id LIMIT 1), false)::int << 3))::smallint AS firsts
    FROM feedback AS f) AS fixed
WHERE firsts <> m_firsts;
UPDATE feedback AS f SET m_firsts = m.firsts FROM moved AS m WHERE f.id = m.id;

UPDATE group_slots AS g SET firsts = c.n
FROM group_slots AS s CROSS JOIN LATERAL (SELECT count(*) AS n FROM feedback AS f WHERE f.workspace_id = s.workspace_id
    AND f.m_organisation = s.value AND f.created_at >= to_timestamp(s.slot * s.span) AND f.created_at < to_timestamp((s.slot + 1) * s.span)
    AND f.m_firsts & 2 <> 0) AS c
WHERE s.key = '_organisation' AND (s.workspace_id, s.value) IN (SELECT f.workspace_id, f.m_organisation FROM moved JOIN feedback AS f ON f.id = moved.id)
    AND (g.workspace_id, g.span, g.slot, g.key, g.value) = (s.workspace_id, s.span, s.slot, s.key, s.value) AND g.firsts <> c.n;

UPDATE group_slots AS g SET firsts = c.n
FROM group_slots AS s CROSS JOIN LATERAL (SELECT count(*) AS n FROM feedback AS f WHERE f.workspace_id = s.workspace_id
    AND f.m_prompt = s.value AND f.created_at >= to_timestamp(s.slot * s.span) AND f.created_at < to_timestamp((s.slot + 1) * s.span)
    AND f.m_firsts & 4 <> 0) AS c
WHERE s.key = '_prompt' AND (s.workspace_id, s.value) IN (SELECT f.workspace_id, f.m_prompt FROM moved JOIN feedback AS f ON f.id = moved.id)
    AND (g.workspace_id, g.span, g.slot, g.key, g.value) = (s.workspace_id, s.span, s.slot, s.key, s.value) AND g.firsts <> c.n;

UPDATE group_slots AS g SET firsts = c.n
FROM group_slots AS s CROSS JOIN LATERAL (SELECT count(*) AS n FROM feedback AS f WHERE f.workspace_id = s.workspace_id
    AND f.m_environment = s.value AND f.created_at >= to_timestamp(s.slot * s.span) AND f.created_at < to_timestamp((s.slot + 1) * s.span)
    AND f.m_firsts & 8 <> 0) AS c
WHERE s.key = '_environment' AND (s.workspace_id, s.value) IN (SELECT f.workspace_id, f.m_environment FROM moved JOIN feedback AS f ON f.id = moved.id)
    AND (g.workspace_id, g.span, g.slot, g.key, g.value) = (s.workspace_id, s.span, s.slot, s.key, s.value) AND g.firsts <> c.n;

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
