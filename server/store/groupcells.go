package store

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
)

// Group cells let the stores answer metadata groups by a rollup key
// (_organisation, _prompt, _environment), unfiltered or filtered by
// another rollup key, without reading every row, with exact counts of
// distinct trace ids.
//
// Distinct trace ids do not add up across time, but they can be counted
// as rows: call a chain the rows of one workspace that share a trace id
// and a value of the key, in (CreatedAt, ID) order. A chain has a row in
// [from, to] exactly when one of its rows in [from, to] has its previous
// row before from (or none). So each row is filed, for each rollup span,
// in the cell of its value and unit (UTC day, hour or 15-minute slot)
// under where its previous row is: nowhere (PrevNone), inside the same
// unit (PrevInside), or in an earlier 15-minute slot (that slot). Over
// whole units inside [from, to], the cells filed under a slot before
// from's slot count the chains; rows filed under PrevInside never do,
// since their previous row is inside the range too.
//
// What cells cannot say exactly is left to the rows: the chains with a row
// in the partial slots at the range's ends, or with a row in from's slot
// before from, or with rows the store has not filed yet. A store reads
// those chains whole and replaces what the cells say of them with what the
// rows say (GroupTallies.AddCells with sign -1, then AddExact).
//
// Groups under a filter on another rollup key are the same problem over
// the rows the filter selects, so each such filter value has cells of its
// own (GroupDim): the rows of one trace with one value of each key form
// a chain there.

// Sentinels of GroupCellKey.PrevSlot: counted by every range, and by none.
const (
	PrevNone   int64 = math.MinInt64
	PrevInside int64 = math.MaxInt64
)

// ChainRow is what group cells need of one feedback row.
type ChainRow struct {
	WorkspaceID string
	ID          string
	Trace       string
	// CreatedAt in Unix microseconds.
	CreatedAt int64
	// Values holds the text of each RollupKeys value, as Special.Values
	// does (nil when absent or null).
	Values   [3]*string
	Weighted float64
}

// GroupDim is one family of group cells: groups by RollupKeys[Key] over
// every row (Filter < 0), or over the rows that hold one value at
// RollupKeys[Filter], for each such value (groups under a filter on that
// key). A chain of a filtered family is the rows of one trace with one
// value of each key. A Coarse family keeps day cells only: the hours
// and slots at a range's ends are read from the rows, which a narrow
// filter keeps few.
type GroupDim struct {
	Key, Filter int
	Coarse      bool
}

// spans are the spans d keeps cells of, coarsest first.
func (d GroupDim) spans() []int64 {
	if d.Coarse {
		return RollupSpans[:1]
	}
	return RollupSpans
}

// GroupDims are the families a store keeps: groups by each rollup key,
// and groups by each under a filter on each other. Environments are few,
// so a filter on one selects a large share of the rows and its pairs with
// a value of another key are few cells: those families keep every span.
// _organisation and _prompt can each have many values, so their pairs are
// about as many cells per hour as rows, while a filter on either selects
// few rows: their families are coarse.
var GroupDims = func() []GroupDim {
	env := slices.Index(RollupKeys, "_environment")
	var dims []GroupDim
	for k := range RollupKeys {
		dims = append(dims, GroupDim{Key: k, Filter: -1})
	}
	for k := range RollupKeys {
		for f := range RollupKeys {
			if f != k {
				dims = append(dims, GroupDim{Key: k, Filter: f, Coarse: k != env && f != env})
			}
		}
	}
	return dims
}()

// Name names the cells of d under a filter value (unused when d has no
// filter), as the stores' dim column holds it: "_prompt", or
// "_prompt|_environment=prod".
func (d GroupDim) Name(filter string) string {
	if d.Filter < 0 {
		return RollupKeys[d.Key]
	}
	return RollupKeys[d.Key] + "|" + RollupKeys[d.Filter] + "=" + filter
}

// nameOf returns the name of the cells of d that r is filed in, and
// false when r is in none.
func (d GroupDim) nameOf(r *ChainRow) (string, bool) {
	if r.Values[d.Key] == nil {
		return "", false
	}
	if d.Filter < 0 {
		return RollupKeys[d.Key], true
	}
	if r.Values[d.Filter] == nil {
		return "", false
	}
	return d.Name(*r.Values[d.Filter]), true
}

// GroupCellKey names one group cell.
type GroupCellKey struct {
	WorkspaceID string
	// Dim names the family and filter value (GroupDim.Name).
	Dim   string
	Value string
	// Span is one of RollupSpans; Unit is floor(CreatedAt / Span).
	Span, Unit int64
	// PrevSlot is the 15-minute slot of the chain's previous row when that
	// is before Unit, else PrevNone or PrevInside.
	PrevSlot int64
}

// GroupCell holds how many rows a cell has and their value x weight.
type GroupCell struct {
	N           int64
	SumWeighted float64
}

// GroupCells accumulates cells.
type GroupCells map[GroupCellKey]*GroupCell

// AddChains adds sign times the cells of rows to cs, in every family of
// GroupDims. rows must hold every row of each chain they touch (in any
// order): the cells of a row depend on the row before it.
func (cs GroupCells) AddChains(rows []ChainRow, sign int64) {
	type member struct {
		name string
		r    *ChainRow
	}
	chain := make([]member, 0, len(rows))
	for _, d := range GroupDims {
		chain = chain[:0]
		for i := range rows {
			if name, ok := d.nameOf(&rows[i]); ok {
				chain = append(chain, member{name, &rows[i]})
			}
		}
		slices.SortFunc(chain, func(a, b member) int {
			return cmp.Or(cmp.Compare(a.r.WorkspaceID, b.r.WorkspaceID), cmp.Compare(a.name, b.name), cmp.Compare(a.r.Trace, b.r.Trace),
				cmp.Compare(*a.r.Values[d.Key], *b.r.Values[d.Key]), cmp.Compare(a.r.CreatedAt, b.r.CreatedAt), cmp.Compare(a.r.ID, b.r.ID))
		})
		for i, m := range chain {
			r := m.r
			var prev *ChainRow
			if i > 0 {
				if p := chain[i-1]; p.r.WorkspaceID == r.WorkspaceID && p.name == m.name && p.r.Trace == r.Trace && *p.r.Values[d.Key] == *r.Values[d.Key] {
					prev = p.r
				}
			}
			for _, span := range d.spans() {
				unit := FloorDiv(r.CreatedAt, span*1_000_000)
				k := GroupCellKey{WorkspaceID: r.WorkspaceID, Dim: m.name, Value: *r.Values[d.Key], Span: span, Unit: unit, PrevSlot: PrevNone}
				if prev != nil {
					k.PrevSlot = PrevInside
					if prev.CreatedAt < unit*span*1_000_000 {
						k.PrevSlot = FloorDiv(prev.CreatedAt, SlotSeconds*1_000_000)
					}
				}
				c := cs[k]
				if c == nil {
					c = &GroupCell{}
					cs[k] = c
				}
				c.N += sign
				c.SumWeighted += float64(sign) * r.Weighted
			}
		}
	}
}

// GroupCellQuery is what group cells answer of a groups query.
type GroupCellQuery struct {
	Dim GroupDim
	// Name names the cells to read (GroupDim.Name).
	Name string
	// Only, when not empty, is the grouped key's own filter value: the
	// answer is that value's group alone.
	Only string
	// FilterValue is the value rows hold at RollupKeys[Dim.Filter].
	FilterValue string
}

// GroupCellsServe says whether group cells answer groups by key over q,
// and which: q filters by nothing but its time range and, optionally, the
// grouped key and one other rollup key, each equal to a string. The cells
// hold every value as text, as groups render it, and a value other than a
// string renders as JSON text; so a string that is not valid JSON names
// exactly the rows holding it.
func (q AnalyticsQuery) GroupCellsServe(key string) (GroupCellQuery, bool) {
	var gq GroupCellQuery
	gq.Dim = GroupDim{Key: slices.Index(RollupKeys, key), Filter: -1}
	if gq.Dim.Key < 0 || len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil {
		return gq, false
	}
	for k, v := range q.Metadata {
		s, isString := v.(string)
		f := slices.Index(RollupKeys, k)
		switch {
		case !isString || json.Valid([]byte(s)) || f < 0:
			return gq, false
		case f == gq.Dim.Key:
			gq.Only = s
		case gq.Dim.Filter >= 0:
			return gq, false
		default:
			gq.Dim.Filter, gq.FilterValue = f, s
		}
	}
	i := slices.IndexFunc(GroupDims, func(d GroupDim) bool { return d.Key == gq.Dim.Key && d.Filter == gq.Dim.Filter })
	if i < 0 {
		return gq, false
	}
	gq.Dim = GroupDims[i]
	gq.Name = gq.Dim.Name(gq.FilterValue)
	return gq, true
}

// Plan covers [from, to] (Unix microseconds, inclusive) with whole units
// of the spans d keeps, coarsest first, and leaves what they do not cover
// at its ends to the rows (Raw).
func (d GroupDim) Plan(from, to int64) CellPlan {
	var p CellPlan
	p.cover(from, to, d.spans())
	return p
}

// CountsFrom is the 15-minute slot of from: cells filed under an earlier
// slot count their chains in a range that starts at from.
func CountsFrom(from int64) int64 { return FloorDiv(from, SlotSeconds*1_000_000) }

// GroupTally is what a group counts: chains (distinct trace ids), rows
// and their value x weight.
type GroupTally struct {
	Requests, N int64
	SumWeighted float64
}

// GroupTallies are the tallies of a query by value.
type GroupTallies map[string]*GroupTally

// Add adds to the tally of value.
func (ts GroupTallies) Add(value string, requests, n int64, sum float64) {
	t := ts[value]
	if t == nil {
		t = &GroupTally{}
		ts[value] = t
	}
	t.Requests += requests
	t.N += n
	t.SumWeighted += sum
}

// Rows is what both stores' drivers (database/sql, pgx) give of a query's
// result; the caller closes it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// AddRows adds the result of a store's query of its cells: rows of a
// value, its requests, its rows and their value x weight.
func (ts GroupTallies) AddRows(rows Rows) error {
	for rows.Next() {
		var (
			v           string
			requests, n int64
			sum         float64
		)
		if err := rows.Scan(&v, &requests, &n, &sum); err != nil {
			return err
		}
		ts.Add(v, requests, n, sum)
	}
	return rows.Err()
}

// AddCells adds sign times what the cells of one workspace and name
// (GroupDim.Name) inside plan's reads count in a range starting at from,
// as a store's query of its cells would.
func (ts GroupTallies) AddCells(cs GroupCells, workspaceID, name string, plan CellPlan, from int64, sign int64) {
	counts := CountsFrom(from)
	for k, c := range cs {
		if k.WorkspaceID != workspaceID || k.Dim != name || !plan.reads(k.Span, k.Unit) {
			continue
		}
		var requests int64
		if k.PrevSlot < counts {
			requests = c.N
		}
		ts.Add(k.Value, sign*requests, sign*c.N, float64(sign)*c.SumWeighted)
	}
}

// Groups returns the groups of the tallies with rows, ranked as
// Store.MetadataGroups ranks them; with only, just that value's group.
func (ts GroupTallies) Groups(only string) []Group {
	var groups []Group
	for v, t := range ts {
		if t.N > 0 && (only == "" || v == only) {
			groups = append(groups, Group{Value: v, Requests: t.Requests, AvgWeighted: t.SumWeighted / float64(t.N)})
		}
	}
	slices.SortFunc(groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Value, b.Value))
	})
	return groups
}

// AddExact adds sign times the tallies of groups by RollupKeys[key] of the
// rows of one workspace created in [from, to], counted from the rows
// themselves (a store passes the rows its filter selects).
func (ts GroupTallies) AddExact(rows []ChainRow, workspaceID string, key int, from, to int64, sign int64) {
	seen := map[[2]string]bool{}
	for _, r := range rows {
		if r.WorkspaceID != workspaceID || r.Values[key] == nil || r.CreatedAt < from || r.CreatedAt > to {
			continue
		}
		var requests int64
		if chain := [2]string{*r.Values[key], r.Trace}; !seen[chain] {
			seen[chain] = true
			requests = 1
		}
		ts.Add(*r.Values[key], sign*requests, sign, float64(sign)*r.Weighted)
	}
}

// reads says whether unit of span is one of p's rollup reads.
func (p CellPlan) reads(span, unit int64) bool {
	for _, r := range p.Reads {
		if r.Span == span && unit >= r.First && unit <= r.Last {
			return true
		}
	}
	return false
}

// cover adds to p reads of whole units of spans (coarsest first) over
// [a, b] and leaves what no span covers to Raw.
func (p *CellPlan) cover(a, b int64, spans []int64) {
	if a > b {
		return
	}
	if len(spans) == 0 {
		p.Raw = append(p.Raw, [2]int64{a, b})
		return
	}
	unit := spans[0] * 1_000_000
	first, last := -FloorDiv(-a, unit), FloorDiv(b+1, unit)-1
	if first > last {
		p.cover(a, b, spans[1:])
		return
	}
	p.Reads = append(p.Reads, RollupRead{Span: spans[0], First: first, Last: last})
	p.cover(a, first*unit-1, spans[1:])
	p.cover((last+1)*unit, b, spans[1:])
}

// GroupEdges are the ranges (Unix microseconds, inclusive) whose rows make
// their chains be read whole for a group query over [from, to] planned as
// p: the partial slots at its ends, and the part of from's slot before
// from, where the previous row of a chain counted by the cells may lie.
func (p CellPlan) GroupEdges(from int64) [][2]int64 {
	edges := slices.Clone(p.Raw)
	if start := CountsFrom(from) * SlotSeconds * 1_000_000; start < from {
		edges = append(edges, [2]int64{start, from - 1})
	}
	return edges
}
