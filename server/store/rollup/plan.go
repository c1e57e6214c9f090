package rollup

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// Read is a range of slots of one span to read from a derived structure.
type Read struct {
	Span, First, Last int64
}

// Plan says how a store answers a query: Reads from a derived structure,
// coarsest first, and Raw, the ranges (Unix microseconds, inclusive) left
// to the feedback rows.
type Plan struct {
	Reads []Read
	Raw   [][2]int64
}

// cover adds to p reads of the whole slots of spans (coarsest first) in
// [a, b], and leaves what no span covers to Raw.
func (p *Plan) cover(a, b int64, spans []int64) {
	if a > b {
		return
	}
	if len(spans) == 0 {
		p.Raw = append(p.Raw, [2]int64{a, b})
		return
	}
	unit := spans[0] * 1_000_000
	first, last := -store.FloorDiv(-a, unit), store.FloorDiv(b+1, unit)-1
	if first > last {
		p.cover(a, b, spans[1:])
		return
	}
	p.Reads = append(p.Reads, Read{Span: spans[0], First: first, Last: last})
	p.cover(a, first*unit-1, spans[1:])
	p.cover((last+1)*unit, b, spans[1:])
}

// GraphPlan is how a store answers a graph (Store.FeedbackCells).
type GraphPlan struct {
	Plan
	// Dim and DimValue name the rollups' dimension when Reads is not
	// empty.
	Dim, DimValue string
}

// PlanGraph splits a graph between the rollups and the rows. Rollups
// answer a query with no filter but time, or filtered by one string pair
// of a dimension; they hold no trace ids nor weighted values. A span
// serves only when the buckets are made of its slots (their size and
// shift are multiples of it): day buckets at UTC+01:00 read hours.
func PlanGraph(q store.AnalyticsQuery) GraphPlan {
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	dim, value, spans, ok := graphDim(q)
	if !ok {
		return GraphPlan{Plan: Plan{Raw: [][2]int64{{from, to}}}}
	}
	var usable []int64
	for _, span := range spans {
		if q.BucketSize%span == 0 && q.BucketShift%span == 0 {
			usable = append(usable, span)
		}
	}
	p := GraphPlan{Dim: dim, DimValue: value}
	p.cover(from, to, usable)
	return p
}

// graphDim says which rollup dimension answers q, and at which spans.
func graphDim(q store.AnalyticsQuery) (dim, value string, spans []int64, ok bool) {
	if len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil || len(q.Metadata) > 1 {
		return "", "", nil, false
	}
	for k, v := range q.Metadata {
		if s, isString := v.(string); isString && slices.Contains(GroupKeys, k) {
			return k, s, Spans, true
		}
		if s, ok := PairValue(k, v); ok {
			return k, s, PairSpans, true
		}
		return "", "", nil, false
	}
	return "", "", Spans, true
}

// GroupPlan is how a store answers groups by a GroupKeys key
// (Store.MetadataGroups) from group slots.
type GroupPlan struct {
	Plan
	// Only, when not empty, is the only value to answer: the query
	// filters by the grouped key itself.
	Only string
}

// PlanGroups says whether group slots answer groups by key over q, and
// how: q filters by nothing but its time range, or by the grouped key
// equal to a string. Slots hold every value as text, as groups render
// it, and a value other than a string renders as JSON; so a string that
// is not valid JSON names exactly the slots of the rows holding it.
func PlanGroups(key string, q store.AnalyticsQuery) (GroupPlan, bool) {
	var p GroupPlan
	if !slices.Contains(GroupKeys, key) || len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil || len(q.Metadata) > 1 {
		return p, false
	}
	for k, v := range q.Metadata {
		s, isString := v.(string)
		if k != key || !isString || json.Valid([]byte(s)) {
			return p, false
		}
		p.Only = s
	}
	p.cover(q.From.UnixMicro(), q.To.UnixMicro(), Spans)
	return p, true
}

// Cells answers the plan: raw adds the cells of the rows created in
// [from, to] (Unix microseconds), slots those of a range of rollup slots,
// all from one snapshot.
func (p GraphPlan) Cells(raw func(from, to int64, cs Cells) error, slots func(r Read, cs Cells) error) ([]store.Cell, error) {
	cs := Cells{}
	for _, r := range p.Raw {
		if err := raw(r[0], r[1], cs); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Reads {
		if err := slots(r, cs); err != nil {
			return nil, err
		}
	}
	return cs.Sorted(), nil
}

// GroupReads are what a store reads, from one snapshot, for groups from
// group slots.
type GroupReads struct {
	// Slots adds the group slots of a range to ts, Raw the rows created
	// in [from, to] (Unix microseconds); both as (value, firsts,
	// feedback, their value x weight), for AddRows.
	Slots func(r Read, ts Tallies) error
	Raw   func(from, to int64, ts Tallies) error
	// LastSeen is the newest CreatedAt of a value's feedback in the
	// query's range.
	LastSeen func(value string) (time.Time, error)
}

// Groups answers the plan: the groups ranked as Store.MetadataGroups
// ranks them, from offset on, at most limit, and how many there are.
func (p GroupPlan) Groups(rd GroupReads, offset, limit int) ([]store.Group, int, error) {
	ts := Tallies{}
	for _, r := range p.Reads {
		if err := rd.Slots(r, ts); err != nil {
			return nil, 0, err
		}
	}
	for _, r := range p.Raw {
		if err := rd.Raw(r[0], r[1], ts); err != nil {
			return nil, 0, err
		}
	}
	groups := ts.groups(p.Only)
	page := groups[min(offset, len(groups)):min(offset+limit, len(groups))]
	for i := range page {
		last, err := rd.LastSeen(page[i].Value)
		if err != nil {
			return nil, 0, err
		}
		page[i].LastSeen = last.UTC()
	}
	return page, len(groups), nil
}

// Cells accumulates graph cells by bucket and score.
type Cells map[[2]int64]*store.Cell

// Add adds c to the cell of its bucket and score.
func (cs Cells) Add(c store.Cell) {
	k := [2]int64{c.Bucket, int64(c.Value)}
	if have := cs[k]; have != nil {
		have.Count += c.Count
		have.SumWeighted += c.SumWeighted
		return
	}
	cs[k] = &c
}

// Sorted returns the cells with feedback by bucket, then score.
func (cs Cells) Sorted() []store.Cell {
	out := make([]store.Cell, 0, len(cs))
	for _, c := range cs {
		if c.Count != 0 {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b store.Cell) int {
		return cmp.Or(cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.Value, b.Value))
	})
	return out
}

// Tallies accumulates groups by value: what group slots and rows say.
type Tallies map[string]*Sums

// Add adds to the tally of value.
func (ts Tallies) Add(value string, s Sums) {
	sums(ts, value).plus(s)
}

// Rows is what both stores' drivers (database/sql, pgx) give of a query's
// result; the caller closes it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// AddRows adds a query's rows of (value, firsts, feedback, their value x
// weight).
func (ts Tallies) AddRows(rows Rows) error {
	for rows.Next() {
		var (
			v string
			s Sums
		)
		if err := rows.Scan(&v, &s.Firsts, &s.N, &s.SumWeighted); err != nil {
			return err
		}
		ts.Add(v, s)
	}
	return rows.Err()
}

// groups returns the groups that have feedback, ranked as
// Store.MetadataGroups ranks them (LastSeen not set); with only, just that
// value's group.
func (ts Tallies) groups(only string) []store.Group {
	var groups []store.Group
	for v, t := range ts {
		if t.N > 0 && (only == "" || v == only) {
			groups = append(groups, store.Group{Value: v, Requests: t.Firsts, AvgWeighted: t.SumWeighted / float64(t.N)})
		}
	}
	slices.SortFunc(groups, func(a, b store.Group) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Value, b.Value))
	})
	return groups
}
