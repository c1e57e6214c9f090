-- +goose Up
-- One meaning per name, as in the SQLite store's migration of the same
-- version: value is only a feedback's value; a metadata key and its value
-- are meta_key and meta_value; a rollup period's length is its grain;
-- group slots are rollups of groups, counting traces; m_first_bits is a
-- bitmask; a secret is a secret. Renames rewrite the index and constraint
-- definitions that name a column; the primary keys' indexes are renamed
-- with their tables.
ALTER TABLE rollups RENAME COLUMN dim TO meta_key;
ALTER TABLE rollups RENAME COLUMN dim_value TO meta_value;
ALTER TABLE rollups RENAME COLUMN span TO grain;
ALTER TABLE rollups RENAME COLUMN score TO value;

ALTER TABLE group_slots RENAME TO group_rollups;
ALTER INDEX group_slots_pkey RENAME TO group_rollups_pkey;
ALTER TABLE group_rollups RENAME COLUMN key TO meta_key;
ALTER TABLE group_rollups RENAME COLUMN value TO meta_value;
ALTER TABLE group_rollups RENAME COLUMN span TO grain;
ALTER TABLE group_rollups RENAME COLUMN firsts TO traces;

ALTER TABLE trace_values RENAME TO trace_meta_values;
ALTER INDEX trace_values_pkey RENAME TO trace_meta_values_pkey;
ALTER TABLE trace_meta_values RENAME COLUMN key TO meta_key;
ALTER TABLE trace_meta_values RENAME COLUMN value TO meta_value;

ALTER TABLE feedback RENAME COLUMN m_firsts TO m_first_bits;
ALTER TABLE secrets RENAME COLUMN value TO secret;

-- +goose Down
ALTER TABLE secrets RENAME COLUMN secret TO value;
ALTER TABLE feedback RENAME COLUMN m_first_bits TO m_firsts;

ALTER TABLE trace_meta_values RENAME COLUMN meta_value TO value;
ALTER TABLE trace_meta_values RENAME COLUMN meta_key TO key;
ALTER INDEX trace_meta_values_pkey RENAME TO trace_values_pkey;
ALTER TABLE trace_meta_values RENAME TO trace_values;

ALTER TABLE group_rollups RENAME COLUMN traces TO firsts;
ALTER TABLE group_rollups RENAME COLUMN grain TO span;
ALTER TABLE group_rollups RENAME COLUMN meta_value TO value;
ALTER TABLE group_rollups RENAME COLUMN meta_key TO key;
ALTER INDEX group_rollups_pkey RENAME TO group_slots_pkey;
ALTER TABLE group_rollups RENAME TO group_slots;

ALTER TABLE rollups RENAME COLUMN value TO score;
ALTER TABLE rollups RENAME COLUMN grain TO span;
ALTER TABLE rollups RENAME COLUMN meta_value TO dim_value;
ALTER TABLE rollups RENAME COLUMN meta_key TO dim;
