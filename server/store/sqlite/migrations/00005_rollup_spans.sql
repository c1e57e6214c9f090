-- +goose Up
-- Coarser rollups: the same sums per hour and per (UTC) day. A graph whose
-- buckets are whole hours or days reads these for the whole hours or days of
-- its range, the 15-minute slots of feedback_rollup only around its ends,
-- and the rows only inside partial slots: 30 days of day buckets are 30
-- rows per score instead of 2880. Inserts add to it from the store's code
-- with feedback_rollup; updates and deletes by the triggers below.
-- +goose StatementBegin
CREATE TABLE feedback_rollup_coarse (
    workspace_id TEXT NOT NULL,
    dim          TEXT NOT NULL,
    dim_value    TEXT NOT NULL,
    span         INTEGER NOT NULL,
    slot         INTEGER NOT NULL,
    value        INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, dim, dim_value, span, slot, value)
) WITHOUT ROWID;
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
SELECT workspace_id, dim, dim_value, 3600, slot / 4, value, sum(n), sum(sum_weighted)
FROM feedback_rollup GROUP BY workspace_id, dim, dim_value, slot / 4, value;
-- +goose StatementEnd
-- +goose StatementBegin
INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
SELECT workspace_id, dim, dim_value, 86400, slot / 96, value, sum(n), sum(sum_weighted)
FROM feedback_rollup GROUP BY workspace_id, dim, dim_value, slot / 96, value;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_coarse_delete AFTER DELETE ON feedback BEGIN
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 2 AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 4 AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 8 AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse WHERE workspace_id = OLD.workspace_id
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value AND n = 0;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 2 AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 4 AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 8 AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse WHERE workspace_id = OLD.workspace_id
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value AND n = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feedback_rollup_coarse_update AFTER UPDATE OF workspace_id, value, weight, created_at, m_strings, m_user, m_organisation, m_prompt, m_environment ON feedback BEGIN
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 2 AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 4 AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 8 AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse WHERE workspace_id = OLD.workspace_id
      AND span = 3600 AND slot = OLD.created_at / 3600000000 AND value = OLD.value AND n = 0;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE 1 AND workspace_id = OLD.workspace_id AND dim = '' AND dim_value = ''
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 2 AND workspace_id = OLD.workspace_id AND dim = '_organisation' AND dim_value = OLD.m_organisation
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 4 AND workspace_id = OLD.workspace_id AND dim = '_prompt' AND dim_value = OLD.m_prompt
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    UPDATE feedback_rollup_coarse SET n = n - 1, sum_weighted = sum_weighted - OLD.value * OLD.weight
    WHERE OLD.m_strings & 8 AND workspace_id = OLD.workspace_id AND dim = '_environment' AND dim_value = OLD.m_environment
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value;
    DELETE FROM feedback_rollup_coarse WHERE workspace_id = OLD.workspace_id
      AND span = 86400 AND slot = OLD.created_at / 86400000000 AND value = OLD.value AND n = 0;
    INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
    SELECT NEW.workspace_id, d.dim, d.val, s.span, NEW.created_at / (s.span * 1000000), NEW.value, 1, NEW.value * NEW.weight
    FROM (SELECT '' AS dim, '' AS val UNION ALL SELECT '_organisation', NEW.m_organisation WHERE NEW.m_strings & 2 UNION ALL SELECT '_prompt', NEW.m_prompt WHERE NEW.m_strings & 4 UNION ALL SELECT '_environment', NEW.m_environment WHERE NEW.m_strings & 8) AS d, (SELECT 3600 AS span UNION ALL SELECT 86400) AS s
    WHERE true
    ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
        n = n + 1, sum_weighted = sum_weighted + excluded.sum_weighted;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER feedback_rollup_coarse_update;
DROP TRIGGER feedback_rollup_coarse_delete;
DROP TABLE feedback_rollup_coarse;
