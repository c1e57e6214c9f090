package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// testCommitObserver: a store that takes a commit observer reports each
// commit of feedback (creates, updates, deletes) with its rows, a refused
// write with no rows, and nothing else.
func testCommitObserver(t *testing.T, s store.Store) {
	o, ok := s.(interface{ SetCommitObserver(store.CommitObserver) })
	if !ok {
		t.Skip("this store takes no commit observer")
	}
	type commit struct {
		writes, rows int
		took         time.Duration
		failed       bool
	}
	var (
		mu   sync.Mutex
		seen []commit
	)
	o.SetCommitObserver(func(writes, rows int, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, commit{writes, rows, took, err != nil})
	})
	ctx := context.Background()
	ws := workspace(t, s, "a")
	bulk := []*store.Feedback{feedback(ws, 0, "t", 1, nil), feedback(ws, 1, "t", 2, nil), feedback(ws, 2, "t", 3, nil)}
	if err := s.CreateFeedback(ctx, bulk, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, bulk[:1], nil); store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("duplicate: got %v, want %s", err, store.ECONFLICT)
	}
	// An update and a delete are commits of feedback too; a readiness
	// check is not.
	if _, err := s.UpdateFeedback(ctx, ws, bulk[0].ID, store.Update{Value: 5, UpdatedAt: clock}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFeedback(ctx, ws, bulk[1].ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(seen) != before {
		t.Errorf("a readiness check was observed as a commit of feedback: %+v", seen[before:])
	}
	mu.Unlock()
	o.SetCommitObserver(nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws, 3, "t", 1, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	rows, writes := 0, 0
	for _, c := range seen {
		rows += c.rows
		writes += c.writes
		if c.took <= 0 {
			t.Errorf("commit took %v, want a positive duration", c.took)
		}
	}
	if rows != 5 {
		t.Errorf("rows observed: got %d, want 5 (the bulk, the update and the delete; not the refused duplicate, nor writes after the observer was removed)", rows)
	}
	if writes < 4 {
		t.Errorf("writes observed: got %d, want at least 4 (the bulk, the duplicate, the update and the delete) in %+v", writes, seen)
	}
}
