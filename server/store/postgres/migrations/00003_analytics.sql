-- +goose Up
-- Analytics, as in the SQLite store: generated columns for Portkey's
-- special metadata keys (the value as text), their indexes, and
-- feedback_rollup, the count and sum of value x weight of each score per
-- workspace and 15-minute slot, for all feedback (dim '') and for each
-- string value of _organisation, _prompt and _environment (not _user: users
-- are many with few rows each, which their index finds faster). Statement-level triggers keep it exact
-- in the same transaction as every write, one aggregated upsert per
-- statement (a bulk insert of 1000 rows is one upsert of its distinct
-- slots), in key order so concurrent writers cannot deadlock.
ALTER TABLE feedback ADD COLUMN m_user text GENERATED ALWAYS AS (metadata ->> '_user') STORED;
ALTER TABLE feedback ADD COLUMN m_organisation text GENERATED ALWAYS AS (metadata ->> '_organisation') STORED;
ALTER TABLE feedback ADD COLUMN m_prompt text GENERATED ALWAYS AS (metadata ->> '_prompt') STORED;
ALTER TABLE feedback ADD COLUMN m_environment text GENERATED ALWAYS AS (metadata ->> '_environment') STORED;
CREATE INDEX feedback_workspace_m_user ON feedback (workspace_id, m_user, created_at) WHERE m_user IS NOT NULL;
CREATE INDEX feedback_workspace_m_organisation ON feedback (workspace_id, m_organisation, created_at) WHERE m_organisation IS NOT NULL;
CREATE INDEX feedback_workspace_m_prompt ON feedback (workspace_id, m_prompt, created_at) WHERE m_prompt IS NOT NULL;
CREATE INDEX feedback_workspace_m_environment ON feedback (workspace_id, m_environment, created_at) WHERE m_environment IS NOT NULL;

CREATE TABLE feedback_rollup (
    workspace_id uuid NOT NULL,
    dim          text NOT NULL,
    dim_value    text NOT NULL,
    slot         bigint NOT NULL,
    value        smallint NOT NULL,
    n            bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    PRIMARY KEY (workspace_id, dim, dim_value, slot, value)
);

-- +goose StatementBegin
CREATE FUNCTION feedback_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO feedback_rollup AS f (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
        SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM (
        SELECT r.workspace_id, x.dim, x.val, floor(extract(epoch FROM r.created_at) / 900)::bigint AS slot, r.value, 1 AS dn, 1 * r.value * r.weight AS dw
        FROM new_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) WHERE x.val IS NOT NULL
        ) d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
            n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO feedback_rollup AS f (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
        SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM (
        SELECT r.workspace_id, x.dim, x.val, floor(extract(epoch FROM r.created_at) / 900)::bigint AS slot, r.value, -1 AS dn, -1 * r.value * r.weight AS dw
        FROM old_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) WHERE x.val IS NOT NULL
        ) d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
            n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted;
        DELETE FROM feedback_rollup f USING (SELECT DISTINCT workspace_id, floor(extract(epoch FROM created_at) / 900)::bigint AS slot FROM old_rows) o
        WHERE f.n = 0 AND f.workspace_id = o.workspace_id AND f.slot = o.slot;
    ELSE
        INSERT INTO feedback_rollup AS f (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
        SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM (
        SELECT r.workspace_id, x.dim, x.val, floor(extract(epoch FROM r.created_at) / 900)::bigint AS slot, r.value, -1 AS dn, -1 * r.value * r.weight AS dw
        FROM old_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) WHERE x.val IS NOT NULL
        UNION ALL
        SELECT r.workspace_id, x.dim, x.val, floor(extract(epoch FROM r.created_at) / 900)::bigint AS slot, r.value, 1 AS dn, 1 * r.value * r.weight AS dw
        FROM new_rows r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) WHERE x.val IS NOT NULL
        ) d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
            n = f.n + excluded.n, sum_weighted = f.sum_weighted + excluded.sum_weighted;
        DELETE FROM feedback_rollup f USING (SELECT DISTINCT workspace_id, floor(extract(epoch FROM created_at) / 900)::bigint AS slot FROM old_rows) o
        WHERE f.n = 0 AND f.workspace_id = o.workspace_id AND f.slot = o.slot;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER feedback_rollup_insert AFTER INSERT ON feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_rollup_apply();
CREATE TRIGGER feedback_rollup_delete AFTER DELETE ON feedback
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_rollup_apply();
CREATE TRIGGER feedback_rollup_update AFTER UPDATE ON feedback
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_rollup_apply();

-- Rollups of the feedback stored before this migration.
INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
SELECT workspace_id, dim, val, slot, value, sum(dn), sum(dw) FROM (
    SELECT r.workspace_id, x.dim, x.val, floor(extract(epoch FROM r.created_at) / 900)::bigint AS slot, r.value, 1 AS dn, 1 * r.value * r.weight AS dw
        FROM feedback r CROSS JOIN LATERAL (VALUES ('', ''), ('_organisation', CASE WHEN jsonb_typeof(r.metadata -> '_organisation') = 'string' THEN r.metadata ->> '_organisation' END), ('_prompt', CASE WHEN jsonb_typeof(r.metadata -> '_prompt') = 'string' THEN r.metadata ->> '_prompt' END), ('_environment', CASE WHEN jsonb_typeof(r.metadata -> '_environment') = 'string' THEN r.metadata ->> '_environment' END)) AS x(dim, val) WHERE x.val IS NOT NULL
) d GROUP BY 1, 2, 3, 4, 5;

-- +goose Down
DROP TRIGGER feedback_rollup_update ON feedback;
DROP TRIGGER feedback_rollup_delete ON feedback;
DROP TRIGGER feedback_rollup_insert ON feedback;
DROP FUNCTION feedback_rollup_apply();
DROP TABLE feedback_rollup;
ALTER TABLE feedback DROP COLUMN m_user;
ALTER TABLE feedback DROP COLUMN m_organisation;
ALTER TABLE feedback DROP COLUMN m_prompt;
ALTER TABLE feedback DROP COLUMN m_environment;
