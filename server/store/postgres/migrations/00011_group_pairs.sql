-- +goose Up
-- Group cells under a filter on another rollup key (store.GroupDims: groups
-- by _prompt filtered by _environment, and so on). Every row is filed again:
-- the cells and the queue are emptied and every row with a rollup key is
-- queued as new, so the filer (server/store/postgres/filer.go) refiles the
-- rows in the background; groups read the rows while more than a few
-- thousand versions are queued. Writes wait for this migration (the share
-- lock), so that none lands between emptying the queue and filling it.
LOCK TABLE feedback IN SHARE MODE;
TRUNCATE feedback_group_queue, feedback_group_cells;
INSERT INTO feedback_group_queue (workspace_id, trace_id, id, t, m_organisation, m_prompt, m_environment, weighted, sign)
SELECT workspace_id, trace_id, id, (extract(epoch FROM created_at) * 1000000)::bigint,
    m_organisation, m_prompt, m_environment, value * weight, 1
FROM feedback WHERE coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL;

-- +goose Down
DELETE FROM feedback_group_cells WHERE dim LIKE '%|%';
