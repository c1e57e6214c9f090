// Package rollup is feedbackd's one mechanism for writing feedback and
// the analytics data derived from it, shared by both stores. Create,
// Update, Delete and UpsertToken say, through a store's Tx, which rows to
// write (with their first-feedback flags) and how every derived
// structure moves, as plain sorted data; each store supplies the SQL and
// applies the deltas with one statement per structure in the same
// transaction as the write, so what a committed write changed is in the
// derived data when the write is acknowledged. The package also plans
// reads: which grains of which structure answer a query, and which rows
// are left to read.
//
// Names mean one thing each, here and in the stores' tables: a value is a
// feedback's value (-10..10); a metadata key and its value are a meta key
// and a meta value; a grain is the length of a rollup period in seconds,
// and slot i of grain g is the period [i*g, (i+1)*g) of Unix time, in UTC.
//
// The derived structures, and why each exists:
//   - rollups: per workspace, meta key and meta value (both "" for all
//     feedback; ModelMetaKey and the model for a model's feedback),
//     grain, slot and value, the count and the sum of value x weight.
//     They answer graphs. Every top-level key with a string value is
//     rolled up but _user, whose index finds a user's few rows.
//   - group rollups: per workspace, GroupKeys key, meta value, grain and
//     slot, the feedback count, their value x weight and how many traces
//     have their first feedback with the meta value among them. They
//     answer groups by those keys, which then add up over time like the
//     graph counts.
//   - metadata entries (SQLite only): one per feedback and top-level key
//     with a string value outside the special keys (EntryValue), so that a
//     row-bound query filtered by such a pair finds its rows; PostgreSQL
//     has its GIN index for that.
//
// A group's requests for a meta value v are the traces whose first
// feedback carrying v (by time, then id, among all of the trace's
// feedback) is among the feedback the query selects. Every feedback row
// says, per special key, whether it is that first (Row.FirstBits), so a
// trace is counted once, in one slot, and a delete or an update that
// removes a first promotes the trace's next feedback with that meta value
// (write.go says how a write finds them without reading its trace).
package rollup

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/server/store"
)

// The grains longer than store.Quarter, the shortest, in seconds.
const (
	Hour int64 = 3600
	Day  int64 = 86400
)

// Grains are the grains that all feedback and GroupKeys meta values are
// rolled up at, coarsest first: a 30-day graph reads about 30 days, 46
// hours and 6 quarters per value whatever the table's size. Buckets are
// whole quarter hours (time zones are), so quarters serve every query.
var Grains = []int64{Day, Hour, store.Quarter}

// EntryGrains are the grains of the rollups of the keys with metadata
// entries (EntryValue). Their meta values can be as many as the rows
// (session ids): one grain keeps them to a rollup row per feedback and
// key at most.
var EntryGrains = []int64{store.Quarter}

// SpecialKeys are Portkey's metadata keys that feedback rows keep in
// columns of their own (the meta value as text, and whether it is a
// string), indexed, with a first-feedback flag each.
var SpecialKeys = []string{"_user", "_organisation", "_prompt", "_environment"}

// SpecialColumns are the feedback table's columns of the special keys, in
// both stores: each holds its key's meta value as text.
var SpecialColumns = map[string]string{
	"_user": "m_user", "_organisation": "m_organisation", "_prompt": "m_prompt", "_environment": "m_environment",
}

// GroupKeys are the special keys with group rollups. _user has none: users
// are many and each has few rows, so its group rollups would be as many as
// the rows.
var GroupKeys = SpecialKeys[1:]

// MaxEntryLength is the longest key and string value, in characters, that
// is rolled up or has metadata entries.
const MaxEntryLength = 256

// Special is how a row keeps the special keys of its metadata: each meta
// value as text (MetaValues, in SpecialKeys order; nil when absent or
// null: a string as it is, anything else as JSON), and a bit per key
// (1 << its index) in Strings when the meta value is a JSON string.
type Special struct {
	MetaValues [4]*string
	Strings    int
}

// SpecialOf extracts the special keys of m.
func SpecialOf(m map[string]any) Special {
	var sp Special
	for i, k := range SpecialKeys {
		v, ok := m[k]
		if !ok || v == nil {
			continue
		}
		var text string
		switch v := v.(type) {
		case string:
			text = v
			sp.Strings |= 1 << i
		case bool:
			text = strconv.FormatBool(v)
		case json.Number:
			text = v.String()
		default:
			b, err := json.Marshal(v)
			if err != nil {
				continue
			}
			text = string(b)
		}
		sp.MetaValues[i] = &text
	}
	return sp
}

// Bit is the bit of a special key in Special.Strings and Row.FirstBits.
func Bit(key string) int { return 1 << slices.Index(SpecialKeys, key) }

// EntryValue returns v as the meta value of key's metadata entries and
// rollups, and says whether key = v has them: a top-level key other than
// the special keys with a string value, both of 1 to MaxEntryLength
// characters.
func EntryValue(key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok || slices.Contains(SpecialKeys, key) || key == "" ||
		utf8.RuneCountInString(key) > MaxEntryLength || utf8.RuneCountInString(s) > MaxEntryLength {
		return "", false
	}
	return s, true
}

// Row is one version of a feedback row as derived data sees it.
type Row struct {
	*store.Feedback
	// FirstBits has the bit of a special key (Bit) set when the row is
	// its trace's first feedback, by (CreatedAt, ID), with its meta value
	// of that key. The write algorithm sets it on the rows to write.
	FirstBits int
	// TokenID is the feedback token a new row is recorded through, if
	// any; stores write it with the row's insert.
	TokenID string
	// Stored, when set, is the row's special keys as stored; else they
	// are SpecialOf(Metadata). A stored row counts as it was written,
	// even where the database respells a number (jsonb writes 1e2 as 100).
	Stored *Special
}

// Special returns the row's special keys, as its columns hold them.
func (r *Row) Special() Special {
	if r.Stored != nil {
		return *r.Stored
	}
	return SpecialOf(r.Metadata)
}
