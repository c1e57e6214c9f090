package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// foldTestStore never folds by itself: the tests fold when they mean to.
func foldTestStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	s, err := sqlite.OpenWith(context.Background(), filepath.Join(t.TempDir(), "feedbackd.db"),
		sqlite.Options{FoldRows: 1 << 30, FoldAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ws, err := s.EnsureWorkspace(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	return s, ws.ID
}

var foldDay = time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)

func foldRow(ws string, minute, value int, prompt string) *store.Feedback {
	at := foldDay.Add(time.Duration(minute) * time.Minute)
	return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, TraceID: "t", Value: value, Weight: 0.5,
		Metadata: map[string]any{"_prompt": prompt}, CreatedAt: at, UpdatedAt: at}
}

// dayCells asks for the day in hour buckets unfiltered and by _prompt p1:
// queries the rollups answer.
func dayCells(t *testing.T, s store.Store, ws string) [2][]store.Cell {
	t.Helper()
	var out [2][]store.Cell
	for i, meta := range []map[string]any{nil, {"_prompt": "p1"}} {
		q := store.AnalyticsQuery{From: foldDay, To: foldDay.Add(24*time.Hour - time.Microsecond), Metadata: meta, BucketSize: 3600}
		if len(q.Plan().Reads) == 0 {
			t.Fatalf("query %v is not served by the rollups", meta)
		}
		cells, err := s.FeedbackCells(context.Background(), ws, q)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = cells
	}
	return out
}

// Rows updated and deleted before they are folded are folded as they are
// then; answers are the same before and after the fold.
func TestFoldKeepsAnswers(t *testing.T) {
	ctx := context.Background()
	s, ws := foldTestStore(t)
	var rows []*store.Feedback
	for i := range 40 {
		rows = append(rows, foldRow(ws, i*30, i%21-10, []string{"p1", "p2"}[i%2]))
	}
	if err := s.CreateFeedback(ctx, rows[:20], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, rows[20:], nil); err != nil {
		t.Fatal(err)
	}
	// Change folded and unfolded rows alike.
	for _, f := range []*store.Feedback{rows[3], rows[25]} {
		if err := s.DeleteFeedback(ctx, ws, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	w := 1.0
	for _, f := range []*store.Feedback{rows[4], rows[26]} {
		if _, err := s.UpdateFeedback(ctx, ws, f.ID, store.Update{Value: 7, Weight: &w, MetadataSet: true,
			Metadata: map[string]any{"_prompt": "p1"}, UpdatedAt: f.UpdatedAt}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := expectedDay(rows, map[string]bool{rows[3].ID: true, rows[25].ID: true}, map[string]bool{rows[4].ID: true, rows[26].ID: true})
	if got := dayCells(t, s, ws); !reflect.DeepEqual(got, want) {
		t.Fatalf("before the fold:\n got %v\nwant %v", got, want)
	}
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dayCells(t, s, ws); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the fold:\n got %v\nwant %v", got, want)
	}
}

// After the newest rows are deleted, SQLite would give their rowids to the
// next rows; those must still be counted, although the fold mark is above
// them.
func TestFoldAfterDeletingNewestRows(t *testing.T) {
	ctx := context.Background()
	s, ws := foldTestStore(t)
	a, b, c := foldRow(ws, 10, 1, "p1"), foldRow(ws, 20, 2, "p1"), foldRow(ws, 30, 3, "p1")
	if err := s.CreateFeedback(ctx, []*store.Feedback{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFeedback(ctx, ws, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{c}, nil); err != nil {
		t.Fatal(err)
	}
	want := expectedDay([]*store.Feedback{a, c}, nil, nil)
	for _, when := range []string{"before", "after"} {
		if got := dayCells(t, s, ws); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s the second fold:\n got %v\nwant %v", when, got, want)
		}
		if err := s.Fold(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// expectedDay computes dayCells' answer from the rows: deleted ones left
// out, updated ones with value 7, weight 1 and _prompt p1.
func expectedDay(rows []*store.Feedback, deleted, updated map[string]bool) [2][]store.Cell {
	all, p1 := store.Cells{}, store.Cells{}
	for _, f := range rows {
		if deleted[f.ID] {
			continue
		}
		value, weight, prompt := f.Value, f.Weight, f.Metadata["_prompt"]
		if updated[f.ID] {
			value, weight, prompt = 7, 1, "p1"
		}
		c := store.Cell{Bucket: f.CreatedAt.Unix() / 3600, Value: value, Count: 1, SumWeighted: float64(value) * weight}
		all.Add(c)
		if prompt == "p1" {
			p1.Add(c)
		}
	}
	return [2][]store.Cell{all.Sorted(), p1.Sorted()}
}

// VACUUM keeps rowids (feedback has an INTEGER PRIMARY KEY), which the fold
// mark and the metadata pair index refer to: after it, answers are the
// same, and new rows are counted.
func TestVacuumKeepsAnswers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s, err := sqlite.OpenWith(ctx, path, sqlite.Options{FoldRows: 1 << 30, FoldAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := s.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	var rows []*store.Feedback
	for i := range 30 {
		f := foldRow(ws.ID, i*40, i%21-10, []string{"p1", "p2"}[i%2])
		f.Metadata["region"] = []string{"eu", "us"}[i%3%2]
		rows = append(rows, f)
	}
	if err := s.CreateFeedback(ctx, rows[:20], nil); err != nil {
		t.Fatal(err)
	}
	// Holes before the fold mark, so that VACUUM would have rowids to
	// close up if it renumbered them.
	deleted := map[string]bool{}
	for _, f := range rows[1:6] {
		if err := s.DeleteFeedback(ctx, ws.ID, f.ID); err != nil {
			t.Fatal(err)
		}
		deleted[f.ID] = true
	}
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, rows[20:25], nil); err != nil {
		t.Fatal(err)
	}
	answers := func(s store.Store) [3][]store.Cell {
		t.Helper()
		day := dayCells(t, s, ws.ID)
		q := store.AnalyticsQuery{From: foldDay, To: foldDay.Add(24*time.Hour - time.Microsecond),
			Metadata: map[string]any{"region": "eu"}, BucketSize: 3600}
		eu, err := s.FeedbackCells(ctx, ws.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		return [3][]store.Cell{day[0], day[1], eu}
	}
	before := answers(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("VACUUM"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = sqlite.OpenWith(ctx, path, sqlite.Options{FoldRows: 1 << 30, FoldAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := answers(s); !reflect.DeepEqual(got, before) {
		t.Fatalf("after VACUUM:\n got %v\nwant %v", got, before)
	}
	if err := s.CreateFeedback(ctx, rows[25:], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	want := expectedDay(rows, deleted, nil)
	if got := dayCells(t, s, ws.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("new rows after VACUUM:\n got %v\nwant %v", got, want)
	}
	eu := store.Cells{}
	for _, f := range rows {
		if !deleted[f.ID] && f.Metadata["region"] == "eu" {
			eu.Add(store.Cell{Bucket: f.CreatedAt.Unix() / 3600, Value: f.Value, Count: 1, SumWeighted: float64(f.Value) * f.Weight})
		}
	}
	q := store.AnalyticsQuery{From: foldDay, To: foldDay.Add(24*time.Hour - time.Microsecond),
		Metadata: map[string]any{"region": "eu"}, BucketSize: 3600}
	if got, err := s.FeedbackCells(ctx, ws.ID, q); err != nil || !reflect.DeepEqual(got, eu.Sorted()) {
		t.Fatalf("region = eu after VACUUM: got %v, %v; want %v", got, err, eu.Sorted())
	}
}
