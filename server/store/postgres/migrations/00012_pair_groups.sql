-- +goose Up
-- Metadata pair entries also hold their feedback's trace id and special
-- keys' columns, as in the SQLite store's migration 00011, so groups by a
-- special key under a filter on a key without columns (region = eu) read
-- that pair's entries alone, from the primary key's index when its pages
-- are all-visible. Before, they found every matching row through the GIN
-- index on metadata and read it (about 2 s for a month of one region at
-- 10 million rows). The table is rebuilt from the rows; writes wait for
-- this migration (the share lock), so that none is missed meanwhile.
LOCK TABLE feedback IN SHARE MODE;
DROP TABLE feedback_pairs;
CREATE TABLE feedback_pairs (
    workspace_id   uuid NOT NULL,
    day            integer NOT NULL,
    key            text NOT NULL,
    val            text NOT NULL,
    created_at     timestamptz NOT NULL,
    feedback_id    uuid NOT NULL,
    value          smallint NOT NULL,
    weight         double precision NOT NULL,
    trace_id       text NOT NULL,
    m_user         text,
    m_organisation text,
    m_prompt       text,
    m_environment  text,
    PRIMARY KEY (workspace_id, day, key, val, created_at, feedback_id)
        INCLUDE (value, weight, trace_id, m_user, m_organisation, m_prompt, m_environment)
);
INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, feedback_id, value, weight,
    trace_id, m_user, m_organisation, m_prompt, m_environment)
SELECT f.workspace_id, floor(extract(epoch FROM f.created_at) / 86400)::integer, e.key, e.value #>> '{}', f.created_at, f.id, f.value, f.weight,
    f.trace_id, f.m_user, f.m_organisation, f.m_prompt, f.m_environment
FROM feedback f CROSS JOIN LATERAL jsonb_each(f.metadata) AS e
WHERE jsonb_typeof(e.value) = 'string' AND e.key NOT IN ('_user', '_organisation', '_prompt', '_environment')
  AND char_length(e.value #>> '{}') <= 256;
ANALYZE feedback_pairs;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION feedback_pairs_apply() RETURNS trigger LANGUAGE plpgsql AS $$
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
        INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, feedback_id, value, weight,
            trace_id, m_user, m_organisation, m_prompt, m_environment)
        SELECT r.workspace_id, floor(extract(epoch FROM r.created_at) / 86400)::integer, e.key, e.value #>> '{}', r.created_at, r.id, r.value, r.weight,
            r.trace_id, r.m_user, r.m_organisation, r.m_prompt, r.m_environment
        FROM new_rows r CROSS JOIN LATERAL jsonb_each(r.metadata) AS e
        WHERE jsonb_typeof(e.value) = 'string' AND e.key NOT IN ('_user', '_organisation', '_prompt', '_environment')
          AND char_length(e.value #>> '{}') <= 256;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
LOCK TABLE feedback IN SHARE MODE;
DROP TABLE feedback_pairs;
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
INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, feedback_id, value, weight)
SELECT f.workspace_id, floor(extract(epoch FROM f.created_at) / 86400)::integer, e.key, e.value #>> '{}', f.created_at, f.id, f.value, f.weight
FROM feedback f CROSS JOIN LATERAL jsonb_each(f.metadata) AS e
WHERE jsonb_typeof(e.value) = 'string' AND e.key NOT IN ('_user', '_organisation', '_prompt', '_environment')
  AND char_length(e.value #>> '{}') <= 256;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION feedback_pairs_apply() RETURNS trigger LANGUAGE plpgsql AS $$
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
