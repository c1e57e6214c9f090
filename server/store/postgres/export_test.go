package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// CheckDerived checks that the derived data of the database at url is
// exactly what its rows give (storetest.EqualDerived).
func CheckDerived(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var open []pgx.Rows
	defer func() {
		for _, rows := range open {
			rows.Close()
		}
	}()
	query := func(q string) pgx.Rows {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, rows)
		return rows
	}
	var d storetest.Derived
	if d.ModelKeys, err = modelKeys(ctx, pool); err != nil {
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
	d.Rollups = query(`SELECT workspace_id::text, meta_key, grain::bigint, slot, meta_value, value::int, n, sum_weighted FROM rollups`)
	d.GroupRollups = query(`SELECT workspace_id::text, meta_key, grain::bigint, slot, meta_value, n, traces, sum_weighted FROM group_rollups`)
	d.TraceEntries = query(`SELECT workspace_id::text, trace_id, meta_key, meta_value, (extract(epoch FROM created_at) * 1000000)::bigint, id::text FROM trace_meta_values`)
	storetest.EqualDerived(t, d)
}
