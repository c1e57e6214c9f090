-- +goose Up
-- Settings of the database that every process writing to it must share:
-- model_keys, the metadata keys a feedback's AI model is read from
-- (rollup.ModelOf), as the model rollups were made with them. A database
-- without it gets its model rollups made from its rows when it is opened.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DELETE FROM rollups WHERE meta_key = '' AND meta_value <> '';
