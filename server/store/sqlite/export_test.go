package sqlite

import (
	"context"
	"database/sql"
	"testing"

	"github.com/feedbackd/feedbackd/server/store/rollup"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// CheckDerived checks that the derived data of the database at path is
// exactly what its rows give (storetest.EqualDerived).
func CheckDerived(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	query := func(q string) *sql.Rows {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rows.Close() })
		return rows
	}
	var d storetest.Derived
	if d.ModelKeys, err = modelKeys(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	rows := query(`SELECT ` + rowColumns + ` FROM feedback`)
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			t.Fatal(err)
		}
		d.Rows = append(d.Rows, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	d.Rollups = query(`SELECT workspace_id, meta_key, grain, slot, meta_value, value, n, sum_weighted FROM rollups`)
	d.GroupRollups = query(`SELECT workspace_id, meta_key, grain, slot, meta_value, n, traces, sum_weighted FROM group_rollups`)
	d.TraceEntries = query(`SELECT workspace_id, trace_id, meta_key, meta_value, created_at, id FROM trace_meta_values`)
	d.MetadataEntries = query(`SELECT workspace_id, day, meta_key, meta_value, created_at, id FROM metadata_entries`)
	storetest.EqualDerived(t, d)
}

var _ rollup.Rows = (*sql.Rows)(nil)
