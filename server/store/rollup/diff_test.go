package rollup_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// row is feedback of trace tr, created at t0 plus minutes, with metadata.
func row(id, tr string, minutes int, meta map[string]any) rollup.Row {
	at := t0.Add(time.Duration(minutes) * time.Minute)
	return rollup.Row{Feedback: &store.Feedback{ID: id, WorkspaceID: "w", TraceID: tr, Value: 2, Weight: 0.5,
		Metadata: meta, CreatedAt: at, UpdatedAt: at}}
}

// stored returns rows as a store holds them after writing them: with the
// flags Diff gave them.
func stored(t *testing.T, rows ...rollup.Row) []rollup.Row {
	t.Helper()
	var d rollup.Deltas
	w := rollup.Diff(nil, rows, &d)
	return w.Inserts
}

func firstsOf(rows []rollup.Row) string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s:%b", r.ID, r.Firsts))
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

// A trace's first feedback with a value, by time and then id, carries the
// key's flag; another value of the key, or another key, is flagged apart.
func TestFirstFeedbackCarriesTheFlag(t *testing.T) {
	p := rollup.Bit("_prompt")
	e := rollup.Bit("_environment")
	rows := stored(t,
		row("b", "t", 5, map[string]any{"_prompt": "p1", "_environment": "prod"}),
		row("a", "t", 5, map[string]any{"_prompt": "p1"}), // same time, smaller id: first
		row("c", "t", 1, map[string]any{"_prompt": "p2"}), // earliest, other value
		row("d", "u", 9, map[string]any{"_prompt": "p1"}), // other trace
		row("e", "t", 7, map[string]any{"_prompt": 5}),    // a number renders "5"
		row("f", "t", 8, map[string]any{"_prompt": "5"}),  // the same group as 5
		row("g", "t", 0, map[string]any{"region": "eu"}),  // no special key
		row("h", "t", 6, map[string]any{"_environment": "prod"}),
	)
	want := fmt.Sprint([]string{"a:" + bits(p), "b:" + bits(e), "c:" + bits(p), "d:" + bits(p), "e:" + bits(p), "f:0", "g:0", "h:0"})
	if got := firstsOf(rows); got != want {
		t.Errorf("flags %s, want %s", got, want)
	}
}

func bits(b int) string { return fmt.Sprintf("%b", b) }

// Deleting a trace's first feedback with a value makes its next one the
// first: the slot of the deleted row loses the trace, the next row's gains
// it, and the next row is written with its new flag.
func TestDeletePromotesTheNextFeedback(t *testing.T) {
	meta := map[string]any{"_prompt": "p1"}
	before := stored(t, row("a", "t", 0, meta), row("b", "t", 60, meta), row("c", "t", 120, meta))
	var d rollup.Deltas
	w := rollup.Diff(before, slices.Clone(before[1:]), &d)
	if len(w.Deletes) != 1 || w.Deletes[0].ID != "a" || len(w.Updates) != 1 || w.Updates[0].ID != "b" || w.Updates[0].Firsts != rollup.Bit("_prompt") || len(w.Inserts) != 0 {
		t.Fatalf("writes %+v", w)
	}
	hourOf := func(minutes int) int64 { return t0.Add(time.Duration(minutes)*time.Minute).Unix() / 3600 }
	got := map[int64]rollup.Sums{}
	for _, g := range d.Groups() {
		if g.Span == rollup.Hour {
			got[g.Slot] = g.Sums
		}
	}
	want := map[int64]rollup.Sums{
		hourOf(0):  {N: -1, Firsts: -1, SumWeighted: -1}, // a left, with its trace
		hourOf(60): {Firsts: 1},                          // b stays and now counts the trace
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hour slots %v, want %v", got, want)
	}
}

// An update that takes the value away from the first moves the trace to
// the next feedback with it; one that gives an earlier feedback the value
// moves the trace there.
func TestUpdatesMoveTheFirst(t *testing.T) {
	p1 := map[string]any{"_prompt": "p1"}
	before := stored(t, row("a", "t", 0, map[string]any{}), row("b", "t", 10, p1), row("c", "t", 20, p1))

	after := slices.Clone(before)
	a := *after[0].Feedback
	a.Metadata = p1
	after[0] = rollup.Row{Feedback: &a}
	var d rollup.Deltas
	w := rollup.Diff(before, after, &d)
	if got := firstsOf(append(w.Updates, w.Inserts...)); got != fmt.Sprint([]string{"a:" + bits(rollup.Bit("_prompt")), "b:0"}) {
		t.Errorf("updated rows %s: want a first, b no more", got)
	}
	var firsts int64
	for _, g := range d.Groups() {
		firsts += g.Firsts
	}
	if firsts != 0 {
		t.Errorf("firsts move by %d over all slots, want 0 (the trace moves, it is not added)", firsts)
	}
}

// Deltas of changes that undo each other cancel out, and the sums of a
// trace's rows over all their slots are the rows': feedback, weighted sum
// and one request per value.
func TestDeltasAddUp(t *testing.T) {
	rows := []rollup.Row{
		row("a", "t", 0, map[string]any{"_organisation": "o", "region": "eu"}),
		row("b", "t", 30, map[string]any{"_organisation": "o", "region": "eu"}),
	}
	var d rollup.Deltas
	before := stored(t, rows...)
	rollup.Diff(nil, before, &d)
	rollup.Diff(before, nil, &d)
	if len(d.Rollups()) != 0 || len(d.Groups()) != 0 {
		t.Errorf("insert then delete left %v and %v", d.Rollups(), d.Groups())
	}
	if add, remove := d.Pairs(); len(add)+len(remove) != 0 {
		t.Errorf("insert then delete left pair entries %v, %v", add, remove)
	}

	d = rollup.Deltas{}
	rollup.Diff(nil, stored(t, rows...), &d)
	for _, span := range rollup.Spans {
		var all, org rollup.Sums
		for _, r := range d.Rollups() {
			if r.Span == span && r.Dim == "" {
				all.N, all.SumWeighted = all.N+r.N, all.SumWeighted+r.SumWeighted
			}
		}
		for _, g := range d.Groups() {
			if g.Span == span && g.Key == "_organisation" {
				org.N, org.Firsts, org.SumWeighted = org.N+g.N, org.Firsts+g.Firsts, org.SumWeighted+g.SumWeighted
			}
		}
		if all != (rollup.Sums{N: 2, SumWeighted: 2}) || org != (rollup.Sums{N: 2, Firsts: 1, SumWeighted: 2}) {
			t.Errorf("span %d: all feedback %+v, groups by _organisation %+v", span, all, org)
		}
	}
	var pairs int
	for _, r := range d.Rollups() {
		if r.Dim == "region" {
			if r.Span != rollup.Quarter || r.DimValue != "eu" {
				t.Errorf("region rollup %+v: want quarters of eu only", r)
			}
			pairs += int(r.N)
		}
	}
	if add, _ := d.Pairs(); pairs != 2 || len(add) != 2 {
		t.Errorf("region: %d rolled up, %d pair entries; want 2 and 2", pairs, len(add))
	}
}
