package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
)

// Unfiltered or bounded in time, with or without a cursor, a listing's
// order is the one (workspace_id, created_at, id) holds: PostgreSQL can
// walk that index down and stop with the page, sorting nothing. The
// planner prefers a sequential scan on a table this small, so the test
// forbids scans and sorts to ask whether such a plan exists at all.
func TestListPlansWalkTheIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.NewDatabase(t), Options{MaxConns: 2})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	from, to := time.Now().Add(-time.Hour), time.Now()
	cursor := &store.Cursor{CreatedAt: to.Add(-time.Minute), ID: uuid.NewString()}
	for name, f := range map[string]store.Filter{
		"unbounded":                      {},
		"unbounded, after a cursor":      {After: cursor},
		"bounded":                        {CreatedAfter: &from, CreatedBefore: &to},
		"bounded, after a cursor, value": {CreatedAfter: &from, CreatedBefore: &to, After: cursor, ValueMax: new(int)},
	} {
		t.Run(name, func(t *testing.T) {
			query, args, err := listQuery(feedbackColumns, uuid.NewString(), f, 101)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := s.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL enable_incremental_sort = off"); err != nil {
				t.Fatal(err)
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+query, args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, "Index Scan Backward using feedback_workspace_created_id") || strings.Contains(text, "Sort") {
				t.Errorf("plan does not walk (workspace_id, created_at, id) down without sorting:\n%s", text)
			}
		})
	}
}
