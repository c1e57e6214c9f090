package rollup

import (
	"cmp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// RollupKey names one rollup row.
type RollupKey struct {
	WorkspaceID string
	// MetaKey and MetaValue are a metadata key and its string value, both
	// "" for all feedback.
	MetaKey, MetaValue string
	Grain, Slot        int64
	Value              int
}

// GroupKey names one group rollup.
type GroupKey struct {
	WorkspaceID, MetaKey string
	Grain, Slot          int64
	// MetaValue is the key's value as text (Special).
	MetaValue string
}

// MetadataEntry names one metadata entry: feedback ID holds MetaKey =
// MetaValue and was created at CreatedAt (Unix microseconds), on UTC day
// Day.
type MetadataEntry struct {
	WorkspaceID        string
	Day                int64
	MetaKey, MetaValue string
	CreatedAt          int64
	ID                 string
}

// Sums is what a rollup row or a group rollup holds, or a change of it.
type Sums struct {
	// N counts feedback; Traces (group rollups only) the traces whose
	// first feedback with the meta value is among them, the group's
	// requests; SumWeighted their value x weight.
	N, Traces   int64
	SumWeighted float64
}

func (s *Sums) add(sign int64, weighted float64, first bool) {
	s.N += sign
	s.SumWeighted += float64(sign) * weighted
	if first {
		s.Traces += sign
	}
}

// plus adds o to s.
func (s *Sums) plus(o Sums) {
	s.N, s.Traces, s.SumWeighted = s.N+o.N, s.Traces+o.Traces, s.SumWeighted+o.SumWeighted
}

func (s Sums) zero() bool { return s.N == 0 && s.Traces == 0 && s.SumWeighted == 0 }

// Deltas accumulates how changes move the derived structures. The zero
// value is empty and ready to use.
type Deltas struct {
	// ModelKeys are the model keys of the model rollups (ModelOf); nil
	// means DefaultModelKeys.
	ModelKeys []string

	rollups map[RollupKey]*Sums
	groups  map[GroupKey]*Sums
	entries map[MetadataEntry]int64
	// events are the changes' events for webhooks, in the order made.
	events []store.Event
}

// Add adds sign times what row r contributes to every structure, as its
// FirstBits say.
func (d *Deltas) Add(r *Row, sign int64) {
	d.init()
	at := r.CreatedAt.UnixMicro()
	weighted := float64(r.Value) * r.Weight
	rollup := func(metaKey, metaValue string, grains []int64) {
		for _, grain := range grains {
			k := RollupKey{r.WorkspaceID, metaKey, metaValue, grain, slotOf(at, grain), r.Value}
			sums(d.rollups, k).add(sign, weighted, false)
		}
	}
	rollup("", "", Grains)
	keys := d.ModelKeys
	if keys == nil {
		keys = DefaultModelKeys
	}
	if dim, ok := Dimension(keys, r.Metadata); ok {
		rollup(ModelMetaKey, dim, Grains)
	}
	sp := r.Special()
	for _, key := range GroupKeys {
		i := slices.Index(SpecialKeys, key)
		v := sp.MetaValues[i]
		if v == nil {
			continue
		}
		if sp.Strings&(1<<i) != 0 {
			rollup(key, *v, Grains)
		}
		for _, grain := range Grains {
			k := GroupKey{r.WorkspaceID, key, grain, slotOf(at, grain), *v}
			sums(d.groups, k).add(sign, weighted, r.FirstBits&(1<<i) != 0)
		}
	}
	for key, v := range r.Metadata {
		if s, ok := EntryValue(key, v); ok {
			rollup(key, s, EntryGrains)
			d.entries[MetadataEntry{r.WorkspaceID, slotOf(at, Day), key, s, at, r.ID}] += sign
		}
	}
}

// moveFirst adds sign times a first-feedback flag of the row of e, which
// stays where it is: only group rollups count traces.
func (d *Deltas) moveFirst(e TraceEntry, sign int64) {
	if !slices.Contains(GroupKeys, e.MetaKey) {
		return
	}
	d.init()
	for _, grain := range Grains {
		sums(d.groups, GroupKey{e.WorkspaceID, e.MetaKey, grain, slotOf(e.CreatedAt, grain), e.MetaValue}).Traces += sign
	}
}

func (d *Deltas) init() {
	if d.rollups == nil {
		d.rollups, d.groups, d.entries = map[RollupKey]*Sums{}, map[GroupKey]*Sums{}, map[MetadataEntry]int64{}
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

// Merge adds every delta of o to d, and o's events after d's.
func (d *Deltas) Merge(o *Deltas) {
	d.events = append(d.events, o.events...)
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
	for k, n := range o.entries {
		d.entries[k] += n
	}
}

// RollupDelta is a change of one rollup row.
type RollupDelta struct {
	RollupKey
	Sums
}

// GroupDelta is a change of one group rollup.
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
		return cmp.Or(cmp.Compare(x.WorkspaceID, y.WorkspaceID), cmp.Compare(x.Grain, y.Grain), cmp.Compare(x.Slot, y.Slot),
			cmp.Compare(x.MetaKey, y.MetaKey), cmp.Compare(x.MetaValue, y.MetaValue), cmp.Compare(x.Value, y.Value))
	})
	return out
}

// Groups returns the changes of group rollups, in key order, as Rollups.
func (d *Deltas) Groups() []GroupDelta {
	out := make([]GroupDelta, 0, len(d.groups))
	for k, s := range d.groups {
		if !s.zero() {
			out = append(out, GroupDelta{k, *s})
		}
	}
	slices.SortFunc(out, func(a, b GroupDelta) int {
		x, y := a.GroupKey, b.GroupKey
		return cmp.Or(cmp.Compare(x.WorkspaceID, y.WorkspaceID), cmp.Compare(x.Grain, y.Grain), cmp.Compare(x.Slot, y.Slot),
			cmp.Compare(x.MetaKey, y.MetaKey), cmp.Compare(x.MetaValue, y.MetaValue))
	})
	return out
}

// MetadataEntries returns the metadata entries to add and those to
// remove, in key order.
func (d *Deltas) MetadataEntries() (add, remove []MetadataEntry) {
	for k, n := range d.entries {
		switch {
		case n > 0:
			add = append(add, k)
		case n < 0:
			remove = append(remove, k)
		}
	}
	order := func(a, b MetadataEntry) int {
		return cmp.Or(cmp.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.Day, b.Day), cmp.Compare(a.MetaKey, b.MetaKey),
			cmp.Compare(a.MetaValue, b.MetaValue), cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(add, order)
	slices.SortFunc(remove, order)
	return add, remove
}

// record adds the event of a change of one feedback: f as the change
// left it, or for Deleted as it was. A deletion's At is left zero: it
// happens when the store writes it (Events).
func (d *Deltas) record(kind store.EventKind, f *store.Feedback) {
	e := store.Event{ID: uuid.Must(uuid.NewV7()).String(), Kind: kind, Feedback: f}
	if kind != store.Deleted {
		e.At = f.UpdatedAt
	}
	d.events = append(d.events, e)
}

// Events returns the events of the changes, for the webhooks of their
// workspaces (store.Webhooks), in the order the changes were made; a
// deletion happens at now, when the store writes it.
func (d *Deltas) Events(now time.Time) []store.Event {
	for i := range d.events {
		if d.events[i].At.IsZero() {
			d.events[i].At = now
		}
	}
	return d.events
}

// Shrinks says whether a rollup row or group rollup may have lost its last
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

// slotOf is the slot of grain that Unix microsecond at falls in.
func slotOf(at, grain int64) int64 { return store.FloorDiv(at, grain*1_000_000) }
