-- +goose Up
-- Coarser rollups: the same sums per hour and per (UTC) day, kept by the
-- same statement-level triggers in the same transaction. A graph whose
-- buckets are whole hours or days reads these for the whole hours or days of
-- its range, the 15-minute slots only around its ends.
CREATE TABLE feedback_rollup_coarse (
    workspace_id uuid NOT NULL,
    dim          text NOT NULL,
    dim_value    text NOT NULL,
    span         integer NOT NULL,
    slot         bigint NOT NULL,
    value        smallint NOT NULL,
    n            bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    PRIMARY KEY (workspace_id, dim, dim_value, span, slot, value)
);

INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
SELECT workspace_id, dim, dim_value, s.span, slot * 900 / s.span, value, sum(n), sum(sum_weighted)
FROM feedback_rollup CROSS JOIN (VALUES (3600), (86400)) AS s(span)
GROUP BY 1, 2, 3, 4, 5, 6;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION feedback_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH d AS (
        SELECT r.workspace_id, x.dim, x.val, s.span, floor(extract(epoch FROM r.created_at) / s.span)::bigint AS slot, r.value, 1 AS dn, 1 * r.value * r.weight AS dw
        FROM new_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) CROSS JOIN (VALUES (900), (3600), (86400)) AS s(span) WHERE x.val IS NOT NULL
        ), fine AS (
            INSERT INTO feedback_rollup AS f (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
            SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM d WHERE span = 900
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
                n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted
        )
        INSERT INTO feedback_rollup_coarse AS f (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
        SELECT workspace_id, dim, val, span, slot, value, sum(dn), sum(dw) FROM d WHERE span <> 900
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
            n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted;
    ELSIF TG_OP = 'DELETE' THEN
        WITH d AS (
        SELECT r.workspace_id, x.dim, x.val, s.span, floor(extract(epoch FROM r.created_at) / s.span)::bigint AS slot, r.value, -1 AS dn, -1 * r.value * r.weight AS dw
        FROM old_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) CROSS JOIN (VALUES (900), (3600), (86400)) AS s(span) WHERE x.val IS NOT NULL
        ), fine AS (
            INSERT INTO feedback_rollup AS f (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
            SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM d WHERE span = 900
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
                n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted
        )
        INSERT INTO feedback_rollup_coarse AS f (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
        SELECT workspace_id, dim, val, span, slot, value, sum(dn), sum(dw) FROM d WHERE span <> 900
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
            n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted;
        DELETE FROM feedback_rollup f USING (SELECT DISTINCT workspace_id, floor(extract(epoch FROM created_at) / 900)::bigint AS slot FROM old_rows) o
        WHERE f.n = 0 AND f.workspace_id = o.workspace_id AND f.slot = o.slot;
        DELETE FROM feedback_rollup_coarse f USING (SELECT DISTINCT workspace_id, s.span, floor(extract(epoch FROM created_at) / s.span)::bigint AS slot
            FROM old_rows CROSS JOIN (VALUES (3600), (86400)) AS s(span)) o
        WHERE f.n = 0 AND f.workspace_id = o.workspace_id AND f.span = o.span AND f.slot = o.slot;
    ELSE
        WITH d AS (
        SELECT r.workspace_id, x.dim, x.val, s.span, floor(extract(epoch FROM r.created_at) / s.span)::bigint AS slot, r.value, -1 AS dn, -1 * r.value * r.weight AS dw
        FROM old_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) CROSS JOIN (VALUES (900), (3600), (86400)) AS s(span) WHERE x.val IS NOT NULL
        UNION ALL
        SELECT r.workspace_id, x.dim, x.val, s.span, floor(extract(epoch FROM r.created_at) / s.span)::bigint AS slot, r.value, 1 AS dn, 1 * r.value * r.weight AS dw
        FROM new_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) CROSS JOIN (VALUES (900), (3600), (86400)) AS s(span) WHERE x.val IS NOT NULL
        ), fine AS (
            INSERT INTO feedback_rollup AS f (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
            SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM d WHERE span = 900
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
                n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted
        )
        INSERT INTO feedback_rollup_coarse AS f (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
        SELECT workspace_id, dim, val, span, slot, value, sum(dn), sum(dw) FROM d WHERE span <> 900
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
            n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted;
        DELETE FROM feedback_rollup f USING (SELECT DISTINCT workspace_id, floor(extract(epoch FROM created_at) / 900)::bigint AS slot FROM old_rows) o
        WHERE f.n = 0 AND f.workspace_id = o.workspace_id AND f.slot = o.slot;
        DELETE FROM feedback_rollup_coarse f USING (SELECT DISTINCT workspace_id, s.span, floor(extract(epoch FROM created_at) / s.span)::bigint AS slot
            FROM old_rows CROSS JOIN (VALUES (3600), (86400)) AS s(span)) o
        WHERE f.n = 0 AND f.workspace_id = o.workspace_id AND f.span = o.span AND f.slot = o.slot;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE feedback_rollup_coarse;
