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
	// Rows yields feedback rows as rollup.Row, with their stored Firsts.
	Rows []rollup.Row
	// Rollups yields (workspace_id, dim, span, slot, dim_value, score, n,
	// sum_weighted); Groups (workspace_id, key, span, slot, value, n,
	// firsts, sum_weighted); Entries, the trace values, (workspace_id,
	// trace_id, key, value, created_at in Unix microseconds, id); Pairs,
	// when the store keeps pair entries, (workspace_id, day, key, val,
	// created_at, id).
	Rollups, Groups, Entries, Pairs rollup.Rows
}

// EqualDerived checks that a store's derived data is exactly what its rows
// give: every row's first-feedback flags (Firsts), and every rollup row,
// group slot, trace value entry and pair entry, none missing, none extra,
// none empty.
func EqualDerived(t *testing.T, got Derived) {
	t.Helper()
	firsts := Firsts(got.Rows)
	var want rollup.Deltas
	entries := map[rollup.Entry]rollup.Sums{}
	for _, r := range got.Rows {
		if r.Firsts != firsts[r.ID] {
			t.Errorf("feedback %s (trace %s): first flags %b, want %b", r.ID, r.TraceID, r.Firsts, firsts[r.ID])
		}
		r.Firsts = firsts[r.ID]
		want.Add(&r, 1)
		sp := r.Special()
		for k, v := range sp.Values {
			if v != nil {
				e := rollup.Entry{TraceValue: rollup.TraceValue{TraceRef: rollup.TraceRef{WorkspaceID: r.WorkspaceID, TraceID: r.TraceID},
					Key: rollup.SpecialKeys[k], Value: *v}, CreatedAt: r.CreatedAt.UnixMicro(), ID: r.ID}
				entries[e] = rollup.Sums{N: 1}
			}
		}
	}
	compare(t, "trace value entry", got.Entries, entries, func(r rollup.Rows) (rollup.Entry, rollup.Sums, error) {
		var e rollup.Entry
		return e, rollup.Sums{N: 1}, r.Scan(&e.WorkspaceID, &e.TraceID, &e.Key, &e.Value, &e.CreatedAt, &e.ID)
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
		return k, s, r.Scan(&k.WorkspaceID, &k.Dim, &k.Span, &k.Slot, &k.DimValue, &k.Score, &s.N, &s.SumWeighted)
	})
	groups := map[rollup.GroupKey]rollup.Sums{}
	for _, d := range want.Groups() {
		groups[d.GroupKey] = d.Sums
	}
	compare(t, "group slot", got.Groups, groups, func(r rollup.Rows) (rollup.GroupKey, rollup.Sums, error) {
		var (
			k rollup.GroupKey
			s rollup.Sums
		)
		return k, s, r.Scan(&k.WorkspaceID, &k.Key, &k.Span, &k.Slot, &k.Value, &s.N, &s.Firsts, &s.SumWeighted)
	})
	if got.Pairs == nil {
		return
	}
	add, _ := want.Pairs()
	pairs := map[rollup.PairEntry]rollup.Sums{}
	for _, e := range add {
		pairs[e] = rollup.Sums{N: 1}
	}
	compare(t, "pair entry", got.Pairs, pairs, func(r rollup.Rows) (rollup.PairEntry, rollup.Sums, error) {
		var e rollup.PairEntry
		return e, rollup.Sums{N: 1}, r.Scan(&e.WorkspaceID, &e.Day, &e.Key, &e.Val, &e.CreatedAt, &e.ID)
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
		if !ok || w.N != s.N || w.Firsts != s.Firsts || math.Abs(w.SumWeighted-s.SumWeighted) > 1e-9 {
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

// Firsts is the oracle of first-feedback flags, by the definition and
// nothing cleverer: a row has the bit of a special key (rollup.Bit) when
// no other row of its trace holds the same value of that key and comes
// before it, by time and then id. rows must hold every row of their
// traces.
func Firsts(rows []rollup.Row) map[string]int {
	type value struct {
		ws, trace, value string
		key              int
	}
	first := map[value]*rollup.Row{}
	for i := range rows {
		r := &rows[i]
		for k, v := range r.Special().Values {
			if v == nil {
				continue
			}
			at := value{r.WorkspaceID, r.TraceID, *v, k}
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
