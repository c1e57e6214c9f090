package rollup

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// Read is a range of slots of one grain to read from a derived structure.
type Read struct {
	Grain, First, Last int64
}

// Plan says how a store answers a query: Reads from a derived structure,
// coarsest first, and Raw, the ranges (Unix microseconds, inclusive) left
// to the feedback rows.
type Plan struct {
	Reads []Read
	Raw   [][2]int64
}

// cover adds to p reads of the whole slots of grains (coarsest first) in
// [a, b], and leaves what no grain covers to Raw.
func (p *Plan) cover(a, b int64, grains []int64) {
	if a > b {
		return
	}
	if len(grains) == 0 {
		p.Raw = append(p.Raw, [2]int64{a, b})
		return
	}
	unit := grains[0] * 1_000_000
	first, last := -store.FloorDiv(-a, unit), store.FloorDiv(b+1, unit)-1
	if first > last {
		p.cover(a, b, grains[1:])
		return
	}
	p.Reads = append(p.Reads, Read{Grain: grains[0], First: first, Last: last})
	p.cover(a, first*unit-1, grains[1:])
	p.cover((last+1)*unit, b, grains[1:])
}

// GraphPlan is how a store answers a graph (Store.FeedbackCells).
type GraphPlan struct {
	Plan
	// MetaKey and MetaValues name the rollups to read when Reads is not
	// empty ("" and "" for all feedback), which hold disjoint feedback.
	MetaKey    string
	MetaValues []string
}

// PlanGraph splits a graph between the rollups and the rows. Rollups
// answer a query with no filter but time, filtered by one rolled-up key
// and string value, or by models alone; they hold no trace ids nor
// weighted values. A
// grain serves only when the buckets are made of its slots (their size
// and shift are multiples of it): day buckets at UTC+01:00 read hours.
func PlanGraph(q store.AnalyticsQuery) GraphPlan {
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	metaKey, metaValues, grains, ok := graphRollups(q)
	if !ok {
		return GraphPlan{Plan: Plan{Raw: [][2]int64{{from, to}}}}
	}
	var usable []int64
	for _, grain := range grains {
		if q.BucketSize%grain == 0 && q.BucketShift%grain == 0 {
			usable = append(usable, grain)
		}
	}
	p := GraphPlan{MetaKey: metaKey, MetaValues: metaValues}
	p.cover(from, to, usable)
	return p
}

// graphRollups says which rollups answer q, and at which grains.
func graphRollups(q store.AnalyticsQuery) (metaKey string, metaValues []string, grains []int64, ok bool) {
	if len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil || len(q.Metadata) > 1 || len(q.Metadata) > 0 && len(q.OrgModels) > 0 {
		return "", nil, nil, false
	}
	if len(q.OrgModels) > 0 {
		return ModelMetaKey, OrgModelDimensions(q.OrgModels), Grains, true
	}
	for k, v := range q.Metadata {
		if s, isString := v.(string); isString && slices.Contains(GroupKeys, k) {
			return k, []string{s}, Grains, true
		}
		if s, ok := EntryValue(k, v); ok {
			return k, []string{s}, EntryGrains, true
		}
		return "", nil, nil, false
	}
	return "", []string{""}, Grains, true
}

// GroupPlan is how a store answers groups by a GroupKeys key
// (Store.MetadataGroups) from group rollups.
type GroupPlan struct {
	Plan
	// Only, when not empty, is the only meta value to answer: the query
	// filters by the grouped key itself.
	Only string
}

// PlanGroups says whether group rollups answer groups by key over q, and
// how: q filters by nothing but its time range, or by the grouped key
// equal to a string. Group rollups hold every meta value as text, as
// groups render it, and a meta value other than a string renders as
// JSON; so a string that is not valid JSON names exactly the group
// rollups of the rows holding it.
func PlanGroups(key string, q store.AnalyticsQuery) (GroupPlan, bool) {
	var p GroupPlan
	if !slices.Contains(GroupKeys, key) || len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil || len(q.Metadata) > 1 || len(q.OrgModels) > 0 {
		return p, false
	}
	for k, v := range q.Metadata {
		s, isString := v.(string)
		if k != key || !isString || json.Valid([]byte(s)) {
			return p, false
		}
		p.Only = s
	}
	p.cover(q.From.UnixMicro(), q.To.UnixMicro(), Grains)
	return p, true
}

// Cells answers the plan: raw adds the cells of the rows created in
// [from, to] (Unix microseconds), rollups those of a range of slots of
// the rollups of one meta value, all from one snapshot.
func (p GraphPlan) Cells(raw func(from, to int64, cs Cells) error, rollups func(r Read, metaValue string, cs Cells) error) ([]store.Cell, error) {
	cs := Cells{}
	for _, r := range p.Raw {
		if err := raw(r[0], r[1], cs); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Reads {
		for _, v := range p.MetaValues {
			if err := rollups(r, v, cs); err != nil {
				return nil, err
			}
		}
	}
	return cs.Sorted(), nil
}

// GroupReads are what a store reads, from one snapshot, for groups from
// group rollups.
type GroupReads struct {
	// Rollups adds the group rollups of a range of slots to ts, Raw the
	// rows created in [from, to] (Unix microseconds); both as (meta value,
	// traces, feedback, their value x weight), for AddRows.
	Rollups func(r Read, ts Tallies) error
	Raw     func(from, to int64, ts Tallies) error
	// LastSeen is the newest CreatedAt of a meta value's feedback in the
	// query's range.
	LastSeen func(metaValue string) (time.Time, error)
}

// Groups answers the plan: the groups ranked as Store.MetadataGroups
// ranks them, from offset on, at most limit, and how many there are.
func (p GroupPlan) Groups(rd GroupReads, offset, limit int) ([]store.Group, int, error) {
	ts := Tallies{}
	for _, r := range p.Reads {
		if err := rd.Rollups(r, ts); err != nil {
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
		last, err := rd.LastSeen(page[i].MetaValue)
		if err != nil {
			return nil, 0, err
		}
		page[i].LastSeen = last.UTC()
	}
	return page, len(groups), nil
}

// Cells accumulates graph cells by bucket and value.
type Cells map[[2]int64]*store.Cell

// Add adds c to the cell of its bucket and value.
func (cs Cells) Add(c store.Cell) {
	k := [2]int64{c.Bucket, int64(c.Value)}
	if have := cs[k]; have != nil {
		have.Count += c.Count
		have.SumWeighted += c.SumWeighted
		return
	}
	cs[k] = &c
}

// Sorted returns the cells with feedback by bucket, then value.
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

// Tallies accumulates groups by meta value: what group rollups and rows
// say.
type Tallies map[string]*Sums

// Add adds to the tally of metaValue.
func (ts Tallies) Add(metaValue string, s Sums) {
	sums(ts, metaValue).plus(s)
}

// Rows is what both stores' drivers (database/sql, pgx) give of a query's
// result; the caller closes it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// AddRows adds a query's rows of (meta value, traces, feedback, their
// value x weight).
func (ts Tallies) AddRows(rows Rows) error {
	for rows.Next() {
		var (
			v string
			s Sums
		)
		if err := rows.Scan(&v, &s.Traces, &s.N, &s.SumWeighted); err != nil {
			return err
		}
		ts.Add(v, s)
	}
	return rows.Err()
}

// groups returns the groups that have feedback, ranked as
// Store.MetadataGroups ranks them (LastSeen not set); with only, just that
// meta value's group.
func (ts Tallies) groups(only string) []store.Group {
	var groups []store.Group
	for v, t := range ts {
		if t.N > 0 && (only == "" || v == only) {
			groups = append(groups, store.Group{MetaValue: v, Requests: t.Traces, AvgWeighted: t.SumWeighted / float64(t.N)})
		}
	}
	slices.SortFunc(groups, func(a, b store.Group) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.MetaValue, b.MetaValue))
	})
	return groups
}
