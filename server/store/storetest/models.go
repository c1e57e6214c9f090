package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// testModelKeys checks that a change of the model keys rebuilds the model
// rollups from the rows, that writes and filters then use the new keys,
// and that setting the same keys again rebuilds nothing.
func testModelKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	fs := []*store.Feedback{
		feedback(ws, 0, "t1", 4, map[string]any{"ai_model": "a", "model": "b"}),
		feedback(ws, 1, "t1", -2, map[string]any{"model": "b"}),
		feedback(ws, 2, "t2", 6, map[string]any{"model": "c", "ai_model": 5}),
		feedback(ws, 3, "t3", 1, map[string]any{"other": "x"}),
	}
	if err := s.CreateFeedback(ctx, fs, nil); err != nil {
		t.Fatal(err)
	}
	all := store.AnalyticsQuery{From: clock.Add(-24 * time.Hour), To: clock.Add(24 * time.Hour), BucketSize: 7 * 86400}
	expect := func(q store.AnalyticsQuery, want ...store.ModelTally) {
		t.Helper()
		got, err := s.FeedbackModels(ctx, ws, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("models %+v, want %+v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("models %+v, want %+v", got, want)
			}
		}
	}
	expect(all, store.ModelTally{Model: "a", Count: 1, SumWeighted: 4}, store.ModelTally{Model: "b", Count: 1, SumWeighted: -2},
		store.ModelTally{Model: "c", Count: 1, SumWeighted: 6})

	rebuilt, err := s.SetModelKeys(ctx, []string{"model"})
	if err != nil || !rebuilt {
		t.Fatalf("SetModelKeys([model]) = %v, %v; want a rebuild", rebuilt, err)
	}
	expect(all, store.ModelTally{Model: "b", Count: 2, SumWeighted: 2}, store.ModelTally{Model: "c", Count: 1, SumWeighted: 6})
	if rebuilt, err := s.SetModelKeys(ctx, []string{"model"}); err != nil || rebuilt {
		t.Fatalf("SetModelKeys([model]) again = %v, %v; want nothing rebuilt", rebuilt, err)
	}

	// Writes after the change derive the model with the new keys; the
	// contract's cleanup checks every rollup against the rows with them.
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws, 4, "t4", 2, map[string]any{"model": "c", "ai_model": "a", "provider": "x"})}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFeedback(ctx, ws, fs[1].ID, store.Update{Value: 3, MetadataSet: true, Metadata: map[string]any{"model": "c"}, UpdatedAt: clock}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFeedback(ctx, ws, fs[2].ID); err != nil {
		t.Fatal(err)
	}
	expect(all, store.ModelTally{Model: "c", Count: 2, SumWeighted: 5}, store.ModelTally{Model: "b", Count: 1, SumWeighted: 4})
	// A filter by model reads the rows, with the database's keys too.
	byModel := all
	byModel.OrgModels = []string{"openai__b"}
	expect(byModel, store.ModelTally{Model: "b", Count: 1, SumWeighted: 4})
	cells, err := s.FeedbackCells(ctx, ws, byModel)
	if err != nil || len(cells) != 1 || cells[0].Count != 1 || cells[0].Value != 4 {
		t.Errorf("cells of model b: %+v, %v; want one feedback of value 4", cells, err)
	}

	for _, keys := range [][]string{nil, {""}, {"a,b"}, {"it's"}, {"m", "m"}} {
		if _, err := s.SetModelKeys(ctx, keys); store.ErrorCode(err) != store.EINVALID {
			t.Errorf("SetModelKeys(%q): %v, want %s", keys, err, store.EINVALID)
		}
	}
	if _, err := s.SetModelKeys(ctx, rollup.DefaultModelKeys); err != nil {
		t.Fatal(err)
	}
	expect(all, store.ModelTally{Model: "a", Count: 2, SumWeighted: 6}, store.ModelTally{Model: "c", Count: 1, SumWeighted: 3})
	// The rebuild keeps providers apart, as writes do.
	byModel.OrgModels = []string{"y__a"}
	expect(byModel, store.ModelTally{Model: "a", Count: 1, SumWeighted: 4})
}
