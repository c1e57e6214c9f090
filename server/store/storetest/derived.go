package storetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Derived is a store's derived data as stored, for EqualDerived: the rows
// of its queries, in any order.
type Derived struct {
	// Rows yields feedback rows as rollup.Row, with their stored FirstBits.
	Rows []rollup.Row
	// Rollups yields (workspace_id, meta_key, grain, slot, meta_value,
	// value, n, sum_weighted); GroupRollups (workspace_id, meta_key,
	// grain, slot, meta_value, n, traces, sum_weighted); TraceEntries, the
	// trace meta values, (workspace_id, trace_id, meta_key, meta_value,
	// created_at in Unix microseconds, id); MetadataEntries, when the
	// store keeps them, (workspace_id, day, meta_key, meta_value,
	// created_at, id).
	Rollups, GroupRollups, TraceEntries, MetadataEntries rollup.Rows
	// ModelKeys are the database's model keys.
	ModelKeys []string
}

// EqualDerived checks that a store's derived data is exactly what its rows
// give: every row's first-feedback flags (FirstBits), and every rollup
// row, group rollup, trace entry and metadata entry, none missing, none
// extra, none empty.
func EqualDerived(t *testing.T, got Derived) {
	t.Helper()
	firstBits := FirstBits(got.Rows)
	if got.ModelKeys == nil {
		t.Fatal("the database has no model keys")
	}
	want := rollup.Deltas{ModelKeys: got.ModelKeys}
	entries := map[rollup.TraceEntry]rollup.Sums{}
	for _, r := range got.Rows {
		if r.FirstBits != firstBits[r.ID] {
			t.Errorf("feedback %s (trace %s): first flags %b, want %b", r.ID, r.TraceID, r.FirstBits, firstBits[r.ID])
		}
		r.FirstBits = firstBits[r.ID]
		want.Add(&r, 1)
		sp := r.Special()
		for k, v := range sp.MetaValues {
			if v != nil {
				e := rollup.TraceEntry{TraceMetaValue: rollup.TraceMetaValue{TraceRef: rollup.TraceRef{WorkspaceID: r.WorkspaceID, TraceID: r.TraceID},
					MetaKey: rollup.SpecialKeys[k], MetaValue: *v}, CreatedAt: r.CreatedAt.UnixMicro(), ID: r.ID}
				entries[e] = rollup.Sums{N: 1}
			}
		}
	}
	compare(t, "trace entry", got.TraceEntries, entries, func(r rollup.Rows) (rollup.TraceEntry, rollup.Sums, error) {
		var e rollup.TraceEntry
		return e, rollup.Sums{N: 1}, r.Scan(&e.WorkspaceID, &e.TraceID, &e.MetaKey, &e.MetaValue, &e.CreatedAt, &e.ID)
	})

	rollups := map[rollup.RollupKey]rollup.Sums{}
	for _, d := range want.Rollups() {
		rollups[d.RollupKey] = d.Sums
	}
	compare(t, "rollup", got.Rollups, rollups, func(r rollup.Rows) (rollup.RollupKey, rollup.Sums, error) {
		var (
			k rollup.RollupKey
			s rollup.Sums
		)
		return k, s, r.Scan(&k.WorkspaceID, &k.MetaKey, &k.Grain, &k.Slot, &k.MetaValue, &k.Value, &s.N, &s.SumWeighted)
	})
	groups := map[rollup.GroupKey]rollup.Sums{}
	for _, d := range want.Groups() {
		groups[d.GroupKey] = d.Sums
	}
	compare(t, "group rollup", got.GroupRollups, groups, func(r rollup.Rows) (rollup.GroupKey, rollup.Sums, error) {
		var (
			k rollup.GroupKey
			s rollup.Sums
		)
		return k, s, r.Scan(&k.WorkspaceID, &k.MetaKey, &k.Grain, &k.Slot, &k.MetaValue, &s.N, &s.Traces, &s.SumWeighted)
	})
	if got.MetadataEntries == nil {
		return
	}
	add, _ := want.MetadataEntries()
	metadataEntries := map[rollup.MetadataEntry]rollup.Sums{}
	for _, e := range add {
		metadataEntries[e] = rollup.Sums{N: 1}
	}
	compare(t, "metadata entry", got.MetadataEntries, metadataEntries, func(r rollup.Rows) (rollup.MetadataEntry, rollup.Sums, error) {
		var e rollup.MetadataEntry
		return e, rollup.Sums{N: 1}, r.Scan(&e.WorkspaceID, &e.Day, &e.MetaKey, &e.MetaValue, &e.CreatedAt, &e.ID)
	})
}

// compare checks that the stored rows of a structure are exactly want.
func compare[K comparable](t *testing.T, what string, rows rollup.Rows, want map[K]rollup.Sums, scan func(rollup.Rows) (K, rollup.Sums, error)) {
	t.Helper()
	seen := 0
	for rows.Next() {
		k, s, err := scan(rows)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		w, ok := want[k]
		if !ok || w.N != s.N || w.Traces != s.Traces || math.Abs(w.SumWeighted-s.SumWeighted) > 1e-9 {
			t.Errorf("stored %s %+v = %+v, want %s", what, k, s, describe(w, ok))
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if seen != len(want) {
		t.Errorf("%d %ss stored, want %d", seen, what, len(want))
	}
}

func describe(s rollup.Sums, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%+v", s)
}

// FirstBits is the oracle of first-feedback flags, by the definition and
// nothing cleverer: a row has the bit of a special key (rollup.Bit) when
// no other row of its trace holds the same meta value of that key and
// comes before it, by time and then id. rows must hold every row of their
// traces.
func FirstBits(rows []rollup.Row) map[string]int {
	type metaValue struct {
		ws, trace, metaValue string
		key                  int
	}
	first := map[metaValue]*rollup.Row{}
	for i := range rows {
		r := &rows[i]
		for k, v := range r.Special().MetaValues {
			if v == nil {
				continue
			}
			at := metaValue{r.WorkspaceID, r.TraceID, *v, k}
			if have := first[at]; have == nil || r.CreatedAt.Before(have.CreatedAt) || r.CreatedAt.Equal(have.CreatedAt) && r.ID < have.ID {
				first[at] = r
			}
		}
	}
	out := map[string]int{}
	for i := range rows {
		out[rows[i].ID] = 0
	}
	for v, r := range first {
		out[r.ID] |= 1 << v.key
	}
	return out
}
