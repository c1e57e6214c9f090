package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// Writers on several connections at once, inserting, updating and
// deleting rows of the same few traces, while two replicas' filers file
// the queue as fast as they can, leave the group cells, once the queue is
// filed, equal to the cells computed from the rows (a round picks the
// traces of a few versions, while writes queue more behind them). The
// upgrade to cells under filters (migration 00011) queues every stored
// row to be filed again from empty cells, checked the same way.
func TestGroupCellsUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	s, err := Open(ctx, url, Options{MaxConns: 8, FileGroupsEvery: time.Millisecond, fileBatch: 5, vacuumAfter: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	replica, err := Open(ctx, url, Options{MaxConns: 2, FileGroupsEvery: time.Millisecond, fileBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	ws, err := s.EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var mine []string
			for i := range 40 {
				var fs []*store.Feedback
				for j := range 1 + rng.IntN(8) {
					at := base.Add(time.Duration(rng.Int64N(int64(6 * time.Hour))))
					f := &store.Feedback{ID: fmt.Sprintf("00000000-0000-4000-8000-%04d%04d%04d", w, i, j), WorkspaceID: ws.ID,
						TraceID: fmt.Sprint("t", rng.IntN(6)), Value: rng.IntN(21) - 10, Weight: 0.5,
						Metadata: map[string]any{"_prompt": fmt.Sprint("p", rng.IntN(2))}, CreatedAt: at, UpdatedAt: at}
					fs = append(fs, f)
					mine = append(mine, f.ID)
				}
				if err := s.CreateFeedback(ctx, fs, nil); err != nil {
					errs <- err
					return
				}
				if i%4 == 3 {
					id := mine[rng.IntN(len(mine))]
					var err error
					if rng.IntN(2) == 0 {
						_, err = s.UpdateFeedback(ctx, ws.ID, id, store.Update{Value: 1, Metadata: map[string]any{"_prompt": "p9"}, MetadataSet: true, UpdatedAt: base}, nil)
					} else if err = s.DeleteFeedback(ctx, ws.ID, id); store.ErrorCode(err) == store.ENOTFOUND {
						err = nil
					}
					if err != nil && store.ErrorCode(err) != store.ENOTFOUND {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.FileGroups(ctx); err != nil {
		t.Fatal(err)
	}
	var queued int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM feedback_group_queue`).Scan(&queued); err != nil || queued != 0 {
		t.Fatalf("queue after FileGroups: %d versions, %v", queued, err)
	}
	// Having filed more than vacuumAfter versions, the filer vacuumed the
	// queue (groups read it: its deleted versions would slow them).
	var vacuums int64
	if err := s.pool.QueryRow(ctx, `SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'feedback_group_queue'`).Scan(&vacuums); err != nil || vacuums == 0 {
		t.Fatalf("queue vacuumed %d times (%v), want at least once", vacuums, err)
	}
	compareGroupCells(t, s)

	// Migration 00011 queues every stored row to be filed again from
	// empty cells: the filer gets to the same cells.
	up, err := migrations.ReadFile("migrations/00011_group_pairs.sql")
	if err != nil {
		t.Fatal(err)
	}
	refile := string(up)[strings.Index(string(up), "LOCK TABLE"):strings.Index(string(up), "-- +goose Down")]
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, refile)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.FileGroups(ctx); err != nil {
		t.Fatal(err)
	}
	compareGroupCells(t, s)
}

// compareGroupCells checks the stored group cells against the cells of all
// rows computed from scratch.
func compareGroupCells(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	rows, err := scanChains(s.pool.Query(ctx, `SELECT `+chainColumns+` FROM feedback`))
	if err != nil {
		t.Fatal(err)
	}
	want := store.GroupCells{}
	want.AddChains(rows, 1)
	stored, err := s.pool.Query(ctx, `SELECT workspace_id::text, dim, span, unit, dim_value, prev_slot, n, sum_weighted FROM feedback_group_cells`)
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	if len(want) == 0 {
		t.Fatal("no rows hold a rollup key")
	}
	storetest.EqualGroupCells(t, stored, want)
}

// A backlog filed with no vacuum on the way (or one in the middle) leaves
// the queue's table long and empty, and every groups query that reads the
// queue then reads all of it: the filer, finding the queue empty and its
// table long, vacuums it, which cuts the empty pages off.
func TestFilerShrinksABloatedQueue(t *testing.T) {
	ctx := context.Background()
	s, ws := openWithWorkspace(t, Options{MaxConns: 4, FileGroupsEvery: -1, vacuumAfter: 1 << 40, bloatPages: 8})
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for b := range 4 {
		var fs []*store.Feedback
		for i := range 1000 {
			fs = append(fs, &store.Feedback{ID: fmt.Sprintf("00000000-0000-4000-8000-%04d%08d", b, i), WorkspaceID: ws.ID,
				TraceID: fmt.Sprint("t", i), Value: 1, Weight: 1, Metadata: map[string]any{"_prompt": "p"}, CreatedAt: at, UpdatedAt: at})
		}
		if err := s.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
	}
	pages := func() int64 {
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT pg_relation_size('feedback_group_queue') / current_setting('block_size')::bigint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := pages(); n <= 8 {
		t.Fatalf("4,000 queued versions take %d pages: the test needs more than 8", n)
	}
	if err := s.FileGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pages(); n > 8 {
		t.Errorf("queue filed and empty, yet its table keeps %d pages", n)
	}
}
