// Package outbox holds what both stores do alike for webhooks
// (store.Webhooks): how a webhook's kinds and filter are kept, what the
// end of a webhook's walk writes, and trimming in short transactions.
// Each store supplies its SQL.
package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// Finish is what FinishEvents writes to a webhook whose lease it holds,
// besides the attempt itself.
type Finish struct {
	// Past is the seq of the last event the walk passed, for the
	// webhook's new position; 0 when it passed none.
	Past int64
	// Counts says whether Attempts and NextAttemptAt become the webhook's
	// count of failed attempts at its next event and when the next one is
	// due (zero: none). A release that passed nothing leaves both as they
	// were, so that a dispatcher stopping mid-retry does not start the
	// count over.
	Counts        bool
	Attempts      int
	NextAttemptAt time.Time
	// Disable, with Reason, disables the webhook: its receiver answered
	// 410 Gone.
	Disable bool
	Reason  string
	// Lease and LeaseUntil are the webhook's lease afterwards: "" and the
	// zero time end it.
	Lease      string
	LeaseUntil time.Time
}

// FinishOf works out what FinishEvents(w, skipped, a, keepUntil) writes,
// as store.Webhooks says: the walk's events come in order, so the
// position moves to the last one passed, the attempted event included
// unless it is to be retried.
func FinishOf(w *store.Webhook, skipped []*store.Event, a *store.Attempt, keepUntil time.Time) Finish {
	var f Finish
	if len(skipped) > 0 {
		f.Past = skipped[len(skipped)-1].Seq
	}
	if a != nil {
		if a.Outcome == store.Retrying {
			f.Attempts, f.NextAttemptAt = a.N, *a.NextAttemptAt
		} else {
			f.Past = a.EventSeq
		}
		f.Disable, f.Reason = a.Outcome == store.Gone, a.Error
	}
	f.Counts = a != nil || f.Past > 0
	if !keepUntil.IsZero() {
		f.Lease, f.LeaseUntil = w.Lease, keepUntil
	}
	return f
}

// TrimRows bounds the rows one trimming transaction deletes: on SQLite a
// transaction holds the one writer, and on PostgreSQL a transaction that
// writes holds back every webhook's walk until it ends.
const TrimRows = 2000

// Trim runs del, which deletes at most TrimRows rows in a transaction of
// its own and says how many, until a run deletes fewer.
func Trim(del func(limit int) (int64, error)) error {
	for {
		n, err := del(TrimRows)
		if err != nil || n < TrimRows {
			return err
		}
	}
}

// FailedOnly is the condition that keeps Attempts to the failed ones when
// failed, spelled as the partial index webhook_attempts_failed is, so that
// the index serves it on both stores.
func FailedOnly(failed bool) string {
	if failed {
		return ` AND outcome <> 'delivered'`
	}
	return ""
}

// webhookFilter is a webhook's filter as the stores keep it (JSON).
type webhookFilter struct {
	TraceIDs []string       `json:"trace_ids,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	ValueMin *int           `json:"value_min,omitempty"`
	ValueMax *int           `json:"value_max,omitempty"`
}

// Encode renders a webhook's kinds and filter as every store
// keeps them: the kinds as a comma-separated list of their numbers, the
// filter as JSON.
func Encode(w *store.Webhook) (kinds, filter string, err error) {
	parts := make([]string, len(w.Kinds))
	for i, k := range w.Kinds {
		parts[i] = strconv.Itoa(int(k))
	}
	b, err := json.Marshal(webhookFilter{w.Filter.TraceIDs, w.Filter.Metadata, w.Filter.ValueMin, w.Filter.ValueMax})
	if err != nil {
		return "", "", store.Errorf(store.EINVALID, "the filter cannot be stored: %v", err)
	}
	return strings.Join(parts, ","), string(b), nil
}

// Decode sets w's kinds and filter from what Encode made.
func Decode(w *store.Webhook, kinds string, filter []byte) error {
	w.Kinds = nil
	for p := range strings.SplitSeq(kinds, ",") {
		k, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("decode webhook kinds %q: %w", kinds, err)
		}
		w.Kinds = append(w.Kinds, store.EventKind(k))
	}
	var f webhookFilter
	d := json.NewDecoder(bytes.NewReader(filter))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		return fmt.Errorf("decode webhook filter: %w", err)
	}
	w.Filter = store.Filter{TraceIDs: f.TraceIDs, Metadata: f.Metadata, ValueMin: f.ValueMin, ValueMax: f.ValueMax}
	return nil
}
