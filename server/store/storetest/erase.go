package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// eraseRows are the feedback of one workspace the erase tests start
// from: a few small traces and a hot one, users and prompts (special
// keys) spread over them, a number that is no special key, values from
// -10 to 10, one a second.
func eraseRows(ws string) []*store.Feedback {
	var out []*store.Feedback
	for i := range 120 {
		trace := fmt.Sprint("t", i%5)
		if i%3 == 0 {
			trace = "hot"
		}
		meta := map[string]any{"_user": fmt.Sprint("u", i%4), "n": json.Number(fmt.Sprint(i % 2))}
		if i%5 != 0 {
			meta["_prompt"] = fmt.Sprint("p", i%2)
		}
		out = append(out, feedback(ws, i, trace, i%21-10, meta))
	}
	return out
}

// testEraseByFilter erases by each kind of filter the listing takes and
// by several at once: the erase removes exactly what the listing listed,
// a dry run removes nothing, the groups of what is left count each trace
// where it now first got feedback (the suite's cleanup checks every
// derived row and flag), and the same rows of another workspace stay.
func testEraseByFilter(t *testing.T, s store.Store) {
	ctx := context.Background()
	other := workspace(t, s, "other")
	if err := s.CreateFeedback(ctx, eraseRows(other), nil); err != nil {
		t.Fatal(err)
	}
	untouched := listAll(t, s, other, store.Filter{Limit: 1000})
	ptr := func(v int) *int { return &v }
	at := func(n int) *time.Time { x := clock.Add(time.Duration(n) * time.Second); return &x }
	for i, c := range []struct {
		name   string
		filter store.Filter
	}{
		{"trace", store.Filter{TraceIDs: []string{"hot"}}},
		{"user", store.Filter{Metadata: map[string]any{"_user": "u1"}}},
		{"number metadata", store.Filter{Metadata: map[string]any{"n": json.Number("1")}}},
		{"time range", store.Filter{CreatedAfter: at(0), CreatedBefore: at(40)}},
		{"value range", store.Filter{ValueMin: ptr(-3), ValueMax: ptr(3)}},
		{"several", store.Filter{TraceIDs: []string{"hot"}, Metadata: map[string]any{"_prompt": "p1"}, CreatedAfter: at(30)}},
		{"nothing matches", store.Filter{Metadata: map[string]any{"_user": "nobody"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws := workspace(t, s, fmt.Sprint("erase-", i))
			rows := eraseRows(ws)
			if err := s.CreateFeedback(ctx, rows, nil); err != nil {
				t.Fatal(err)
			}
			listed := c.filter
			listed.Limit = 1000
			matched := listAll(t, s, ws, listed)
			all := listAll(t, s, ws, store.Filter{Limit: 1000})
			if n, err := s.EraseFeedback(ctx, ws, c.filter, store.Erase{Max: 1000, DryRun: true}, nil); err != nil || n != len(matched) {
				t.Fatalf("dry run: %d, %v; want %d", n, err, len(matched))
			}
			if got := listAll(t, s, ws, store.Filter{Limit: 1000}); len(got) != len(all) {
				t.Fatalf("a dry run erased %d", len(all)-len(got))
			}
			n, err := s.EraseFeedback(ctx, ws, c.filter, store.Erase{Max: 1000}, nil)
			if err != nil || n != len(matched) {
				t.Fatalf("erase: %d, %v; want %d", n, err, len(matched))
			}
			left := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return slices.Contains(matched, id) })
			if got := listAll(t, s, ws, store.Filter{Limit: 1000}); fmt.Sprint(got) != fmt.Sprint(left) {
				t.Errorf("left %d feedback, want %d", len(got), len(left))
			}
			kept := map[string]*store.Feedback{}
			for _, f := range rows {
				if slices.Contains(left, f.ID) {
					kept[f.ID] = f
				}
			}
			checkGroups(t, s, ws, kept)
		})
	}
	if got := listAll(t, s, other, store.Filter{Limit: 1000}); fmt.Sprint(got) != fmt.Sprint(untouched) {
		t.Errorf("another workspace lost %d feedback", len(untouched)-len(got))
	}
	checkGroups(t, s, other, nil)
}

// checkGroups checks that the groups by every special key of ws count
// each trace once per meta value among rows (nil: skip the check of
// counts, only read them).
func checkGroups(t *testing.T, s store.Store, ws string, rows map[string]*store.Feedback) {
	t.Helper()
	q := store.AnalyticsQuery{From: clock.Add(-24 * time.Hour), To: clock.Add(24 * time.Hour), BucketSize: 900}
	for _, key := range []string{"_user", "_prompt"} {
		groups, total, err := s.MetadataGroups(context.Background(), ws, key, q, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if rows == nil {
			continue
		}
		want := map[string]map[string]bool{}
		for _, f := range rows {
			if v, ok := f.Metadata[key].(string); ok {
				if want[v] == nil {
					want[v] = map[string]bool{}
				}
				want[v][f.TraceID] = true
			}
		}
		if total != len(want) {
			t.Errorf("groups by %s: %d, want %d", key, total, len(want))
		}
		for _, g := range groups {
			if g.Requests != int64(len(want[g.MetaValue])) {
				t.Errorf("groups by %s, %s: %d requests, want %d", key, g.MetaValue, g.Requests, len(want[g.MetaValue]))
			}
		}
	}
}

// testEraseGuard refuses an erase of more than the limit, and one whose
// confirmation is not the count, with the count and erasing nothing; a
// confirmed one goes ahead. An erase records its Idempotency-Key with the
// count, and a token bound to an erased trace takes a new vote.
func testEraseGuard(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	rows := eraseRows(ws)
	if err := s.CreateFeedback(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	hot := store.Filter{TraceIDs: []string{"hot"}}
	want := len(listAll(t, s, ws, store.Filter{TraceIDs: hot.TraceIDs, Limit: 1000}))
	wrong := want - 1
	for _, e := range []store.Erase{{Max: want - 1}, {Max: 1000, Confirm: &wrong}} {
		n, err := s.EraseFeedback(ctx, ws, hot, e, nil)
		var refused *store.EraseRefused
		if !errors.As(err, &refused) || refused.Count != want || store.ErrorCode(err) != store.ECONFLICT {
			t.Errorf("%+v: %d, %v; want refused with %d", e, n, err, want)
		}
	}
	if got := len(listAll(t, s, ws, store.Filter{Limit: 1000})); got != len(rows) {
		t.Fatalf("refused erases left %d of %d", got, len(rows))
	}

	tok, err := s.UpsertTokenFeedback(ctx, "tok", feedback(ws, 500, "hot", 3, map[string]any{"_user": "u9"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := want + 1 // the token's vote
	idem := &store.Idempotency{Scope: ws, Key: "k", Fingerprint: []byte("fp"), Message: "%d feedback erased", At: clock}
	if n, err := s.EraseFeedback(ctx, ws, hot, store.Erase{Max: 1, Confirm: &confirmed}, idem); err != nil || n != confirmed {
		t.Fatalf("confirmed erase: %d, %v; want %d", n, err, confirmed)
	}
	if r, err := s.IdempotentResult(ctx, ws, "k"); err != nil || r.Message != fmt.Sprintf("%d feedback erased", confirmed) || len(r.IDs) != 0 {
		t.Errorf("recorded erase: %+v, %v", r, err)
	}
	if _, err := s.EraseFeedback(ctx, ws, hot, store.Erase{Max: 1}, idem); !errors.Is(err, store.ErrIdempotencyKeyUsed) {
		t.Errorf("second erase under the key: %v, want ErrIdempotencyKeyUsed", err)
	}
	if _, err := s.GetFeedback(ctx, ws, tok.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("the token's vote outlived its trace: %v", err)
	}
	again, err := s.UpsertTokenFeedback(ctx, "tok", feedback(ws, 600, "hot", -2, map[string]any{"_user": "u9"}), nil)
	if err != nil || again.Value != -2 {
		t.Fatalf("a new vote with the token: %+v, %v", again, err)
	}
	if got := listAll(t, s, ws, store.Filter{TraceIDs: hot.TraceIDs, Limit: 1000}); len(got) != 1 || got[0] != again.ID {
		t.Errorf("the trace holds %v, want the new vote alone", got)
	}
}
