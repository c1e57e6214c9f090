package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// testAnalytics checks FeedbackCells and MetadataGroups against a plain
// recomputation over the rows the test knows are stored, for random data
// that was then updated and partly deleted (derived data must follow, and
// a trace's next feedback become its first), random ranges (slot
// boundaries and the microseconds around them included) and time zones,
// with and without filters.
func testAnalytics(t *testing.T, s store.Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	ws, other := workspace(t, s, "a"), workspace(t, s, "b")
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	window := 10 * 24 * time.Hour

	model := map[string]*store.Feedback{}
	randomMeta := func() map[string]any {
		m := map[string]any{}
		if rng.IntN(5) > 0 {
			m["_user"] = fmt.Sprint("u", rng.IntN(6))
		} else if rng.IntN(2) == 0 {
			m["_user"] = json.Number("5") // a number where strings are usual
		}
		if rng.IntN(3) > 0 {
			// "5" and 5 are two meta values that groups render alike.
			m["_prompt"] = []any{"p0", "p1", "p2", "5", json.Number("5")}[rng.IntN(5)]
		}
		if rng.IntN(2) == 0 {
			m["_environment"] = "prod"
		}
		if rng.IntN(3) > 0 {
			m["_organisation"] = fmt.Sprint("o", rng.IntN(3))
		}
		if rng.IntN(2) == 0 {
			m["region"] = []any{"eu", "us", json.Number("2.5"), true}[rng.IntN(4)]
		}
		// A model under either key, both, or neither, and what is not one
		// (a number, "", too long), which falls through to the next key.
		models := []any{"gpt-4o", "claude", "openai__gpt-4o", json.Number("4"), "", strings.Repeat("m", 257)}
		if rng.IntN(2) == 0 {
			m["ai_model"] = models[rng.IntN(len(models))]
		}
		if rng.IntN(2) == 0 {
			m["model"] = models[rng.IntN(len(models))]
		}
		if rng.IntN(2) == 0 {
			m[[]string{"ai_provider", "provider"}[rng.IntN(2)]] = []any{"openai", "azure", true}[rng.IntN(3)]
		}
		return m
	}
	randomTime := func() time.Time {
		switch rng.IntN(4) {
		case 0: // exactly on a slot boundary
			return start.Add(time.Duration(rng.IntN(int(window/(15*time.Minute)))) * 15 * time.Minute)
		case 1: // a microsecond before one
			return start.Add(time.Duration(1+rng.IntN(int(window/(15*time.Minute))))*15*time.Minute - time.Microsecond)
		default:
			return start.Add(time.Duration(rng.Int64N(int64(window))) / time.Microsecond * time.Microsecond)
		}
	}
	weights := []float64{0, 0.25, 0.5, 1, 0.3}
	var batch []*store.Feedback
	for i := range 500 {
		at := randomTime()
		f := &store.Feedback{
			ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, TraceID: fmt.Sprint("t", rng.IntN(120)),
			Value: rng.IntN(21) - 10, Weight: weights[rng.IntN(len(weights))], Metadata: randomMeta(),
			CreatedAt: at, UpdatedAt: at,
		}
		batch = append(batch, f)
		model[f.ID] = f
		if len(batch) == 50 || i == 499 {
			if err := s.CreateFeedback(ctx, batch, nil); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	// Noise in another workspace, at the same times.
	var noise []*store.Feedback
	for range 50 {
		at := randomTime()
		noise = append(noise, &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: other, TraceID: "t1",
			Value: 10, Weight: 1, Metadata: map[string]any{"_user": "u1", "region": "eu"}, CreatedAt: at, UpdatedAt: at})
	}
	if err := s.CreateFeedback(ctx, noise, nil); err != nil {
		t.Fatal(err)
	}
	// Token feedback goes through the upsert path, twice for one token.
	for i := range 2 {
		at := start.Add(time.Duration(i) * time.Hour)
		f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, TraceID: "tok", Value: 3 - 6*i, Weight: 0.5,
			Metadata: map[string]any{"_user": "u1"}, CreatedAt: at, UpdatedAt: at}
		got, err := s.UpsertTokenFeedback(ctx, "token-1", f, nil)
		if err != nil {
			t.Fatal(err)
		}
		model[got.ID] = got
	}
	// Updates and deletes after loading: rollups must follow them.
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range model {
			if !yield(id) {
				return
			}
		}
	})
	for i, id := range ids {
		f := model[id]
		switch i % 7 {
		case 0:
			if err := s.DeleteFeedback(ctx, ws, id); err != nil {
				t.Fatal(err)
			}
			delete(model, id)
		case 1, 2:
			u := store.Update{Value: rng.IntN(21) - 10, UpdatedAt: f.UpdatedAt.Add(time.Minute)}
			if i%2 == 0 {
				w := weights[rng.IntN(len(weights))]
				u.Weight = &w
			}
			if i%3 == 0 {
				u.Metadata, u.MetadataSet = randomMeta(), true
			}
			got, err := s.UpdateFeedback(ctx, ws, id, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			model[id] = got
		}
	}

	// The recomputation.
	render := func(v any) (string, bool) {
		switch v := v.(type) {
		case nil:
			return "", false
		case string:
			return v, true
		case bool:
			return fmt.Sprint(v), true
		default:
			b, _ := json.Marshal(v)
			return string(b), true
		}
	}
	matches := func(f *store.Feedback, q store.AnalyticsQuery) bool {
		if f.CreatedAt.Before(q.From) || f.CreatedAt.After(q.To) {
			return false
		}
		if len(q.TraceIDs) > 0 && !slices.Contains(q.TraceIDs, f.TraceID) {
			return false
		}
		wv := float64(f.Value) * f.Weight
		if (q.WeightedMin != nil && wv < *q.WeightedMin) || (q.WeightedMax != nil && wv > *q.WeightedMax) {
			return false
		}
		for k, want := range q.Metadata {
			got, ok := f.Metadata[k]
			if !ok || !jsonEqual(got, want) {
				return false
			}
		}
		if len(q.OrgModels) > 0 && !slices.ContainsFunc(q.OrgModels, func(item string) bool {
			return servedBy(rollup.DefaultModelKeys, f.Metadata, item)
		}) {
			return false
		}
		return true
	}
	floorDiv := func(a, b int64) int64 {
		q := a / b
		if a%b != 0 && (a < 0) != (b < 0) {
			q--
		}
		return q
	}

	zones := []int64{0, 3600, -16200, 19800, 20700, -36000}
	sizes := []int64{3600, 86400, 7 * 86400}
	filters := []store.AnalyticsQuery{
		{},
		{Metadata: map[string]any{"_user": "u1"}},
		{Metadata: map[string]any{"_prompt": "p2"}},
		{Metadata: map[string]any{"_environment": "prod"}},
		{Metadata: map[string]any{"_user": 5.0}},
		{Metadata: map[string]any{"_user": "5"}},
		{Metadata: map[string]any{"region": "eu"}},
		{Metadata: map[string]any{"region": 2.5}},
		{Metadata: map[string]any{"region": true, "_user": "u2"}},
		{Metadata: map[string]any{"region": "us"}, WeightedMax: ptrF(1)},
		{Metadata: map[string]any{"region": "us", "_prompt": "p1"}},
		{Metadata: map[string]any{"region": "eu"}, TraceIDs: []string{"t1", "t2", "t3", "t4", "t5"}},
		{TraceIDs: []string{"t1", "t2", "t3", "tok"}},
		{WeightedMin: ptrF(-2), WeightedMax: ptrF(2.5)},
		{Metadata: map[string]any{"_user": "u3"}, WeightedMin: ptrF(0)},
		{}, // again, so that unfiltered groups meet random ranges too
		{Metadata: map[string]any{"_prompt": "5"}},
		// Groups by one rollup key under a filter on another, and on both.
		{Metadata: map[string]any{"_organisation": "o1"}},
		{Metadata: map[string]any{"_environment": "prod", "_prompt": "p1"}},
		{Metadata: map[string]any{"_organisation": "o2", "_environment": "prod"}},
		{Metadata: map[string]any{"_prompt": 5.0, "_environment": "prod"}},
		{Metadata: map[string]any{"_environment": "prod", "_prompt": "5"}},
		{Metadata: map[string]any{"_organisation": "o0", "_prompt": "p0", "_environment": "prod"}},
		// Portkey's ai_org_model: a provider's model, a bare model, the
		// literal provider__model, and with other filters.
		{OrgModels: []string{"openai__gpt-4o"}},
		{OrgModels: []string{"claude", "azure__gpt-4o"}},
		{OrgModels: []string{"x__openai__gpt-4o"}},
		{OrgModels: []string{"openai__openai__gpt-4o", "azure__claude"}},
		{OrgModels: []string{"openai__claude"}, Metadata: map[string]any{"_prompt": "p1"}},
		{Metadata: map[string]any{"ai_model": "claude"}},
	}
	for i := range 4 * len(filters) {
		q := filters[i%len(filters)]
		a, b := randomTime(), randomTime()
		if i%5 == 0 {
			a, b = start.Add(-time.Hour), start.Add(window+time.Hour) // everything
		}
		if b.Before(a) {
			a, b = b, a
		}
		if i%3 == 0 {
			b = b.Add(-time.Microsecond) // just short of a boundary
		}
		q.From, q.To = a, b
		zone := zones[i%len(zones)]
		q.BucketSize = sizes[i%len(sizes)]
		q.BucketShift = zone
		if q.BucketSize == 7*86400 {
			q.BucketShift += 3 * 86400
		}
		name := fmt.Sprintf("query %d %+v", i, q)

		want := map[[2]int64]*store.Cell{}
		for _, f := range model {
			if !matches(f, q) {
				continue
			}
			k := [2]int64{floorDiv(f.CreatedAt.UnixMicro()+q.BucketShift*1e6, q.BucketSize*1e6), int64(f.Value)}
			if want[k] == nil {
				want[k] = &store.Cell{Bucket: k[0], Value: f.Value}
			}
			want[k].Count++
			want[k].SumWeighted += float64(f.Value) * f.Weight
		}
		got, err := s.FeedbackCells(ctx, ws, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d cells, want %d", name, len(got), len(want))
		}
		for _, c := range got {
			w := want[[2]int64{c.Bucket, int64(c.Value)}]
			if w == nil || w.Count != c.Count || math.Abs(w.SumWeighted-c.SumWeighted) > 1e-9 {
				t.Errorf("%s: cell %+v, want %+v", name, c, w)
			}
		}

		wantModels := map[string]*store.ModelTally{}
		for _, f := range model {
			m, ok := rollup.ModelOf(rollup.DefaultModelKeys, f.Metadata)
			if !ok || !matches(f, q) {
				continue
			}
			if wantModels[m] == nil {
				wantModels[m] = &store.ModelTally{Model: m}
			}
			wantModels[m].Count++
			wantModels[m].SumWeighted += float64(f.Value) * f.Weight
		}
		gotModels, err := s.FeedbackModels(ctx, ws, q)
		if err != nil {
			t.Fatalf("%s models: %v", name, err)
		}
		if len(gotModels) != len(wantModels) {
			t.Errorf("%s: %d models, want %d", name, len(gotModels), len(wantModels))
		}
		for j, m := range gotModels {
			w := wantModels[m.Model]
			if w == nil || w.Count != m.Count || math.Abs(w.SumWeighted-m.SumWeighted) > 1e-9 {
				t.Errorf("%s: model %+v, want %+v", name, m, w)
			}
			if j > 0 && (m.Count > gotModels[j-1].Count || m.Count == gotModels[j-1].Count && m.Model < gotModels[j-1].Model) {
				t.Errorf("%s: model %+v ranked after %+v", name, m, gotModels[j-1])
			}
		}

		for _, key := range []string{"_user", "_prompt", "_environment", "_organisation", "region"} {
			// A trace counts in a group where its first feedback with the
			// meta value, among all of its feedback, is one the query
			// selects.
			first := map[[2]string]*store.Feedback{}
			for _, f := range model {
				if v, ok := render(f.Metadata[key]); ok {
					k := [2]string{f.TraceID, v}
					if have := first[k]; have == nil || f.CreatedAt.Before(have.CreatedAt) || (f.CreatedAt.Equal(have.CreatedAt) && f.ID < have.ID) {
						first[k] = f
					}
				}
			}
			type agg struct {
				requests int64
				n        int
				sum      float64
				lastSeen time.Time
			}
			groups := map[string]*agg{}
			for _, f := range model {
				v, ok := render(f.Metadata[key])
				if !ok || !matches(f, q) {
					continue
				}
				g := groups[v]
				if g == nil {
					g = &agg{}
					groups[v] = g
				}
				if first[[2]string{f.TraceID, v}] == f {
					g.requests++
				}
				g.n++
				g.sum += float64(f.Value) * f.Weight
				if f.CreatedAt.After(g.lastSeen) {
					g.lastSeen = f.CreatedAt
				}
			}
			var wantGroups []store.Group
			for v, g := range groups {
				wantGroups = append(wantGroups, store.Group{MetaValue: v, Requests: g.requests, AvgWeighted: g.sum / float64(g.n), LastSeen: g.lastSeen})
			}
			slices.SortFunc(wantGroups, func(a, b store.Group) int {
				if a.Requests != b.Requests {
					return int(b.Requests - a.Requests)
				}
				return strings.Compare(a.MetaValue, b.MetaValue)
			})
			for _, page := range [][2]int{{0, 100}, {1, 2}, {len(wantGroups), 5}} {
				gotGroups, total, err := s.MetadataGroups(ctx, ws, key, q, page[0], page[1])
				if err != nil {
					t.Fatalf("%s groups %s: %v", name, key, err)
				}
				if total != len(wantGroups) {
					t.Errorf("%s groups %s: total %d, want %d", name, key, total, len(wantGroups))
				}
				lo, hi := min(page[0], len(wantGroups)), min(page[0]+page[1], len(wantGroups))
				wantPage := wantGroups[lo:hi]
				if len(gotGroups) != len(wantPage) {
					t.Errorf("%s groups %s page %v: %d groups, want %d", name, key, page, len(gotGroups), len(wantPage))
					continue
				}
				for j, g := range gotGroups {
					w := wantPage[j]
					if g.MetaValue != w.MetaValue || g.Requests != w.Requests || math.Abs(g.AvgWeighted-w.AvgWeighted) > 1e-9 || !g.LastSeen.Equal(w.LastSeen) {
						t.Errorf("%s groups %s: got %+v, want %+v", name, key, g, w)
					}
				}
			}
		}
	}

	// Queries the stores must refuse.
	bad := []store.AnalyticsQuery{
		{From: start, To: start.Add(-time.Second), BucketSize: 3600},
		{From: start, To: start, BucketSize: 3601},
		{From: start, To: start, BucketSize: 3600, BucketShift: 60},
		{From: start, To: start, BucketSize: 0},
	}
	for _, q := range bad {
		if _, err := s.FeedbackCells(ctx, ws, q); store.ErrorCode(err) != store.EINVALID {
			t.Errorf("FeedbackCells(%+v): got %v, want %s", q, err, store.EINVALID)
		}
	}
}

func ptrF(v float64) *float64 { return &v }

// servedBy is Portkey's ai_org_model item by its definition: a feedback
// naming a provider is served by provider__model, one without a provider
// by its model and by any provider's: item is its model, or its model
// follows item's first "__".
func servedBy(keys []string, m map[string]any, item string) bool {
	model, ok := rollup.ModelOf(keys, m)
	if !ok {
		return false
	}
	if provider, ok := rollup.ProviderOf(m); ok {
		return provider+"__"+model == item
	}
	_, after, split := strings.Cut(item, "__")
	return model == item || split && model == after
}

// jsonEqual compares two metadata values as JSON values: numbers by value,
// never a string with a number.
func jsonEqual(a, b any) bool {
	num := func(v any) (float64, bool) {
		switch v := v.(type) {
		case json.Number:
			f, err := v.Float64()
			return f, err == nil
		case float64:
			return v, true
		}
		return 0, false
	}
	if x, ok := num(a); ok {
		y, ok := num(b)
		return ok && x == y
	}
	return a == b
}
