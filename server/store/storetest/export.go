package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// testListWorkspaces: every workspace, by name, each once.
func testListWorkspaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, a := workspace(t, s, "b"), workspace(t, s, "a")
	workspace(t, s, "a")
	got, err := s.ListWorkspaces(ctx)
	if err != nil {
		t.Fatalf("ListWorkspaces: %v", err)
	}
	var names, ids []string
	for _, w := range got {
		names, ids = append(names, w.Name), append(ids, w.ID)
		if w.CreatedAt.IsZero() || w.CreatedAt.Location() != time.UTC {
			t.Errorf("workspace %s CreatedAt: got %v, want a UTC time", w.Name, w.CreatedAt)
		}
	}
	if !slices.Equal(names, []string{"a", "b"}) || !slices.Equal(ids, []string{a, b}) {
		t.Errorf("ListWorkspaces: got names %v ids %v, want [a b] [%s %s]", names, ids, a, b)
	}
}

// testExportOrderAndPaging: a workspace walked page by page, oldest first
// and by id among rows created together, gives every row once; Since and
// other workspaces' rows are respected.
func testExportOrderAndPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws, other := workspace(t, s, "a"), workspace(t, s, "b")
	var want []*store.Feedback
	// A bulk shares one created_at: its ids, not its insertion order, order
	// it. Ids are given out of order on purpose.
	for i, n := range []int{5, 0, 0, 0, 3, 0, 9, 3} {
		f := feedback(ws, n, "t", i-4, map[string]any{"i": i})
		f.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(7 - i)}).String()
		want = append(want, f)
	}
	if err := s.CreateFeedback(ctx, want, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(other, 1, "t", 1, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b *store.Feedback) int {
		if store.PositionOf(a).Before(*store.PositionOf(b)) {
			return -1
		}
		return 1
	})

	walk := func(since time.Time, limit int) []*store.Feedback {
		t.Helper()
		var got []*store.Feedback
		q := store.ExportQuery{Since: since, Limit: limit}
		for range 100 {
			page, err := s.ExportFeedback(ctx, ws, q)
			if err != nil {
				t.Fatalf("ExportFeedback: %v", err)
			}
			if len(page) > limit {
				t.Fatalf("page of %d rows, limit %d", len(page), limit)
			}
			got = append(got, page...)
			if len(page) < limit {
				return got
			}
			q.After = store.PositionOf(page[len(page)-1])
		}
		t.Fatal("export does not end")
		return nil
	}
	for _, limit := range []int{1, 2, 3, 100} {
		got := walk(time.Time{}, limit)
		if len(got) != len(want) {
			t.Fatalf("limit %d: got %d rows, want %d", limit, len(got), len(want))
		}
		for i := range want {
			assertSame(t, got[i], want[i])
		}
	}
	since := clock.Add(3 * time.Second)
	got := walk(since, 2)
	var wantSince []string
	for _, f := range want {
		if !f.CreatedAt.Before(since) {
			wantSince = append(wantSince, f.ID)
		}
	}
	var gotIDs []string
	for _, f := range got {
		gotIDs = append(gotIDs, f.ID)
	}
	if !slices.Equal(gotIDs, wantSince) {
		t.Errorf("since %v: got %v, want %v", since, gotIDs, wantSince)
	}
	if _, err := s.ExportFeedback(ctx, ws, store.ExportQuery{}); store.ErrorCode(err) != store.EINVALID {
		t.Errorf("limit 0: got %v, want %s", err, store.EINVALID)
	}
}

// testExistingFeedbackIDs: which ids are stored, whatever their workspace.
func testExistingFeedbackIDs(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	fa, fb := feedback(a, 0, "t", 1, nil), feedback(b, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{fa}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{fb}, nil); err != nil {
		t.Fatal(err)
	}
	missing := uuid.Must(uuid.NewV7()).String()
	got, err := s.ExistingFeedbackIDs(ctx, []string{missing, fb.ID, fa.ID})
	if err != nil {
		t.Fatalf("ExistingFeedbackIDs: %v", err)
	}
	slices.Sort(got)
	want := []string{fa.ID, fb.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ExistingFeedbackIDs: got %v, want %v", got, want)
	}
	if got, err := s.ExistingFeedbackIDs(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("ExistingFeedbackIDs(nil): got %v, %v, want none", got, err)
	}
}
