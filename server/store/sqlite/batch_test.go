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
