-- +goose Up
-- Analytics. Portkey's special metadata keys get generated columns (the
-- value rendered as text: strings as they are, other values as JSON) and
-- indexes, so filters and groups on them do not parse JSON row by row.
-- feedback_rollup holds, per workspace and 15-minute slot, the count and
-- the sum of value x weight of each score, for all feedback (dim '') and
-- for each string value of each special key. Triggers keep it exact in the same
-- transaction as every insert, update and delete; graphs then read a few
-- thousand rollup rows instead of millions of feedback rows.
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_user TEXT GENERATED ALWAYS AS (CASE json_type(metadata, '$._user') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'integer' THEN CAST(json_extract(metadata, '$._user') AS TEXT) WHEN 'real' THEN CAST(json_extract(metadata, '$._user') AS TEXT) ELSE json_extract(metadata, '$._user') END) VIRTUAL;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_organisation TEXT GENERATED ALWAYS AS (CASE json_type(metadata, '$._organisation') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'integer' THEN CAST(json_extract(metadata, '$._organisation') AS TEXT) WHEN 'real' THEN CAST(json_extract(metadata, '$._organisation') AS TEXT) ELSE json_extract(metadata, '$._organisation') END) VIRTUAL;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_prompt TEXT GENERATED ALWAYS AS (CASE json_type(metadata, '$._prompt') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'integer' THEN CAST(json_extract(metadata, '$._prompt') AS TEXT) WHEN 'real' THEN CAST(json_extract(metadata, '$._prompt') AS TEXT) ELSE json_extract(metadata, '$._prompt') END) VIRTUAL;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_environment TEXT GENERATED ALWAYS AS (CASE json_type(metadata, '$._environment') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'integer' THEN CAST(json_extract(metadata, '$._environment') AS TEXT) WHEN 'real' THEN CAST(json_extract(metadata, '$._environment') AS TEXT) ELSE json_extract(metadata, '$._environment') END) VIRTUAL;
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
CREATE TABLE feedback_rollup (
    workspace_id TEXT NOT NULL,
    dim          TEXT NOT NULL,
    dim_value    TEXT NOT NULL,
    slot         INTEGER NOT NULL,
    value        INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, dim, dim_value, slot, value)
) WITHOUT ROWID;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_insert AFTER INSERT ON feedback BEGIN
    INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, NEW.created_at / 900000000, NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_user', NEW.m_user WHERE json_type(NEW.metadata, '$._user') = 'text' UNION ALL SELECT '_organisation', NEW.m_organisation WHERE json_type(NEW.metadata, '$._organisation') = 'text' UNION ALL SELECT '_prompt', NEW.m_prompt WHERE json_type(NEW.metadata, '$._prompt') = 'text' UNION ALL SELECT '_environment', NEW.m_environment WHERE json_type(NEW.metadata, '$._environment') = 'text') AS d
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_delete AFTER DELETE ON feedback BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._user') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_user' AND dim_value = OLD.m_user
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._organisation') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._prompt') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._environment') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup WHERE workspace_id = OLD.workspace_id
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_update AFTER UPDATE OF workspace_id, value, weight, metadata, created_at ON feedback BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._user') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_user' AND dim_value = OLD.m_user
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._organisation') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._prompt') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE json_type(OLD.metadata, '$._environment') = 'text' AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup WHERE workspace_id = OLD.workspace_id
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
    INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, NEW.created_at / 900000000, NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_user', NEW.m_user WHERE json_type(NEW.metadata, '$._user') = 'text' UNION ALL SELECT '_organisation', NEW.m_organisation WHERE json_type(NEW.metadata, '$._organisation') = 'text' UNION ALL SELECT '_prompt', NEW.m_prompt WHERE json_type(NEW.metadata, '$._prompt') = 'text' UNION ALL SELECT '_environment', NEW.m_environment WHERE json_type(NEW.metadata, '$._environment') = 'text') AS d
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
END;
-- +goose StatementEnd
-- +goose StatementBegin
-- Rollups of the feedback stored before this migration.
INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
SELECT workspace_id, dim, val, slot, value, count(*), sum(value * weight) FROM (
    SELECT workspace_id, '' AS dim, '' AS val, created_at / 900000000 AS slot, value, weight FROM feedback
    UNION ALL SELECT workspace_id, '_user', m_user, created_at / 900000000, value, weight FROM feedback WHERE json_type(metadata, '$._user') = 'text'
    UNION ALL SELECT workspace_id, '_organisation', m_organisation, created_at / 900000000, value, weight FROM feedback WHERE json_type(metadata, '$._organisation') = 'text'
    UNION ALL SELECT workspace_id, '_prompt', m_prompt, created_at / 900000000, value, weight FROM feedback WHERE json_type(metadata, '$._prompt') = 'text'
    UNION ALL SELECT workspace_id, '_environment', m_environment, created_at / 900000000, value, weight FROM feedback WHERE json_type(metadata, '$._environment') = 'text'
) GROUP BY workspace_id, dim, val, slot, value;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER feedback_rollup_update;
DROP TRIGGER feedback_rollup_delete;
DROP TRIGGER feedback_rollup_insert;
DROP TABLE feedback_rollup;
DROP INDEX feedback_workspace_m_user;
DROP INDEX feedback_workspace_m_organisation;
DROP INDEX feedback_workspace_m_prompt;
DROP INDEX feedback_workspace_m_environment;
ALTER TABLE feedback DROP COLUMN m_user;
ALTER TABLE feedback DROP COLUMN m_organisation;
ALTER TABLE feedback DROP COLUMN m_prompt;
ALTER TABLE feedback DROP COLUMN m_environment;
