package rollup

import (
	"cmp"
	"slices"

	"github.com/feedbackd/feedbackd/server/store"
)

// RollupKey names one rollup row.
type RollupKey struct {
	WorkspaceID string
	// Dim is the key of the dimension, "" for all feedback; DimValue its
	// string value ("" for all feedback).
	Dim, DimValue string
	Span, Slot    int64
	Score         int
}

// GroupKey names one group slot.
type GroupKey struct {
	WorkspaceID, Key string
	Span, Slot       int64
	// Value is the key's value as text (Special).
	Value string
}

// PairEntry names one pair entry: feedback ID holds Key = Val and was
// created at CreatedAt (Unix microseconds), on UTC day Day.
type PairEntry struct {
	WorkspaceID string
	Day         int64
	Key, Val    string
	CreatedAt   int64
	ID          string
}

// Sums is what a rollup row or a group slot holds, or a change of it.
type Sums struct {
	// N counts feedback, Firsts those that are their trace's first with
	// the slot's value (group slots only), SumWeighted their value x weight.
	N, Firsts   int64
	SumWeighted float64
}

func (s *Sums) add(sign int64, weighted float64, first bool) {
	s.N += sign
	s.SumWeighted += float64(sign) * weighted
	if first {
		s.Firsts += sign
	}
}

// plus adds o to s.
func (s *Sums) plus(o Sums) {
	s.N, s.Firsts, s.SumWeighted = s.N+o.N, s.Firsts+o.Firsts, s.SumWeighted+o.SumWeighted
}

func (s Sums) zero() bool { return s.N == 0 && s.Firsts == 0 && s.SumWeighted == 0 }

// Deltas accumulates how changes move the derived structures. The zero
// value is empty and ready to use.
type Deltas struct {
	rollups map[RollupKey]*Sums
	groups  map[GroupKey]*Sums
	pairs   map[PairEntry]int64
}

// Add adds sign times what row r contributes to every structure, as its
// Firsts say.
func (d *Deltas) Add(r *Row, sign int64) {
	d.init()
	at := r.CreatedAt.UnixMicro()
	weighted := float64(r.Value) * r.Weight
	rollup := func(dim, value string, spans []int64) {
		for _, span := range spans {
			k := RollupKey{r.WorkspaceID, dim, value, span, slotOf(at, span), r.Value}
			sums(d.rollups, k).add(sign, weighted, false)
		}
	}
	rollup("", "", Spans)
	sp := r.Special()
	for _, key := range GroupKeys {
		i := slices.Index(SpecialKeys, key)
		v := sp.Values[i]
		if v == nil {
			continue
		}
		if sp.Strings&(1<<i) != 0 {
			rollup(key, *v, Spans)
		}
		for _, span := range Spans {
			k := GroupKey{r.WorkspaceID, key, span, slotOf(at, span), *v}
			sums(d.groups, k).add(sign, weighted, r.Firsts&(1<<i) != 0)
		}
	}
	for key, v := range r.Metadata {
		if val, ok := PairValue(key, v); ok {
			rollup(key, val, PairSpans)
			d.pairs[PairEntry{r.WorkspaceID, slotOf(at, Day), key, val, at, r.ID}] += sign
		}
	}
}

// moveFirst adds sign times a first-feedback flag of the row of e, which
// stays where it is: only group slots count firsts.
func (d *Deltas) moveFirst(e Entry, sign int64) {
	if !slices.Contains(GroupKeys, e.Key) {
		return
	}
	d.init()
	for _, span := range Spans {
		sums(d.groups, GroupKey{e.WorkspaceID, e.Key, span, slotOf(e.CreatedAt, span), e.Value}).Firsts += sign
	}
}

func (d *Deltas) init() {
	if d.rollups == nil {
		d.rollups, d.groups, d.pairs = map[RollupKey]*Sums{}, map[GroupKey]*Sums{}, map[PairEntry]int64{}
	}
}

func sums[K comparable](m map[K]*Sums, k K) *Sums {
	s := m[k]
	if s == nil {
		s = &Sums{}
		m[k] = s
	}
	return s
}

// Merge adds every delta of o to d.
func (d *Deltas) Merge(o *Deltas) {
	if o.rollups == nil {
		return
	}
	d.init()
	for k, s := range o.rollups {
		sums(d.rollups, k).plus(*s)
	}
	for k, s := range o.groups {
		sums(d.groups, k).plus(*s)
	}
	for k, n := range o.pairs {
		d.pairs[k] += n
	}
}

// RollupDelta is a change of one rollup row.
type RollupDelta struct {
	RollupKey
	Sums
}

// GroupDelta is a change of one group slot.
type GroupDelta struct {
	GroupKey
	Sums
}

// Rollups returns the changes of rollup rows, in the order of the stores'
// keys (so that concurrent transactions lock shared rows in one order, and
// an upsert walks its pages in turn), leaving out those that cancelled out.
func (d *Deltas) Rollups() []RollupDelta {
	out := make([]RollupDelta, 0, len(d.rollups))
	for k, s := range d.rollups {
		if !s.zero() {
			out = append(out, RollupDelta{k, *s})
		}
	}
	slices.SortFunc(out, func(a, b RollupDelta) int {
		x, y := a.RollupKey, b.RollupKey
		return cmp.Or(cmp.Compare(x.WorkspaceID, y.WorkspaceID), cmp.Compare(x.Span, y.Span), cmp.Compare(x.Slot, y.Slot),
			cmp.Compare(x.Dim, y.Dim), cmp.Compare(x.DimValue, y.DimValue), cmp.Compare(x.Score, y.Score))
	})
	return out
}

// Groups returns the changes of group slots, in key order, as Rollups.
func (d *Deltas) Groups() []GroupDelta {
	out := make([]GroupDelta, 0, len(d.groups))
	for k, s := range d.groups {
		if !s.zero() {
			out = append(out, GroupDelta{k, *s})
		}
	}
	slices.SortFunc(out, func(a, b GroupDelta) int {
		x, y := a.GroupKey, b.GroupKey
		return cmp.Or(cmp.Compare(x.WorkspaceID, y.WorkspaceID), cmp.Compare(x.Span, y.Span), cmp.Compare(x.Slot, y.Slot),
			cmp.Compare(x.Key, y.Key), cmp.Compare(x.Value, y.Value))
	})
	return out
}

// Pairs returns the pair entries to add and those to remove, in key order.
func (d *Deltas) Pairs() (add, remove []PairEntry) {
	for k, n := range d.pairs {
		switch {
		case n > 0:
			add = append(add, k)
		case n < 0:
			remove = append(remove, k)
		}
	}
	order := func(a, b PairEntry) int {
		return cmp.Or(cmp.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.Day, b.Day), cmp.Compare(a.Key, b.Key),
			cmp.Compare(a.Val, b.Val), cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(add, order)
	slices.SortFunc(remove, order)
	return add, remove
}

// Shrinks says whether a rollup row or group slot may have lost its last
// feedback, so that the store should drop the ones left empty.
func (d *Deltas) Shrinks() bool {
	return shrinks(d.rollups) || shrinks(d.groups)
}

func shrinks[K comparable](m map[K]*Sums) bool {
	for _, s := range m {
		if s.N < 0 {
			return true
		}
	}
	return false
}

// slotOf is the slot of span that Unix microsecond at falls in.
func slotOf(at, span int64) int64 { return store.FloorDiv(at, span*1_000_000) }
