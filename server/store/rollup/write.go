package rollup

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/feedbackd/feedbackd/server/store"
)

// Whether a row is its trace's first with a meta value of a special key
// is kept on the row (Row.FirstBits), and found through the trace meta
// values: one entry per feedback and special key it holds, ordered by
// (workspace, trace, meta key, meta value, time, id). A trace's entries
// for one meta value start with its first feedback with that meta value,
// and the one after it is the next: both are an index seek, whatever the
// trace holds. So a write reads what it replaces, and one short range per
// meta value it touches, never the rest of its trace: a trace may collect
// feedback for months, an evaluation pipeline may score one trace many
// times, and a client may send a constant trace id, without any write
// costing more for it.

// TraceRef names one trace.
type TraceRef struct{ WorkspaceID, TraceID string }

// TraceMetaValue names one meta value of one special key on one trace.
type TraceMetaValue struct {
	TraceRef
	MetaKey, MetaValue string
}

// TraceEntry is one entry of the trace meta values: feedback ID, created
// at CreatedAt (Unix microseconds), holds the meta value.
type TraceEntry struct {
	TraceMetaValue
	CreatedAt int64
	ID        string
}

// before says whether e comes before o in a trace: by time, then id.
func (e TraceEntry) before(o TraceEntry) bool {
	return cmp.Or(cmp.Compare(e.CreatedAt, o.CreatedAt), cmp.Compare(e.ID, o.ID)) < 0
}

// Probe asks for the earliest stored entries of one trace meta value, at
// most N of them: one more than the write removes, so that the earliest
// entry the write keeps is among them.
type Probe struct {
	TraceMetaValue
	N int
}

// Flags changes the first-feedback flags of a stored row that a write
// does not otherwise touch: it loses a first to an earlier new row, or
// becomes the first once the first is gone.
type Flags struct {
	ID         string
	Set, Clear int
}

// Writes are the writes of one change, for a store to apply in the
// order given: a new row's insert comes first, so that a write of new
// rows fails on a taken id before it changed anything.
type Writes struct {
	// Inserts are new rows, Updates new versions of stored rows, both
	// with their FirstBits; Deletes are stored rows to remove.
	Inserts, Updates, Deletes []Row
	Flags                     []Flags
	// DropEntries and AddEntries change the trace meta values.
	DropEntries, AddEntries []TraceEntry
}

// RowKey names a stored row by its workspace and its id or feedback
// token.
type RowKey struct{ WorkspaceID, Key string }

// Tx is a store's write transaction as the write algorithm sees it: each
// store supplies the SQL of these steps, the algorithm is this package's.
type Tx interface {
	// Lock keeps other writes away from the traces until the
	// transaction ends. It reports whether it locked anything: a store
	// whose writes never overlap has nothing to lock, and a row read
	// before a lock must otherwise be read again.
	Lock(ctx context.Context, traces []TraceRef) (bool, error)
	// LockKeys keeps other writes away from the stored rows with the
	// keys (ids, or feedback tokens when byToken) until the transaction
	// ends, as Lock. A write locks keys before any trace, and only once.
	LockKeys(ctx context.Context, keys []RowKey, byToken bool) error
	// Rows returns, for each key, the stored row of its workspace with
	// the id, or with the feedback token when byToken, with its stored
	// special keys, FirstBits and token; nil where there is none.
	Rows(ctx context.Context, keys []RowKey, byToken bool) ([]*Row, error)
	// Earliest returns, for each probe, its meta value's earliest stored
	// entries, at most N, by time and then id.
	Earliest(ctx context.Context, probes []Probe) ([][]TraceEntry, error)
	// Write applies w.
	Write(ctx context.Context, w Writes) error
	// Matching returns the stored rows of a workspace that f matches (as
	// store.Store's ListFeedback, Limit and After ignored), as Row reads
	// them, in the listing's order.
	Matching(ctx context.Context, workspaceID string, f store.Filter) ([]Row, error)
}

// Create inserts fs, each new; ECONFLICT (from the store) when an id is
// taken.
func Create(ctx context.Context, tx Tx, fs []*store.Feedback, d *Deltas) error {
	rows := make([]Row, len(fs))
	refs := make([]TraceRef, len(fs))
	for i, f := range fs {
		rows[i], refs[i] = Row{Feedback: f}, TraceRef{f.WorkspaceID, f.TraceID}
	}
	if _, err := tx.Lock(ctx, refs); err != nil {
		return err
	}
	return change{new: rows}.apply(ctx, tx, d)
}

// Update applies u to a stored feedback and returns the result;
// ENOTFOUND when there is none with the id in the workspace.
func Update(ctx context.Context, tx Tx, workspaceID, id string, u store.Update, d *Deltas) (*store.Feedback, error) {
	old, err := lockedRow(ctx, tx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	next, err := u.Apply(old.Feedback)
	if err != nil {
		return nil, err
	}
	return next, change{old: []Row{*old}, new: []Row{{Feedback: next}}}.apply(ctx, tx, d)
}

// Delete removes a stored feedback; ENOTFOUND as Update.
func Delete(ctx context.Context, tx Tx, workspaceID, id string, d *Deltas) error {
	old, err := lockedRow(ctx, tx, workspaceID, id)
	if err != nil {
		return err
	}
	return change{old: []Row{*old}}.apply(ctx, tx, d)
}

// Erase removes every stored feedback of a workspace that f matches, as
// store.Store's EraseFeedback says, and returns how many. It is a delete
// of many rows in one change: each trace meta value the rows hold is
// probed once, for one more entry than the rows remove, so the work is
// linear in what is erased, however the rows spread over traces.
//
// The matching rows name the traces to lock; rows read before the lock
// are read again after it, and a row of a trace not locked then (written
// or moved there meanwhile) is left alone: the erase comes before that
// write. It locks no keys: it removes only rows of traces it holds, and
// every write that changes, moves or replaces a row holds its traces, so
// what it reads after the lock stays as read until it commits; and
// taking no second round of locks, it waits for no write that waits for
// it.
func Erase(ctx context.Context, tx Tx, workspaceID string, f store.Filter, e store.Erase, d *Deltas) (int, error) {
	rows, err := tx.Matching(ctx, workspaceID, f)
	if err != nil || e.DryRun {
		return len(rows), err
	}
	traces := map[TraceRef]bool{}
	for _, r := range rows {
		traces[TraceRef{r.WorkspaceID, r.TraceID}] = true
	}
	locked, err := tx.Lock(ctx, slices.SortedFunc(maps.Keys(traces), compareTraces))
	if err != nil {
		return 0, err
	}
	if locked {
		if rows, err = tx.Matching(ctx, workspaceID, f); err != nil {
			return 0, err
		}
		rows = slices.DeleteFunc(rows, func(r Row) bool { return !traces[TraceRef{r.WorkspaceID, r.TraceID}] })
	}
	if err := e.Check(len(rows)); err != nil || len(rows) == 0 {
		return len(rows), err
	}
	return len(rows), change{old: rows}.apply(ctx, tx, d)
}

// Put stores each of fs as the one feedback of its key in its workspace,
// keys[i] being fs[i]'s: a feedback token's vote (byToken) and a feedback
// whose id its client chose are both create-or-replace, so both are this
// one write. A stored row with the key is replaced: it keeps its id and
// CreatedAt (and, for a token, which is bound to its trace, its trace id)
// and takes the rest from fs[i], which makes it an update for every
// derived structure, a moved trace included. Otherwise fs[i] is a new row
// (recorded through its token when byToken). Put returns the rows as
// stored, in order, and how many replaced one; EINVALID when a key is
// there twice, ECONFLICT (from the store) when a new row's id is another
// workspace's.
func Put(ctx context.Context, tx Tx, fs []*store.Feedback, keys []string, byToken bool, d *Deltas) ([]*store.Feedback, int, error) {
	rowKeys := make([]RowKey, len(fs))
	traces := make([]TraceRef, len(fs))
	for i, f := range fs {
		rowKeys[i], traces[i] = RowKey{f.WorkspaceID, keys[i]}, TraceRef{f.WorkspaceID, f.TraceID}
		if slices.Contains(rowKeys[:i], rowKeys[i]) {
			return nil, 0, store.Errorf(store.EINVALID, "the same id is there twice: %s", keys[i])
		}
	}
	olds, err := lockedRows(ctx, tx, rowKeys, byToken, traces)
	if err != nil {
		return nil, 0, err
	}
	var c change
	out := make([]*store.Feedback, len(fs))
	replaced := 0
	for i, f := range fs {
		old := olds[i]
		if old == nil {
			row := Row{Feedback: f}
			if byToken {
				row.TokenID = keys[i]
			}
			c.new, out[i] = append(c.new, row), f
			continue
		}
		next := *f
		next.ID, next.CreatedAt = old.ID, old.CreatedAt
		if byToken {
			next.TraceID = old.TraceID
		}
		c.old, c.new, out[i] = append(c.old, *old), append(c.new, Row{Feedback: &next}), &next
		replaced++
	}
	return out, replaced, c.apply(ctx, tx, d)
}

// lockedRow reads a stored feedback by id with its trace locked;
// ENOTFOUND when there is none.
func lockedRow(ctx context.Context, tx Tx, workspaceID, id string) (*Row, error) {
	rows, err := lockedRows(ctx, tx, []RowKey{{workspaceID, id}}, false, nil)
	if err != nil {
		return nil, err
	}
	if rows[0] == nil {
		return nil, store.Errorf(store.ENOTFOUND, "feedback not found")
	}
	return rows[0], nil
}

// lockedRows reads stored rows by their keys with their traces, and
// traces, locked. Every write of a stored row locks its key before
// reading it, so no other write moves the row to another trace (Put
// does) until this one ends, and two first writes of one new id run one
// after the other; the read after the traces' lock sees what the writes
// of the trace before it left (the row's first-feedback flags). Keys are
// locked before traces, in one round each, so no two writes wait for
// each other.
func lockedRows(ctx context.Context, tx Tx, keys []RowKey, byToken bool, traces []TraceRef) ([]*Row, error) {
	if err := tx.LockKeys(ctx, keys, byToken); err != nil {
		return nil, err
	}
	locked := map[TraceRef]bool{}
	for {
		rows, err := tx.Rows(ctx, keys, byToken)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r != nil {
				traces = append(traces, TraceRef{r.WorkspaceID, r.TraceID})
			}
		}
		// After the first lock, a trace is left only where a Put by id
		// (holding the other key) moved a token's row meanwhile.
		if traces = slices.DeleteFunc(traces, func(t TraceRef) bool { return locked[t] }); len(traces) == 0 {
			return rows, nil
		}
		if ok, err := tx.Lock(ctx, traces); !ok || err != nil {
			return rows, err
		}
		for _, t := range traces {
			locked[t] = true
		}
		traces = nil
	}
}

// change is what one write does to feedback rows: old are the stored
// versions of the rows it replaces or deletes, new the rows it inserts
// and the new versions of those it replaces (the same ids as in old).
type change struct{ old, new []Row }

// apply looks up the trace meta values the change touches, works out
// every first that moves, adds what the change does to derived data to d,
// and writes it.
func (c change) apply(ctx context.Context, tx Tx, d *Deltas) error {
	probes := c.probes()
	found, err := tx.Earliest(ctx, probes)
	if err != nil {
		return err
	}
	return tx.Write(ctx, c.resolve(probes, found, d))
}

// probes are the lookups of the trace meta values the change's rows hold,
// in order.
func (c change) probes() []Probe {
	removes := map[TraceMetaValue]int{}
	for i := range c.new {
		for _, e := range c.new[i].entries() {
			removes[e.TraceMetaValue] += 0
		}
	}
	for i := range c.old {
		for _, e := range c.old[i].entries() {
			removes[e.TraceMetaValue]++
		}
	}
	probes := make([]Probe, 0, len(removes))
	for _, v := range slices.SortedFunc(maps.Keys(removes), compareMetaValues) {
		probes = append(probes, Probe{v, removes[v] + 1})
	}
	return probes
}

// resolve sets the FirstBits of the change's new rows from what the probes
// found, adds the change's deltas to d, and returns its writes.
func (c change) resolve(probes []Probe, found [][]TraceEntry, d *Deltas) Writes {
	removed := map[string]bool{}
	for _, r := range c.old {
		removed[r.ID] = true
	}
	rows := slices.Clone(c.new)
	holders := map[TraceMetaValue][]int{}
	entries := map[TraceEntry]int{}
	for i := range rows {
		rows[i].FirstBits = 0
		for _, e := range rows[i].entries() {
			holders[e.TraceMetaValue] = append(holders[e.TraceMetaValue], i)
			entries[e]++
		}
	}
	for i := range c.old {
		for _, e := range c.old[i].entries() {
			entries[e]--
		}
	}
	flags := map[string]*Flags{}
	flag := func(id string) *Flags {
		if flags[id] == nil {
			flags[id] = &Flags{ID: id}
		}
		return flags[id]
	}
	for i, p := range probes {
		stored := found[i]
		bit := Bit(p.MetaKey)
		// The first after the change: the earliest stored entry it keeps,
		// or one of its new rows when earlier.
		var first *TraceEntry
		for j := range stored {
			if !removed[stored[j].ID] {
				first = &stored[j]
				break
			}
		}
		newFirst := -1
		for _, k := range holders[p.TraceMetaValue] {
			if e := rows[k].entry(p.TraceMetaValue); first == nil || e.before(*first) {
				first, newFirst = &e, k
			}
		}
		if newFirst >= 0 {
			rows[newFirst].FirstBits |= bit
		}
		if len(stored) > 0 && !removed[stored[0].ID] && (first == nil || first.ID != stored[0].ID) {
			flag(stored[0].ID).Clear |= bit
			d.moveFirst(stored[0], -1)
		}
		if first != nil && newFirst < 0 && !removed[first.ID] && (len(stored) == 0 || first.ID != stored[0].ID) {
			flag(first.ID).Set |= bit
			d.moveFirst(*first, 1)
		}
	}

	var w Writes
	kept := map[string]bool{}
	for i := range rows {
		d.Add(&rows[i], 1)
		kept[rows[i].ID] = true
		if removed[rows[i].ID] {
			w.Updates = append(w.Updates, rows[i])
			d.record(store.Updated, rows[i].Feedback)
		} else {
			w.Inserts = append(w.Inserts, rows[i])
			d.record(store.Created, rows[i].Feedback)
		}
	}
	for i := range c.old {
		d.Add(&c.old[i], -1)
		if !kept[c.old[i].ID] {
			w.Deletes = append(w.Deletes, c.old[i])
			d.record(store.Deleted, c.old[i].Feedback)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(flags)) {
		w.Flags = append(w.Flags, *flags[id])
	}
	for _, e := range slices.SortedFunc(maps.Keys(entries), compareEntries) {
		switch n := entries[e]; {
		case n > 0:
			w.AddEntries = append(w.AddEntries, e)
		case n < 0:
			w.DropEntries = append(w.DropEntries, e)
		}
	}
	return w
}

// entries are the trace entries of a row, one per special key it holds.
func (r *Row) entries() []TraceEntry {
	sp := r.Special()
	var out []TraceEntry
	for k, v := range sp.MetaValues {
		if v != nil {
			out = append(out, TraceEntry{TraceMetaValue{TraceRef{r.WorkspaceID, r.TraceID}, SpecialKeys[k], *v}, r.CreatedAt.UnixMicro(), r.ID})
		}
	}
	return out
}

// entry is the row's entry of v, which it holds.
func (r *Row) entry(v TraceMetaValue) TraceEntry {
	return TraceEntry{v, r.CreatedAt.UnixMicro(), r.ID}
}

func compareTraces(a, b TraceRef) int {
	return cmp.Or(cmp.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.TraceID, b.TraceID))
}

func compareMetaValues(a, b TraceMetaValue) int {
	return cmp.Or(cmp.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.TraceID, b.TraceID),
		cmp.Compare(a.MetaKey, b.MetaKey), cmp.Compare(a.MetaValue, b.MetaValue))
}

func compareEntries(a, b TraceEntry) int {
	return cmp.Or(compareMetaValues(a.TraceMetaValue, b.TraceMetaValue), cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
}
