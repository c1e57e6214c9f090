-- +goose Up
-- Group cells off the write path. Until now every write moved the group
-- cells of its traces in its own transaction, under a lock per trace,
-- which halved the rate of single writes. Now a statement-level trigger
-- only appends to this queue, in the write's own statement, the versions
-- of rows holding a rollup key that the statement ended (sign -1: a row as
-- it was before an update or a delete) or began (sign 1: a row as it is
-- after an insert or an update). A filer (server/store/postgres/filer.go),
-- one at a time across replicas, moves the cells by what the queued
-- versions change in their traces' chains and deletes them, in one
-- transaction; groups read the chains of the traces still queued whole.
-- So what the cells hold is always the rows as they are, minus the
-- versions queued with sign 1, plus those queued with sign -1.
-- The queue starts empty: migration 00011 queues every stored row.
CREATE TABLE feedback_group_queue (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id   uuid NOT NULL,
    trace_id       text NOT NULL,
    id             uuid NOT NULL,
    t              bigint NOT NULL,
    m_organisation text,
    m_prompt       text,
    m_environment  text,
    weighted       double precision NOT NULL,
    sign           smallint NOT NULL
);
CREATE INDEX feedback_group_queue_trace ON feedback_group_queue (workspace_id, trace_id);
-- Every read of groups looks at the queue, which stays small but churns:
-- autovacuum runs on it every few thousand deleted versions, whatever its
-- size, not at a fifth of it.
ALTER TABLE feedback_group_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);

-- +goose StatementBegin
CREATE FUNCTION feedback_group_queue_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO feedback_group_queue (workspace_id, trace_id, id, t, m_organisation, m_prompt, m_environment, weighted, sign)
        SELECT workspace_id, trace_id, id, (extract(epoch FROM created_at) * 1000000)::bigint,
            m_organisation, m_prompt, m_environment, value * weight, -1
        FROM old_rows WHERE coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO feedback_group_queue (workspace_id, trace_id, id, t, m_organisation, m_prompt, m_environment, weighted, sign)
        SELECT workspace_id, trace_id, id, (extract(epoch FROM created_at) * 1000000)::bigint,
            m_organisation, m_prompt, m_environment, value * weight, 1
        FROM new_rows WHERE coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER feedback_group_queue_insert AFTER INSERT ON feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_group_queue_apply();
CREATE TRIGGER feedback_group_queue_update AFTER UPDATE ON feedback
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_group_queue_apply();
CREATE TRIGGER feedback_group_queue_delete AFTER DELETE ON feedback
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION feedback_group_queue_apply();

-- +goose Down
DROP TRIGGER feedback_group_queue_delete ON feedback;
DROP TRIGGER feedback_group_queue_update ON feedback;
DROP TRIGGER feedback_group_queue_insert ON feedback;
DROP FUNCTION feedback_group_queue_apply();
DROP TABLE feedback_group_queue;
