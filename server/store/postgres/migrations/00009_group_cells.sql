-- +goose Up
-- Group cells, as in the SQLite store's migration 00009 (see
-- server/store/groupcells.go): for each rollup key, value, span and unit,
-- the rows filed under where the previous row of their chain (same
-- workspace, trace id and value, in (created_at, id) order) lies: nowhere
-- (the smallest bigint), inside the unit (the largest), or in an earlier
-- 15-minute slot (that slot). The rows already stored are filed by
-- migration 00011, which queues them for the filer (filer.go); this one
-- used to file them itself, in SQL, which 00011 would only redo.
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

-- +goose Down
DROP TABLE feedback_group_cells;
