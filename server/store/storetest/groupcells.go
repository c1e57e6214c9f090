package storetest

import (
	"math"
	"testing"

	"github.com/feedbackd/feedbackd/server/store"
)

// EqualGroupCells checks that a store's group cells, stored as rows of
// (workspace_id, dim, span, unit, dim_value, prev_slot, n, sum_weighted),
// are exactly the cells of want that hold rows.
func EqualGroupCells(t *testing.T, stored store.Rows, want store.GroupCells) {
	t.Helper()
	got := 0
	for stored.Next() {
		var (
			k store.GroupCellKey
			c store.GroupCell
		)
		if err := stored.Scan(&k.WorkspaceID, &k.Dim, &k.Span, &k.Unit, &k.Value, &k.PrevSlot, &c.N, &c.SumWeighted); err != nil {
			t.Fatal(err)
		}
		if w := want[k]; w == nil || w.N != c.N || math.Abs(w.SumWeighted-c.SumWeighted) > 1e-9 {
			t.Fatalf("stored cell %+v = %+v, want %+v", k, c, w)
		}
		got++
	}
	if err := stored.Err(); err != nil {
		t.Fatal(err)
	}
	nonEmpty := 0
	for _, c := range want {
		if c.N != 0 {
			nonEmpty++
		}
	}
	if got != nonEmpty {
		t.Fatalf("%d cells stored, want %d", got, nonEmpty)
	}
}
