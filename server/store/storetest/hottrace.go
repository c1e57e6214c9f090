package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// testHotTrace writes thousands of feedback to one trace, as a
// conversation that collects feedback for months, an evaluation pipeline
// or a client with a constant trace id would: bulks (some older than what
// the trace holds, as imports are), single writes, random updates that
// move special keys' meta values, deletes of the trace's first feedback
// and of random rows, and token votes. Groups by every special key then
// count each trace once per meta value, and the suite's cleanup checks
// every flag and derived row against the definition (EqualDerived).
func testHotTrace(t *testing.T, s store.Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 5))
	ws := workspace(t, s, "hot")
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	model := map[string]*store.Feedback{}
	meta := func() map[string]any {
		m := map[string]any{"_environment": "prod"}
		// A skewed _user: a few users give most of the feedback.
		m["_user"] = fmt.Sprint("u", int(rng.ExpFloat64()*4)%40)
		if rng.IntN(3) > 0 {
			m["_prompt"] = []any{"p0", "p1", json.Number("7")}[rng.IntN(3)]
		}
		if rng.IntN(2) == 0 {
			m["_organisation"] = fmt.Sprint("o", rng.IntN(4))
		}
		return m
	}
	newFeedback := func(trace string, at time.Time) *store.Feedback {
		return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, TraceID: trace,
			Value: rng.IntN(21) - 10, Weight: float64(rng.IntN(5)) / 4, Metadata: meta(), CreatedAt: at, UpdatedAt: at}
	}
	create := func(fs ...*store.Feedback) {
		t.Helper()
		if err := s.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatalf("CreateFeedback of %d: %v", len(fs), err)
		}
		for _, f := range fs {
			model[f.ID] = f
		}
	}
	// Bulks of one trace, each sharing one time as the API's do, the
	// third and fifth older than all the trace holds.
	for i, day := range []int{10, 12, 3, 14, 1, 20} {
		at := start.Add(time.Duration(day) * 24 * time.Hour)
		var bulk []*store.Feedback
		for range 500 {
			bulk = append(bulk, newFeedback("hot", at))
		}
		if i == 1 {
			bulk = append(bulk, newFeedback("cold", at))
		}
		create(bulk...)
	}
	ids := func() []string { return slices.Sorted(maps.Keys(model)) }
	for i := range 300 {
		at := start.Add(time.Duration(rng.Int64N(int64(30*24*time.Hour))) / time.Microsecond * time.Microsecond)
		switch op := rng.IntN(10); {
		case op < 3:
			create(newFeedback("hot", at))
		case op < 5:
			// The oldest row: the first of its values, promoting the next.
			oldest := slices.MinFunc(slices.Collect(maps.Values(model)), func(a, b *store.Feedback) int {
				if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
					return c
				}
				return cmp.Compare(a.ID, b.ID)
			})
			if err := s.DeleteFeedback(ctx, ws, oldest.ID); err != nil {
				t.Fatalf("delete the oldest: %v", err)
			}
			delete(model, oldest.ID)
		case op < 6:
			id := ids()[rng.IntN(len(model))]
			if err := s.DeleteFeedback(ctx, ws, id); err != nil {
				t.Fatal(err)
			}
			delete(model, id)
		case op < 8:
			id := ids()[rng.IntN(len(model))]
			u := store.Update{Value: rng.IntN(21) - 10, Metadata: meta(), MetadataSet: rng.IntN(4) > 0, UpdatedAt: at}
			got, err := s.UpdateFeedback(ctx, ws, id, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			model[id] = got
		default:
			got, err := s.UpsertTokenFeedback(ctx, fmt.Sprint("tok", i%5), newFeedback("hot", at), nil)
			if err != nil {
				t.Fatal(err)
			}
			model[got.ID] = got
		}
	}

	// Over all time every trace counts once per meta value it holds.
	q := store.AnalyticsQuery{From: start.Add(-24 * time.Hour), To: start.Add(60 * 24 * time.Hour), BucketSize: 86400}
	for _, key := range rollup.SpecialKeys {
		want := map[string]map[string]bool{}
		for _, f := range model {
			if v := rollup.SpecialOf(f.Metadata).MetaValues[slices.Index(rollup.SpecialKeys, key)]; v != nil {
				if want[*v] == nil {
					want[*v] = map[string]bool{}
				}
				want[*v][f.TraceID] = true
			}
		}
		groups, total, err := s.MetadataGroups(ctx, ws, key, q, 0, 1000)
		if err != nil {
			t.Fatal(err)
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

// testBulkAcrossWorkspaces writes one bulk holding feedback of two
// workspaces on the same trace id (feedbackd import's batches do): each
// workspace's trace counts once per value, as if written apart.
func testBulkAcrossWorkspaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	meta := map[string]any{"_organisation": "o", "_user": "u"}
	fs := []*store.Feedback{feedback(a, 2, "t", 1, meta), feedback(b, 1, "t", 1, meta), feedback(a, 0, "t", 1, meta), feedback(b, 3, "t", 1, meta)}
	if err := s.CreateFeedback(ctx, fs, nil); err != nil {
		t.Fatal(err)
	}
	q := store.AnalyticsQuery{From: clock.Add(-time.Hour), To: clock.Add(time.Hour), BucketSize: 900}
	for _, ws := range []string{a, b} {
		for _, key := range []string{"_organisation", "_user"} {
			groups, _, err := s.MetadataGroups(ctx, ws, key, q, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) != 1 || groups[0].Requests != 1 {
				t.Errorf("groups by %s: %+v, want one group of one request", key, groups)
			}
		}
	}
}
