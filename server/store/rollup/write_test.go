package rollup_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// memTx is a store in memory, as the write algorithm sees it: rows by id
// and the trace entries. It counts what a write reads.
type memTx struct {
	rows    map[string]rollup.Row
	entries map[rollup.TraceEntry]bool
	// found counts the entries Earliest returned, rowReads the rows Row
	// returned.
	found, rowReads int
}

func newMemTx() *memTx {
	return &memTx{rows: map[string]rollup.Row{}, entries: map[rollup.TraceEntry]bool{}}
}

func (m *memTx) Lock(context.Context, []rollup.TraceRef) (bool, error) { return false, nil }

func (m *memTx) LockKeys(context.Context, []rollup.RowKey, bool) error { return nil }

func (m *memTx) Rows(_ context.Context, keys []rollup.RowKey, byToken bool) ([]*rollup.Row, error) {
	out := make([]*rollup.Row, len(keys))
	for i, k := range keys {
		for _, r := range m.rows {
			if r.WorkspaceID == k.WorkspaceID && (!byToken && r.ID == k.Key || byToken && r.TokenID == k.Key) {
				m.rowReads++
				sp := r.Special()
				r.Stored = &sp
				out[i] = &r
			}
		}
	}
	return out, nil
}

// upsertToken records f as the vote of token tok.
func upsertToken(ctx context.Context, m *memTx, tok string, f *store.Feedback, d *rollup.Deltas) error {
	_, _, err := rollup.Put(ctx, m, []*store.Feedback{f}, []string{tok}, true, d)
	return err
}

func (m *memTx) Earliest(_ context.Context, probes []rollup.Probe) ([][]rollup.TraceEntry, error) {
	out := make([][]rollup.TraceEntry, len(probes))
	for i, p := range probes {
		var all []rollup.TraceEntry
		for e := range m.entries {
			if e.TraceMetaValue == p.TraceMetaValue {
				all = append(all, e)
			}
		}
		slices.SortFunc(all, func(a, b rollup.TraceEntry) int {
			return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		out[i] = all[:min(p.N, len(all))]
		m.found += len(out[i])
	}
	return out, nil
}

func (m *memTx) Write(_ context.Context, w rollup.Writes) error {
	for _, r := range w.Inserts {
		if _, ok := m.rows[r.ID]; ok {
			return store.Errorf(store.ECONFLICT, "already exists")
		}
		m.rows[r.ID] = r
	}
	for _, r := range w.Updates {
		r.TokenID = m.rows[r.ID].TokenID
		m.rows[r.ID] = r
	}
	for _, r := range w.Deletes {
		delete(m.rows, r.ID)
	}
	for _, f := range w.Flags {
		r := m.rows[f.ID]
		r.FirstBits = r.FirstBits&^f.Clear | f.Set
		m.rows[f.ID] = r
	}
	for _, e := range w.DropEntries {
		delete(m.entries, e)
	}
	for _, e := range w.AddEntries {
		m.entries[e] = true
	}
	return nil
}

// Matching filters by trace and creation time only, which is all the
// tests here ask of it.
func (m *memTx) Matching(_ context.Context, ws string, f store.Filter) ([]rollup.Row, error) {
	var out []rollup.Row
	for _, r := range m.rows {
		if r.WorkspaceID == ws && (f.TraceIDs == nil || slices.Contains(f.TraceIDs, r.TraceID)) &&
			(f.CreatedAfter == nil || !r.CreatedAt.Before(*f.CreatedAfter)) {
			sp := r.Special()
			r.Stored = &sp
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memTx) all() []rollup.Row { return slices.Collect(maps.Values(m.rows)) }

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// fb is feedback of trace tr, created at t0 plus minutes, with metadata.
func fb(id, tr string, minutes int, meta map[string]any) *store.Feedback {
	at := t0.Add(time.Duration(minutes) * time.Minute)
	return &store.Feedback{ID: id, WorkspaceID: "w", TraceID: tr, Value: 2, Weight: 0.5, Metadata: meta, CreatedAt: at, UpdatedAt: at}
}

func create(t *testing.T, m *memTx, d *rollup.Deltas, fs ...*store.Feedback) {
	t.Helper()
	if d == nil {
		d = &rollup.Deltas{}
	}
	if err := rollup.Create(context.Background(), m, fs, d); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func firstBitsOf(m *memTx) string {
	var out []string
	for id, r := range m.rows {
		out = append(out, fmt.Sprintf("%s:%b", id, r.FirstBits))
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

func bits(b int) string { return fmt.Sprintf("%b", b) }

// A trace's first feedback with a meta value, by time and then id, carries
// the key's flag; another meta value of the key, or another key, is
// flagged apart.
// A later write of an earlier feedback takes the flag over.
func TestFirstFeedbackCarriesTheFlag(t *testing.T) {
	p := rollup.Bit("_prompt")
	e := rollup.Bit("_environment")
	m := newMemTx()
	create(t, m, nil,
		fb("b", "t", 5, map[string]any{"_prompt": "p1", "_environment": "prod"}),
		fb("d", "u", 9, map[string]any{"_prompt": "p1"}), // other trace
		fb("e", "t", 7, map[string]any{"_prompt": 5}),    // a number renders "5"
		fb("f", "t", 8, map[string]any{"_prompt": "5"}),  // the same group as 5
		fb("g", "t", 0, map[string]any{"region": "eu"}),  // no special key
		fb("h", "t", 6, map[string]any{"_environment": "prod"}),
	)
	create(t, m, nil, fb("a", "t", 5, map[string]any{"_prompt": "p1"})) // same time as b, smaller id: first
	create(t, m, nil, fb("c", "t", 1, map[string]any{"_prompt": "p2"})) // earliest, other meta value
	want := fmt.Sprint([]string{"a:" + bits(p), "b:" + bits(e), "c:" + bits(p), "d:" + bits(p), "e:" + bits(p), "f:0", "g:0", "h:0"})
	if got := firstBitsOf(m); got != want {
		t.Errorf("flags %s, want %s", got, want)
	}
}

// hourSlots sums the group rollup deltas at the hour grain by slot.
func hourSlots(d *rollup.Deltas) map[int64]rollup.Sums {
	got := map[int64]rollup.Sums{}
	for _, g := range d.Groups() {
		if g.Grain == rollup.Hour {
			got[g.Slot] = g.Sums
		}
	}
	return got
}

func hourOf(minutes int) int64 { return t0.Add(time.Duration(minutes)*time.Minute).Unix() / 3600 }

// Deleting a trace's first feedback with a meta value makes its next one
// the first: the slot of the deleted row loses the trace, the next row's
// gains it, and the next row is written with its new flag.
func TestDeletePromotesTheNextFeedback(t *testing.T) {
	meta := map[string]any{"_prompt": "p1"}
	m := newMemTx()
	create(t, m, nil, fb("a", "t", 0, meta), fb("b", "t", 60, meta), fb("c", "t", 120, meta))
	var d rollup.Deltas
	if err := rollup.Delete(context.Background(), m, "w", "a", &d); err != nil {
		t.Fatal(err)
	}
	if got, want := firstBitsOf(m), fmt.Sprint([]string{"b:" + bits(rollup.Bit("_prompt")), "c:0"}); got != want {
		t.Errorf("flags %s, want %s", got, want)
	}
	want := map[int64]rollup.Sums{
		hourOf(0):  {N: -1, Traces: -1, SumWeighted: -1}, // a left, with its trace
		hourOf(60): {Traces: 1},                          // b stays and now counts the trace
	}
	if got := hourSlots(&d); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hour slots %v, want %v", got, want)
	}
}

// An update that gives an earlier feedback the meta value moves the
// trace there; one that takes it away from the first moves the trace to
// the next feedback with it.
func TestUpdatesMoveTheFirst(t *testing.T) {
	p1 := map[string]any{"_prompt": "p1"}
	m := newMemTx()
	create(t, m, nil, fb("a", "t", 0, map[string]any{}), fb("b", "t", 10, p1), fb("c", "t", 20, p1))
	var d rollup.Deltas
	if _, err := rollup.Update(context.Background(), m, "w", "a", store.Update{Value: 2, Metadata: p1, MetadataSet: true}, &d); err != nil {
		t.Fatal(err)
	}
	if got, want := firstBitsOf(m), fmt.Sprint([]string{"a:" + bits(rollup.Bit("_prompt")), "b:0", "c:0"}); got != want {
		t.Errorf("after giving a the meta value: flags %s, want %s", got, want)
	}
	if _, err := rollup.Update(context.Background(), m, "w", "a", store.Update{Value: 2, Metadata: nil, MetadataSet: true}, &d); err != nil {
		t.Fatal(err)
	}
	if got, want := firstBitsOf(m), fmt.Sprint([]string{"a:0", "b:" + bits(rollup.Bit("_prompt")), "c:0"}); got != want {
		t.Errorf("after taking it away: flags %s, want %s", got, want)
	}
	var traces int64
	for _, g := range d.Groups() {
		traces += g.Traces
	}
	if traces != 0 {
		t.Errorf("traces move by %d over all slots, want 0 (the trace moves, it is not added)", traces)
	}
}

// Deltas of changes that undo each other cancel out, and the sums of a
// trace's rows over all their slots are the rows': feedback, weighted sum
// and one request per meta value.
func TestDeltasAddUp(t *testing.T) {
	rows := func() []*store.Feedback {
		return []*store.Feedback{
			fb("a", "t", 0, map[string]any{"_organisation": "o", "region": "eu"}),
			fb("b", "t", 30, map[string]any{"_organisation": "o", "region": "eu"}),
		}
	}
	var d rollup.Deltas
	m := newMemTx()
	create(t, m, &d, rows()...)
	for _, id := range []string{"b", "a"} {
		if err := rollup.Delete(context.Background(), m, "w", id, &d); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.Rollups()) != 0 || len(d.Groups()) != 0 {
		t.Errorf("insert then delete left %v and %v", d.Rollups(), d.Groups())
	}
	if add, remove := d.MetadataEntries(); len(add)+len(remove) != 0 {
		t.Errorf("insert then delete left metadata entries %v, %v", add, remove)
	}

	d = rollup.Deltas{}
	create(t, newMemTx(), &d, rows()...)
	for _, grain := range rollup.Grains {
		var all, org rollup.Sums
		for _, r := range d.Rollups() {
			if r.Grain == grain && r.MetaKey == "" {
				all.N, all.SumWeighted = all.N+r.N, all.SumWeighted+r.SumWeighted
			}
		}
		for _, g := range d.Groups() {
			if g.Grain == grain && g.MetaKey == "_organisation" {
				org.N, org.Traces, org.SumWeighted = org.N+g.N, org.Traces+g.Traces, org.SumWeighted+g.SumWeighted
			}
		}
		if all != (rollup.Sums{N: 2, SumWeighted: 2}) || org != (rollup.Sums{N: 2, Traces: 1, SumWeighted: 2}) {
			t.Errorf("grain %d: all feedback %+v, groups by _organisation %+v", grain, all, org)
		}
	}
	var region int
	for _, r := range d.Rollups() {
		if r.MetaKey == "region" {
			if r.Grain != store.Quarter || r.MetaValue != "eu" {
				t.Errorf("region rollup %+v: want quarters of eu only", r)
			}
			region += int(r.N)
		}
	}
	if add, _ := d.MetadataEntries(); region != 2 || len(add) != 2 {
		t.Errorf("region: %d rolled up, %d metadata entries; want 2 and 2", region, len(add))
	}
}

// A write reads the rows it replaces and, per meta value it touches, as
// many entries as it removes of that meta value plus one: the same on a
// trace of 10,000 feedback as on a trace of one.
func TestAWriteReadsNoMoreOfALargeTrace(t *testing.T) {
	ctx := context.Background()
	m := newMemTx()
	meta := func(i int) map[string]any {
		return map[string]any{"_user": fmt.Sprint("u", i%7), "_prompt": "p", "_environment": "prod", "_organisation": fmt.Sprint("o", i%3)}
	}
	var fs []*store.Feedback
	for i := range 10_000 {
		fs = append(fs, fb(fmt.Sprintf("r%05d", i), "hot", i, meta(i)))
	}
	create(t, m, nil, fs...)
	for _, w := range []struct {
		name string
		do   func(d *rollup.Deltas) error
		// entries is the most Earliest may return: four meta values, each
		// at most removed + 1.
		entries, rows int
	}{
		{"create", func(d *rollup.Deltas) error {
			return rollup.Create(ctx, m, []*store.Feedback{fb("new", "hot", -5, meta(1))}, d)
		}, 4, 0},
		{"update the first", func(d *rollup.Deltas) error {
			_, err := rollup.Update(ctx, m, "w", "new", store.Update{Value: 1, Metadata: meta(2), MetadataSet: true}, d)
			return err
		}, 2*4 + 2, 1},
		{"delete the first", func(d *rollup.Deltas) error { return rollup.Delete(ctx, m, "w", "r00000", d) }, 2 * 4, 1},
		{"token vote", func(d *rollup.Deltas) error {
			return upsertToken(ctx, m, "tok", fb("tv", "hot", -9, meta(3)), d)
		}, 4, 0},
		{"token re-vote", func(d *rollup.Deltas) error {
			return upsertToken(ctx, m, "tok", fb("tv2", "hot", 99, meta(4)), d)
		}, 2*4 + 2, 1},
	} {
		m.found, m.rowReads = 0, 0
		if err := w.do(&rollup.Deltas{}); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if m.found > w.entries || m.rowReads > w.rows {
			t.Errorf("%s read %d entries and %d rows, want at most %d and %d", w.name, m.found, m.rowReads, w.entries, w.rows)
		}
	}
	checkOracle(t, m)
}

// An erase of many rows of one trace, the first ones or the last ones,
// reads each meta value's entries up to one past what it removes, and
// promotes the first row it keeps.
func TestEraseReadsWhatItErases(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		after *time.Time
	}{{"the newest", ptr(t0.Add(900 * time.Minute))}, {"the whole trace", nil}} {
		m := newMemTx()
		var fs []*store.Feedback
		for i := range 1000 {
			fs = append(fs, fb(fmt.Sprintf("r%04d", i), "hot", i, map[string]any{"_user": fmt.Sprint("u", i%2), "_prompt": "p"}))
		}
		create(t, m, nil, fs...)
		m.found = 0
		var d rollup.Deltas
		n, err := rollup.Erase(ctx, m, "w", store.Filter{TraceIDs: []string{"hot"}, CreatedAfter: c.after}, store.Erase{Max: 1000}, &d)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Each row holds two meta values (a user and p), and each of the
		// three is read to one past what goes.
		if m.found > 2*n+3 {
			t.Errorf("%s: erasing %d read %d entries", c.name, n, m.found)
		}
		if got, want := len(m.rows), 1000-n; got != want {
			t.Errorf("%s: %d rows left, want %d", c.name, got, want)
		}
		checkOracle(t, m)
	}
}

// The guard refuses more rows than its limit, and a wrong confirmation,
// before anything is written.
func TestEraseGuard(t *testing.T) {
	ctx := context.Background()
	m := newMemTx()
	create(t, m, nil, fb("a", "t", 0, nil), fb("b", "t", 1, nil), fb("c", "t", 2, nil))
	all := store.Filter{TraceIDs: []string{"t"}}
	for _, e := range []store.Erase{{Max: 2}, {Max: 5, Confirm: ptr(2)}} {
		n, err := rollup.Erase(ctx, m, "w", all, e, &rollup.Deltas{})
		var refused *store.EraseRefused
		if !errors.As(err, &refused) || refused.Count != 3 || n != 3 || store.ErrorCode(err) != store.ECONFLICT {
			t.Errorf("%+v: %d, %v; want 3 refused", e, n, err)
		}
	}
	if n, err := rollup.Erase(ctx, m, "w", all, store.Erase{Max: 2, DryRun: true}, &rollup.Deltas{}); n != 3 || err != nil {
		t.Errorf("dry run: %d, %v; want 3", n, err)
	}
	if len(m.rows) != 3 {
		t.Fatalf("%d rows left, want 3", len(m.rows))
	}
	if n, err := rollup.Erase(ctx, m, "w", all, store.Erase{Max: 2, Confirm: ptr(3)}, &rollup.Deltas{}); n != 3 || err != nil || len(m.rows) != 0 {
		t.Errorf("confirmed: %d, %v, %d rows left; want 3 erased", n, err, len(m.rows))
	}
}

func ptr[T any](v T) *T { return &v }

// checkOracle checks every row's flags against the definition.
func checkOracle(t *testing.T, m *memTx) {
	t.Helper()
	want := storetest.FirstBits(m.all())
	for id, r := range m.rows {
		if r.FirstBits != want[id] {
			t.Errorf("feedback %s (trace %s, %v): flags %b, want %b", id, r.TraceID, r.Metadata, r.FirstBits, want[id])
		}
	}
}

// Random creates (bulks among them, some earlier than what their trace
// holds), updates, deletes and token votes on a few traces leave every
// flag as the definition says, and the deltas summed over all writes are
// those of the rows left.
func TestRandomWritesMatchTheOracle(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMemTx()
	var total rollup.Deltas
	meta := func() map[string]any {
		out := map[string]any{}
		for _, k := range rollup.SpecialKeys {
			if rng.IntN(4) > 0 {
				out[k] = fmt.Sprint("v", rng.IntN(3))
			}
		}
		return out
	}
	n := 0
	newFb := func() *store.Feedback {
		n++
		return fb(fmt.Sprintf("f%04d", n), fmt.Sprint("t", rng.IntN(3)), rng.IntN(50), meta())
	}
	pick := func() string {
		ids := slices.Sorted(maps.Keys(m.rows))
		return ids[rng.IntN(len(ids))]
	}
	for range 600 {
		var d rollup.Deltas
		var err error
		switch op := rng.IntN(10); {
		case op < 4 || len(m.rows) < 5:
			fs := []*store.Feedback{newFb()}
			for range rng.IntN(3) * rng.IntN(4) {
				fs = append(fs, newFb())
			}
			err = rollup.Create(ctx, m, fs, &d)
		case op < 6:
			_, err = rollup.Update(ctx, m, "w", pick(), store.Update{Value: rng.IntN(21) - 10, Metadata: meta(), MetadataSet: rng.IntN(3) > 0}, &d)
		case op < 8:
			err = rollup.Delete(ctx, m, "w", pick(), &d)
		case op < 9:
			err = upsertToken(ctx, m, fmt.Sprint("tok", rng.IntN(4)), newFb(), &d)
		default:
			// A client's id: a stored one is replaced, maybe on another
			// trace, beside a new one.
			again, fresh := newFb(), newFb()
			again.ID = pick()
			_, _, err = rollup.Put(ctx, m, []*store.Feedback{again, fresh}, []string{again.ID, fresh.ID}, false, &d)
		}
		if err != nil {
			t.Fatal(err)
		}
		total.Merge(&d)
	}
	checkOracle(t, m)
	var want rollup.Deltas
	for _, r := range m.all() {
		want.Add(&r, 1)
	}
	if g, w := fmt.Sprint(total.Groups()), fmt.Sprint(want.Groups()); g != w {
		t.Errorf("group rollup deltas summed over the writes:\n%s\nwant those of the rows left:\n%s", g, w)
	}
	if g, w := fmt.Sprint(total.Rollups()), fmt.Sprint(want.Rollups()); g != w {
		t.Errorf("rollup deltas summed over the writes differ from those of the rows left")
	}
}
