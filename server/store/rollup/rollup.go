// Package rollup is feedbackd's one mechanism for writing feedback and
// the analytics data derived from it, shared by both stores. Create,
// Update, Delete and UpsertToken say, through a store's Tx, which rows to
// write (with their first-feedback flags) and how every derived
// structure moves, as plain sorted data; each store supplies the SQL and
// applies the deltas with one statement per structure in the same
// transaction as the write, so what a committed write changed is in the
// derived data when the write is acknowledged. The package also plans
// reads: which spans of which structure answer a query, and which rows
// are left to read.
//
// The derived structures, and why each exists:
//   - rollups: per workspace, dimension (all feedback, or one string value
//     of a key), span and slot, the count and the sum of value x weight of
//     each score. They answer graphs. Every top-level key with a string
//     value is a dimension but _user, whose index finds a user's few rows.
//   - group slots: per workspace, GroupKeys key, span, slot and value, the
//     feedback count, their value x weight and how many of them are their
//     trace's first feedback with that value. They answer groups by those
//     keys, which then add up over time like the graph counts.
//   - pair entries (SQLite only): one per feedback and top-level string
//     pair outside the special keys, so that a row-bound query filtered by
//     such a pair finds its rows; PostgreSQL has its GIN index for that.
//
// A group's requests for a value v are the traces whose first feedback
// carrying v (by time, then id, among all of the trace's feedback) is among
// the feedback the query selects. Every feedback row says, per special key,
// whether it is that first (Row.Firsts), so a trace is counted once, in
// one slot, and a delete or an update that removes a first promotes the
// trace's next feedback with that value (write.go says how a write finds
// them without reading its trace).
package rollup

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/server/store"
)

// Span lengths in seconds. A slot of a span covers [i*span, (i+1)*span) of
// Unix time, in UTC. The shortest is the granularity of analytics buckets.
const (
	Quarter int64 = store.SlotSeconds
	Hour    int64 = 3600
	Day     int64 = 86400
)

// Spans are the spans that all feedback and GroupKeys values are rolled
// up at, coarsest first: a 30-day graph reads about 30 days, 46 hours and
// 6 quarters per score whatever the table's size. Buckets are whole
// quarter hours (time zones are), so quarters serve every query.
var Spans = []int64{Day, Hour, Quarter}

// PairSpans are the spans of the other keys' dimensions. Their values can
// be as many as the rows (session ids): one span keeps them to a rollup
// row per feedback and pair at most.
var PairSpans = []int64{Quarter}

// SpecialKeys are Portkey's metadata keys that feedback rows keep in
// columns of their own (the value as text, and whether it is a string),
// indexed, with a first-feedback flag each.
var SpecialKeys = []string{"_user", "_organisation", "_prompt", "_environment"}

// GroupKeys are the special keys with group slots. _user has none: users
// are many and each has few rows, so slots would be as many as the rows.
var GroupKeys = SpecialKeys[1:]

// MaxPairLength is the longest key and string value, in characters, that
// is rolled up or has pair entries.
const MaxPairLength = 256

// Special is how a row keeps the special keys of its metadata: each value
// as text (Values, in SpecialKeys order; nil when absent or null: a string
// as it is, anything else as JSON), and a bit per key (1 << its index) in
// Strings when the value is a JSON string.
type Special struct {
	Values  [4]*string
	Strings int
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
		sp.Values[i] = &text
	}
	return sp
}

// Bit is the bit of a special key in Special.Strings and Row.Firsts.
func Bit(key string) int { return 1 << slices.Index(SpecialKeys, key) }

// PairValue says whether key = v is a pair of a dimension of the rollups
// other than the special keys (and has pair entries): a top-level key
// with a string value, both of 1 to MaxPairLength characters.
func PairValue(key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok || slices.Contains(SpecialKeys, key) || key == "" ||
		utf8.RuneCountInString(key) > MaxPairLength || utf8.RuneCountInString(s) > MaxPairLength {
		return "", false
	}
	return s, true
}

// Row is one version of a feedback row as derived data sees it.
type Row struct {
	*store.Feedback
	// Firsts has the bit of a special key (Bit) set when the row is its
	// trace's first feedback, by (CreatedAt, ID), with its value of that
	// key. The write algorithm sets it on the rows to write.
	Firsts int
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
