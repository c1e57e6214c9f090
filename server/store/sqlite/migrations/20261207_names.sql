-- +goose Up
-- One meaning per name: value is only a feedback's value; a metadata key
-- and its value are meta_key and meta_value in every table; a rollup
-- period's length in seconds is its grain, and slot only the index of a
-- period at its grain; group slots are rollups of groups, counting traces;
-- m_first_bits is a bitmask; the pair entries are metadata entries; a
-- secret is a secret. Renames keep every row and page as it is, and
-- rewrite the indexes that name a renamed column (docs/analytics.md).
ALTER TABLE rollups RENAME COLUMN dim TO meta_key;
ALTER TABLE rollups RENAME COLUMN dim_value TO meta_value;
ALTER TABLE rollups RENAME COLUMN span TO grain;
ALTER TABLE rollups RENAME COLUMN score TO value;

ALTER TABLE group_slots RENAME TO group_rollups;
ALTER TABLE group_rollups RENAME COLUMN key TO meta_key;
ALTER TABLE group_rollups RENAME COLUMN value TO meta_value;
ALTER TABLE group_rollups RENAME COLUMN span TO grain;
ALTER TABLE group_rollups RENAME COLUMN firsts TO traces;

ALTER TABLE feedback_pairs RENAME TO metadata_entries;
ALTER TABLE metadata_entries RENAME COLUMN key TO meta_key;
ALTER TABLE metadata_entries RENAME COLUMN val TO meta_value;

ALTER TABLE trace_values RENAME TO trace_meta_values;
ALTER TABLE trace_meta_values RENAME COLUMN key TO meta_key;
ALTER TABLE trace_meta_values RENAME COLUMN value TO meta_value;

ALTER TABLE feedback RENAME COLUMN m_firsts TO m_first_bits;
ALTER TABLE secrets RENAME COLUMN value TO secret;

-- +goose Down
ALTER TABLE secrets RENAME COLUMN secret TO value;
ALTER TABLE feedback RENAME COLUMN m_first_bits TO m_firsts;

ALTER TABLE trace_meta_values RENAME COLUMN meta_value TO value;
ALTER TABLE trace_meta_values RENAME COLUMN meta_key TO key;
ALTER TABLE trace_meta_values RENAME TO trace_values;

ALTER TABLE metadata_entries RENAME COLUMN meta_value TO val;
ALTER TABLE metadata_entries RENAME COLUMN meta_key TO key;
ALTER TABLE metadata_entries RENAME TO feedback_pairs;

ALTER TABLE group_rollups RENAME COLUMN traces TO firsts;
ALTER TABLE group_rollups RENAME COLUMN grain TO span;
ALTER TABLE group_rollups RENAME COLUMN meta_value TO value;
ALTER TABLE group_rollups RENAME COLUMN meta_key TO key;
ALTER TABLE group_rollups RENAME TO group_slots;

ALTER TABLE rollups RENAME COLUMN value TO score;
ALTER TABLE rollups RENAME COLUMN grain TO span;
ALTER TABLE rollups RENAME COLUMN meta_value TO dim_value;
ALTER TABLE rollups RENAME COLUMN meta_key TO dim;
