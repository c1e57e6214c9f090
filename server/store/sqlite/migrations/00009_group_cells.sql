-- +goose Up
-- Group cells (see server/store/groupcells.go): for each rollup key
-- (_organisation, _prompt, _environment), value, span (UTC day, hour,
-- 15-minute slot) and unit of that span, the rows filed under where the
-- previous row of their chain (same workspace, trace id and value) lies:
-- nowhere, inside the unit, or in an earlier slot. Metadata groups by those
-- keys count distinct trace ids from these cells instead of every row.
-- The writer files rows in bulk like the rollups; group_fold.folded is the
-- largest rowid filed. It starts at 0: a database migrated with rows in it
-- has them filed by the writer in the background, a chunk at a time, and
-- groups read the rows until it has caught up.
CREATE TABLE feedback_group_cells (
    workspace_id TEXT NOT NULL,
    dim          TEXT NOT NULL,
    span         INTEGER NOT NULL,
    unit         INTEGER NOT NULL,
    dim_value    TEXT NOT NULL,
    prev_slot    INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    sum_weighted REAL NOT NULL,
    PRIMARY KEY (workspace_id, dim, span, unit, dim_value, prev_slot)
) WITHOUT ROWID;
CREATE TABLE group_fold (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    folded INTEGER NOT NULL
);
INSERT INTO group_fold (id, folded) VALUES (1, 0);

-- +goose Down
DROP TABLE group_fold;
DROP TABLE feedback_group_cells;
