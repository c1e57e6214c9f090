package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// Concurrent writes share commits; a write that cannot be stored (here: a
// bulk with an id that exists) must still fail alone, leaving nothing of
// itself, and every other write of its batch be stored whole, with its
// derived data.
func TestConcurrentWritesFailAlone(t *testing.T) {
	ctx := context.Background()
	s, path, ws := openWithWorkspace(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	item := func(trace string) *store.Feedback {
		return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: trace, Value: 1, Weight: 1,
			Metadata: map[string]any{"_user": "u", "model": "m-" + trace}, CreatedAt: now, UpdatedAt: now}
	}
	taken := item("taken")
	if err := s.CreateFeedback(ctx, []*store.Feedback{taken}, nil); err != nil {
		t.Fatal(err)
	}

	const writers = 200
	writes := make([][]*store.Feedback, writers)
	for i := range writes {
		writes[i] = []*store.Feedback{item(fmt.Sprintf("t%d", i))}
		if i%3 == 0 {
			writes[i] = append(writes[i], item(fmt.Sprintf("t%d-b", i)))
		}
	}
	dup := *taken
	dup.TraceID = "dup"
	writes[writers/2] = append(writes[writers/2], &dup) // this bulk cannot be stored
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() { errs[i] = s.CreateFeedback(ctx, writes[i], nil) })
	}
	wg.Wait()

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	for i, w := range writes {
		if i == writers/2 {
			if store.ErrorCode(errs[i]) != store.ECONFLICT {
				t.Errorf("write with a taken id: got %v, want %s", errs[i], store.ECONFLICT)
			}
			for _, f := range w[:len(w)-1] {
				if _, err := s.GetFeedback(ctx, ws.ID, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
					t.Errorf("item %s of the failed bulk: got %v, want it not stored", f.TraceID, err)
				}
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("write %d: %v", i, errs[i])
			continue
		}
		for _, f := range w {
			got, err := s.GetFeedback(ctx, ws.ID, f.ID)
			if err != nil || got.TraceID != f.TraceID || got.Metadata["model"] != f.Metadata["model"] {
				t.Errorf("item %s: got %+v, %v", f.TraceID, got, err)
			}
		}
	}
	// The derived data is what the stored rows give: nothing of the
	// failed bulk, everything of the others.
	sqlite.CheckDerived(t, path)
}

// A write whose caller has gone before the writer reaches it is skipped,
// and the writes that share its batch are each stored once.
func TestCanceledWritesShareBatchesHarmlessly(t *testing.T) {
	ctx := context.Background()
	s, path, ws := openWithWorkspace(t)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const writers = 300
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: fmt.Sprintf("t%d", i),
				Value: 1, Weight: 1, Metadata: map[string]any{"model": "m"}, CreatedAt: now, UpdatedAt: now}
			wctx := ctx
			if i%2 == 0 {
				wctx = gone
			}
			err := s.CreateFeedback(wctx, []*store.Feedback{f}, nil)
			if i%2 == 1 && err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, traces int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT trace_id) FROM feedback`).Scan(&rows, &traces); err != nil {
		t.Fatal(err)
	}
	// The canceled writes were skipped; every other is stored once, and
	// counted once in the derived data.
	if rows != writers/2 || traces != rows {
		t.Errorf("%d rows of %d traces: want %d of each", rows, traces, writers/2)
	}
	sqlite.CheckDerived(t, path)
}

// openWithWorkspace opens a store on a new file, closed after t, with the
// workspace "default".
func openWithWorkspace(t *testing.T) (*sqlite.Store, string, *store.Workspace) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s := open(t, path)
	t.Cleanup(func() { s.Close() })
	ws, err := s.EnsureWorkspace(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	return s, path, ws
}
