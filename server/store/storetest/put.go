package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// put calls PutFeedback and checks how many it says it replaced.
func put(t *testing.T, s store.Store, wantReplaced int, fs ...*store.Feedback) {
	t.Helper()
	n, err := s.PutFeedback(context.Background(), fs, nil)
	if err != nil {
		t.Fatalf("PutFeedback: %v", err)
	}
	if n != wantReplaced {
		t.Errorf("PutFeedback replaced %d, want %d", n, wantReplaced)
	}
}

// replacement is a new version of f, sent n seconds after clock: the
// same id, new contents.
func replacement(f *store.Feedback, n int, trace string, value int, meta map[string]any) *store.Feedback {
	at := clock.Add(time.Duration(n) * time.Second)
	return &store.Feedback{ID: f.ID, WorkspaceID: f.WorkspaceID, TraceID: trace, Value: value, Weight: 0.5,
		Metadata: meta, CreatedAt: at, UpdatedAt: at}
}

// stored is what a replacement r of a feedback created at created leaves.
func stored(r *store.Feedback, created time.Time) *store.Feedback {
	want := *r
	want.CreatedAt = created
	return &want
}

func get(t *testing.T, s store.Store, ws, id string) *store.Feedback {
	t.Helper()
	f, err := s.GetFeedback(context.Background(), ws, id)
	if err != nil {
		t.Fatalf("GetFeedback(%s): %v", id, err)
	}
	return f
}

// testPutCreatesOrReplaces: a new id is created; a stored one gets the new
// contents, trace id included, and keeps its created_at.
func testPutCreatesOrReplaces(t *testing.T, s store.Store) {
	ws := workspace(t, s, "a")
	f := feedback(ws, 0, "t1", 1, map[string]any{"_user": "u", "_prompt": "p"})
	put(t, s, 0, f)
	assertSame(t, get(t, s, ws, f.ID), f)

	r := replacement(f, 60, "t1", -3, map[string]any{"_user": "u", "_prompt": "q", "reason": "r"})
	put(t, s, 1, r)
	assertSame(t, get(t, s, ws, f.ID), stored(r, f.CreatedAt))

	// A replace that moves the feedback to another trace.
	r2 := replacement(f, 120, "t2", 4, map[string]any{"_prompt": "q"})
	put(t, s, 1, r2)
	assertSame(t, get(t, s, ws, f.ID), stored(r2, f.CreatedAt))
	for trace, want := range map[string]int{"t1": 0, "t2": 1} {
		page, err := s.ListFeedback(context.Background(), ws, store.Filter{TraceIDs: []string{trace}, Limit: 10})
		if err != nil || len(page.Items) != want {
			t.Errorf("trace %s holds %d (%v), want %d", trace, len(page.Items), err, want)
		}
	}
}

// testPutPromotes: a replace that takes a trace's first feedback with a
// meta value away (by moving it to another trace or changing the meta
// value) promotes the trace's next one, and the groups count each trace
// once.
func testPutPromotes(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	first := feedback(ws, 0, "t", 1, map[string]any{"_prompt": "p"})
	next := feedback(ws, 10, "t", 2, map[string]any{"_prompt": "p"})
	put(t, s, 0, first, next)
	put(t, s, 1, replacement(first, 20, "u", 1, map[string]any{"_prompt": "p"}))
	requests := func() int64 {
		t.Helper()
		gs, _, err := s.MetadataGroups(ctx, ws, "_prompt", store.AnalyticsQuery{From: clock.Add(-time.Hour), To: clock.Add(time.Hour),
			BucketSize: store.Quarter}, 0, 10)
		if err != nil {
			t.Fatalf("MetadataGroups: %v", err)
		}
		for _, g := range gs {
			if g.MetaValue == "p" {
				return g.Requests
			}
		}
		return 0
	}
	if got := requests(); got != 2 {
		t.Errorf("after moving the first to another trace: %d requests, want 2 (t and u)", got)
	}
	put(t, s, 1, replacement(next, 30, "t", 2, map[string]any{"_prompt": "other"}))
	put(t, s, 1, replacement(first, 40, "t", 1, map[string]any{"_prompt": "p"}))
	if got := requests(); got != 1 {
		t.Errorf("after moving it back: %d requests of p, want 1", got)
	}
}

// testPutBulkIsAtomic: a bulk mixing new and stored ids is written whole,
// and one that fails leaves everything as it was.
func testPutBulkIsAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	old1, old2 := feedback(a, 0, "t", 1, map[string]any{"_user": "u"}), feedback(a, 1, "t2", 2, nil)
	put(t, s, 0, old1, old2)
	r1, r2 := replacement(old1, 60, "t2", 5, nil), replacement(old2, 60, "t", 6, map[string]any{"_user": "v"})
	fresh := feedback(a, 60, "t", 7, nil)
	put(t, s, 2, r1, fresh, r2)
	assertSame(t, get(t, s, a, old1.ID), stored(r1, old1.CreatedAt))
	assertSame(t, get(t, s, a, old2.ID), stored(r2, old2.CreatedAt))
	assertSame(t, get(t, s, a, fresh.ID), fresh)

	// The last item's id is b's: nothing of the bulk is written.
	theirs := feedback(b, 0, "t", 1, nil)
	put(t, s, 0, theirs)
	again := replacement(old1, 120, "t3", -1, nil)
	another := feedback(a, 120, "t3", 1, nil)
	taken := replacement(theirs, 120, "t3", 1, nil)
	taken.WorkspaceID = a
	if _, err := s.PutFeedback(ctx, []*store.Feedback{again, another, taken}, nil); store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("a bulk holding another workspace's id: got %v, want %s", err, store.ECONFLICT)
	}
	assertSame(t, get(t, s, a, old1.ID), stored(r1, old1.CreatedAt))
	if _, err := s.GetFeedback(ctx, a, another.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("the failed bulk's new item: got %v, want not found", err)
	}
	assertSame(t, get(t, s, b, theirs.ID), theirs)

	// One id twice in one write is refused.
	if _, err := s.PutFeedback(ctx, []*store.Feedback{again, again}, nil); store.ErrorCode(err) != store.EINVALID {
		t.Errorf("one id twice: got %v, want %s", err, store.EINVALID)
	}
}

// testPutOtherWorkspace: an id another workspace holds is a conflict, and
// changes nothing there.
func testPutOtherWorkspace(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	f := feedback(a, 0, "t", 1, map[string]any{"_prompt": "p"})
	put(t, s, 0, f)
	r := replacement(f, 60, "t", 9, nil)
	r.WorkspaceID = b
	if _, err := s.PutFeedback(ctx, []*store.Feedback{r}, nil); store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("another workspace's id: got %v, want %s", err, store.ECONFLICT)
	}
	assertSame(t, get(t, s, a, f.ID), f)
	if _, err := s.GetFeedback(ctx, b, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("in b: got %v, want not found", err)
	}
}

// testPutIdempotency: the count is recorded with the key.
func testPutIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	f := feedback(ws, 0, "t", 1, nil)
	put(t, s, 0, f)
	idem := &store.Idempotency{Scope: ws, Key: "k", Fingerprint: []byte("fp"), Message: "feedback recorded", At: clock}
	fresh := feedback(ws, 1, "t", 1, nil)
	if n, err := s.PutFeedback(ctx, []*store.Feedback{replacement(f, 60, "t", 2, nil), fresh}, idem); err != nil || n != 1 {
		t.Fatalf("PutFeedback with a key: %d, %v", n, err)
	}
	r, err := s.IdempotentResult(ctx, ws, "k")
	if err != nil || r.Replaced != 1 || fmt.Sprint(r.IDs) != fmt.Sprint([]string{f.ID, fresh.ID}) {
		t.Errorf("IdempotentResult: %+v, %v; want ids %s %s, 1 replaced", r, err, f.ID, fresh.ID)
	}
	if _, err := s.PutFeedback(ctx, []*store.Feedback{replacement(f, 90, "t", 3, nil)}, idem); err != store.ErrIdempotencyKeyUsed {
		t.Errorf("the key again: got %v, want ErrIdempotencyKeyUsed", err)
	}
	if got := get(t, s, ws, f.ID); got.Value != 2 {
		t.Errorf("after the refused write: value %d, want 2", got.Value)
	}
}

// testPutRaces: replaces of one id, moving it between traces, race with
// creates, updates and deletes of those traces; every write is whole, the
// id ends as one of its versions, and the cleanup's derived-data check
// finds every first exact.
func testPutRaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	ids := []string{uuid.NewString(), uuid.NewString()}
	traces := []string{"t0", "t1", "t2"}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				trace := traces[(g+i)%len(traces)]
				meta := map[string]any{"_prompt": fmt.Sprint("p", i%2), "_user": "u"}
				at := clock.Add(time.Duration(g*100+i) * time.Millisecond)
				switch g % 3 {
				case 0, 1:
					f := &store.Feedback{ID: ids[g%2], WorkspaceID: ws, TraceID: trace, Value: i%21 - 10, Weight: 1, Metadata: meta, CreatedAt: at, UpdatedAt: at}
					if _, err := s.PutFeedback(ctx, []*store.Feedback{f, feedback(ws, g*100+i, trace, 1, meta)}, nil); err != nil {
						errs <- fmt.Errorf("PutFeedback: %w", err)
					}
				case 2:
					f := feedback(ws, g*100+i, trace, 1, meta)
					if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
						errs <- fmt.Errorf("CreateFeedback: %w", err)
					}
					if i%3 == 0 {
						if err := s.DeleteFeedback(ctx, ws, f.ID); err != nil {
							errs <- fmt.Errorf("DeleteFeedback: %w", err)
						}
					}
					if _, err := s.UpdateFeedback(ctx, ws, ids[i%2], store.Update{Value: 3, UpdatedAt: at}, nil); err != nil && store.ErrorCode(err) != store.ENOTFOUND {
						errs <- fmt.Errorf("UpdateFeedback: %w", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		f := get(t, s, ws, id)
		if !slices.Contains(traces, f.TraceID) {
			t.Errorf("%s: trace %q", id, f.TraceID)
		}
	}
}
