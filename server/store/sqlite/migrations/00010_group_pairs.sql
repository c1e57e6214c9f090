-- +goose Up
-- Group cells under a filter on another rollup key (store.GroupDims: groups
-- by _prompt filtered by _environment, and so on). Every row is filed again
-- from the first: the cells are emptied and the mark set back, and the
-- writer refiles the rows in the background, a chunk per transaction while
-- no write waits, as after migration 00009; groups read the rows until it
-- has caught up.
DELETE FROM feedback_group_cells;
UPDATE group_fold SET folded = 0;

-- +goose Down
DELETE FROM feedback_group_cells WHERE dim LIKE '%|%';
