-- +goose Up
-- Group cells, as in the SQLite store's migration 00009 (see
-- server/store/groupcells.go): for each rollup key, value, span and unit,
-- the rows filed under where the previous row of their chain (same
-- workspace, trace id and value, in (created_at, id) order) lies: nowhere
-- (the smallest bigint), inside the unit (the largest), or in an earlier
-- 15-minute slot (that slot). Every write keeps them in its own transaction
-- (server/store/postgres/groups.go), holding a lock on the traces it
-- touches; this fills them for the rows already stored.
-- +goose StatementBegin
CREATE TABLE feedback_group_cells (
    workspace_id uuid NOT NULL,
    dim          text NOT NULL,
    span         bigint NOT NULL,
    unit         bigint NOT NULL,
    dim_value    text NOT NULL,
    prev_slot    bigint NOT NULL,
    n            bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    PRIMARY KEY (workspace_id, dim, span, unit, dim_value, prev_slot)
);
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_group_cells (workspace_id, dim, span, unit, dim_value, prev_slot, n, sum_weighted)
SELECT workspace_id, dim, span, unit, dim_value, prev_slot, count(*), sum(w)
FROM (
    SELECT c.workspace_id, c.dim, s.span, div(c.t - (((c.t % (s.span * 1000000)) + s.span * 1000000) % (s.span * 1000000)), s.span * 1000000) AS unit,
        c.v AS dim_value, c.w,
        CASE WHEN c.prev IS NULL THEN -9223372036854775808
            WHEN c.prev >= c.t - (((c.t % (s.span * 1000000)) + s.span * 1000000) % (s.span * 1000000)) THEN 9223372036854775807
            ELSE div(c.prev - (((c.prev % 900000000) + 900000000) % 900000000), 900000000) END AS prev_slot
    FROM (
        SELECT f.workspace_id, d.dim, d.v, f.t, f.w,
            lag(f.t) OVER (PARTITION BY f.workspace_id, d.dim, d.v, f.trace_id ORDER BY f.t, f.id) AS prev
        FROM (SELECT workspace_id, trace_id, id, (extract(epoch FROM created_at) * 1000000)::bigint AS t, value * weight AS w,
                  m_organisation, m_prompt, m_environment FROM feedback) f
        CROSS JOIN LATERAL (VALUES ('_organisation', f.m_organisation), ('_prompt', f.m_prompt), ('_environment', f.m_environment)) AS d (dim, v)
        WHERE d.v IS NOT NULL
    ) c
    CROSS JOIN (VALUES (86400::bigint), (3600), (900)) AS s (span)
) x
GROUP BY workspace_id, dim, span, unit, dim_value, prev_slot;
-- +goose StatementEnd

-- +goose Down
DROP TABLE feedback_group_cells;
