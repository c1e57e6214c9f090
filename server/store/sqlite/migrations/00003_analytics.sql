-- +goose Up
-- Analytics. Portkey's special metadata keys get columns of their own, filled
-- by the store when it writes the row: the value as text (a string as it is,
-- anything else as JSON; NULL when absent or null), and in m_strings one bit
-- per key (1 _user, 2 _organisation, 4 _prompt, 8 _environment) saying the
-- value is a JSON string. Filters and groups on them use indexes and parse
-- no JSON.
--
-- feedback_rollup holds, per workspace and 15-minute slot, the count and the
-- sum of value x weight of each score, for all feedback (dim '') and for each
-- string value of _organisation, _prompt and _environment. _user is left out:
-- users are many and each has few rows, which its index finds faster than a
-- rollup as large as the table would. It is kept exact in the same
-- transaction as every write: inserts add to it from the store's code, one
-- upsert for each distinct cell of a whole batch (a trigger would upsert
-- once per row and dimension); updates and deletes, rare, by triggers.
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_user TEXT;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_organisation TEXT;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_prompt TEXT;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_environment TEXT;
-- +goose StatementEnd
-- +goose StatementBegin
ALTER TABLE feedback ADD COLUMN m_strings INTEGER NOT NULL DEFAULT 0;
-- +goose StatementEnd
-- +goose StatementBegin
-- Rows written before this migration: the same rendering, in SQL.
UPDATE feedback SET
    m_user = CASE json_type(metadata, '$._user') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN json_extract(metadata, '$._user') ELSE CAST(json_extract(metadata, '$._user') AS TEXT) END,
    m_organisation = CASE json_type(metadata, '$._organisation') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN json_extract(metadata, '$._organisation') ELSE CAST(json_extract(metadata, '$._organisation') AS TEXT) END,
    m_prompt = CASE json_type(metadata, '$._prompt') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN json_extract(metadata, '$._prompt') ELSE CAST(json_extract(metadata, '$._prompt') AS TEXT) END,
    m_environment = CASE json_type(metadata, '$._environment') WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN json_extract(metadata, '$._environment') ELSE CAST(json_extract(metadata, '$._environment') AS TEXT) END,
    m_strings = (CASE WHEN json_type(metadata, '$._user') = 'text' THEN 1 ELSE 0 END) | (CASE WHEN json_type(metadata, '$._organisation') = 'text' THEN 2 ELSE 0 END) | (CASE WHEN json_type(metadata, '$._prompt') = 'text' THEN 4 ELSE 0 END) | (CASE WHEN json_type(metadata, '$._environment') = 'text' THEN 8 ELSE 0 END);
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
INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
SELECT workspace_id, dim, val, slot, value, count(*), sum(value * weight) FROM (
    SELECT workspace_id, '' AS dim, '' AS val, created_at / 900000000 AS slot, value, weight FROM feedback
    UNION ALL SELECT workspace_id, '_organisation', m_organisation, created_at / 900000000, value, weight FROM feedback WHERE m_strings & 2
    UNION ALL SELECT workspace_id, '_prompt', m_prompt, created_at / 900000000, value, weight FROM feedback WHERE m_strings & 4
    UNION ALL SELECT workspace_id, '_environment', m_environment, created_at / 900000000, value, weight FROM feedback WHERE m_strings & 8
) GROUP BY workspace_id, dim, val, slot, value;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_delete AFTER DELETE ON feedback BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 2 AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 4 AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 8 AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup WHERE workspace_id = OLD.workspace_id
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_update AFTER UPDATE OF workspace_id, value, weight, created_at, m_strings, m_user, m_organisation, m_prompt, m_environment ON feedback BEGIN
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 2 AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 4 AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    UPDATE feedback_rollup SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 8 AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND slot = OLD.created_at / 900000000 AND value = OLD.value;
    DELETE FROM feedback_rollup WHERE workspace_id = OLD.workspace_id
      AND slot = OLD.created_at / 900000000 AND value = OLD.value AND n = 0;
    INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, NEW.created_at / 900000000, NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_organisation', NEW.m_organisation WHERE NEW.m_strings & 2 UNION ALL SELECT '_prompt', NEW.m_prompt WHERE NEW.m_strings & 4 UNION ALL SELECT '_environment', NEW.m_environment WHERE NEW.m_strings & 8) AS d
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER feedback_rollup_update;
DROP TRIGGER feedback_rollup_delete;
DROP TABLE feedback_rollup;
DROP INDEX feedback_workspace_m_user;
DROP INDEX feedback_workspace_m_organisation;
DROP INDEX feedback_workspace_m_prompt;
DROP INDEX feedback_workspace_m_environment;
ALTER TABLE feedback DROP COLUMN m_user;
ALTER TABLE feedback DROP COLUMN m_organisation;
ALTER TABLE feedback DROP COLUMN m_prompt;
ALTER TABLE feedback DROP COLUMN m_environment;
ALTER TABLE feedback DROP COLUMN m_strings;
