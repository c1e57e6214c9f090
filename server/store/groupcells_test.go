package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The cells plus the chains read whole at the edges give exactly what the
// rows give, for every range, unfiltered and under a filter on another
// rollup key: the arithmetic both stores rely on.
func TestGroupCellsCountDistinctTraces(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const hour = int64(3_600_000_000)
	for round := range 3000 {
		// Chains of a few rows, some hours or days apart, on few traces
		// and values so that they mix; some rows without a value.
		var rows []ChainRow
		base := int64(1_790_000_000_000_000) + rng.Int64N(24*hour)
		for i := range 40 + rng.IntN(80) {
			r := ChainRow{
				WorkspaceID: fmt.Sprint("ws-", rng.IntN(2)), ID: fmt.Sprintf("%04d", rng.IntN(10_000)), Trace: fmt.Sprint("t-", rng.IntN(15)),
				CreatedAt: base + rng.Int64N(3*24*hour), Weighted: float64(rng.IntN(21)-10) * float64(rng.IntN(5)) / 4,
			}
			if i%3 == 2 {
				r.CreatedAt = rows[len(rows)-1].CreatedAt + rng.Int64N(hour/4) // close to the one before
			}
			for d := range r.Values {
				if rng.IntN(6) > 0 {
					v := fmt.Sprint("v", rng.IntN(3))
					r.Values[d] = &v
				}
			}
			rows = append(rows, r)
		}
		from := base + rng.Int64N(3*24*hour)
		if rng.IntN(4) == 0 {
			from -= from % (SlotSeconds * 1_000_000) // on a slot boundary
		}
		to := from + rng.Int64N(2*24*hour)
		if rng.IntN(5) == 0 {
			to = from + rng.Int64N(hour/2) // shorter than some slots
		}
		// Rows "not filed yet": the store reads their chains whole too.
		filed := rng.IntN(len(rows) + 1)

		stored := GroupCells{}
		stored.AddChains(rows[:filed], 1)
		for _, d := range GroupDims {
			// The chains a store reads whole: with a row at the edges of
			// the family's plan, or not filed yet.
			plan := d.Plan(from, to)
			whole := map[[2]string]bool{}
			for i, r := range rows {
				for _, e := range plan.GroupEdges(from) {
					if r.CreatedAt >= e[0] && r.CreatedAt <= e[1] {
						whole[[2]string{r.WorkspaceID, r.Trace}] = true
					}
				}
				if i >= filed && r.CreatedAt >= from && r.CreatedAt <= to {
					whole[[2]string{r.WorkspaceID, r.Trace}] = true
				}
			}
			var read, readFiled []ChainRow
			for i, r := range rows {
				if whole[[2]string{r.WorkspaceID, r.Trace}] {
					read = append(read, r)
					if i < filed {
						readFiled = append(readFiled, r)
					}
				}
			}
			for _, fv := range []string{"v0", "v1", "v2"} {
				// What the store's filter on the other key selects.
				sel := func(rows []ChainRow) []ChainRow {
					var out []ChainRow
					for _, r := range rows {
						if d.Filter < 0 || r.Values[d.Filter] != nil && *r.Values[d.Filter] == fv {
							out = append(out, r)
						}
					}
					return out
				}
				name := d.Name(fv)
				got := GroupTallies{}
				got.AddCells(stored, "ws-0", name, plan, from, 1)
				old := GroupCells{}
				old.AddChains(sel(readFiled), 1)
				got.AddCells(old, "ws-0", name, plan, from, -1)
				got.AddExact(sel(read), "ws-0", d.Key, from, to, 1)

				want := GroupTallies{}
				want.AddExact(sel(rows), "ws-0", d.Key, from, to, 1)
				for v, w := range want {
					g := got[v]
					if g == nil || g.Requests != w.Requests || g.N != w.N || fmt.Sprintf("%.6f", g.SumWeighted) != fmt.Sprintf("%.6f", w.SumWeighted) {
						t.Fatalf("round %d, cells %s, value %s, [%d, %d], %d of %d rows filed: got %+v, want %+v", round, name, v, from, to, filed, len(rows), g, w)
					}
				}
				for v, g := range got {
					if want[v] == nil && (g.Requests != 0 || g.N != 0) {
						t.Fatalf("round %d, cells %s: value %s counted %+v, has no rows in range", round, name, v, g)
					}
				}
			}
		}
	}
}
