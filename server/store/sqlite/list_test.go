package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// A listing page must cost about its own size at any table size: each
// filter shape walks the index listIndex names, bounded by the time range
// and the cursor, and sorts at most rows of one created_at (the rows of
// several traces, for a filter naming several), never a whole range. SQLite's plans say so without a
// large table.
func TestListPlans(t *testing.T) {
	s := emptyStore(t)
	from, to := time.Now().Add(-time.Hour), time.Now()
	cursor := &store.Cursor{CreatedAt: to.Add(-time.Minute), ID: uuid.NewString()}
	cases := []struct {
		name   string
		filter store.Filter
		search string // the plan's SEARCH line
		sort   string // its sort, if any: the last term (id, within one created_at) or all
	}{
		{"unbounded", store.Filter{},
			"SEARCH feedback USING INDEX feedback_workspace_created_id (workspace_id=?)", ""},
		{"unbounded, after a cursor", store.Filter{After: cursor},
			"SEARCH feedback USING INDEX feedback_workspace_created_id (workspace_id=? AND created_at<?)", ""},
		{"bounded", store.Filter{CreatedAfter: &from, CreatedBefore: &to},
			"SEARCH feedback USING INDEX feedback_workspace_created_id (workspace_id=? AND created_at>? AND created_at<?)", ""},
		{"bounded, after a cursor, value and other key", store.Filter{CreatedAfter: &from, CreatedBefore: &to, After: cursor, ValueMin: new(int), Metadata: map[string]any{"region": "eu"}},
			"SEARCH feedback USING INDEX feedback_workspace_created_id (workspace_id=? AND created_at>? AND created_at<?)", ""},
		{"special key", store.Filter{Metadata: map[string]any{"_environment": "production"}},
			"SEARCH feedback USING INDEX feedback_workspace_m_environment (workspace_id=? AND m_environment=?)", "USE TEMP B-TREE FOR LAST TERM OF ORDER BY"},
		{"bounded, two special keys, after a cursor", store.Filter{CreatedAfter: &from, After: cursor, Metadata: map[string]any{"_prompt": "p", "_user": "u"}},
			"SEARCH feedback USING INDEX feedback_workspace_m_user (workspace_id=? AND m_user=? AND created_at>? AND created_at<?)", "USE TEMP B-TREE FOR LAST TERM OF ORDER BY"},
		{"special key with a number", store.Filter{CreatedAfter: &from, Metadata: map[string]any{"_user": 5.0}},
			"SEARCH feedback USING INDEX feedback_workspace_created_id (workspace_id=? AND created_at>?)", ""},
		{"one trace, after a cursor", store.Filter{TraceIDs: []string{"a"}, After: cursor},
			"SEARCH feedback USING INDEX feedback_workspace_trace (workspace_id=? AND trace_id=? AND created_at<?)", ""},
		{"traces and special key", store.Filter{TraceIDs: []string{"a", "b"}, Metadata: map[string]any{"_user": "u"}},
			"SEARCH feedback USING INDEX feedback_workspace_trace (workspace_id=? AND trace_id=?)", "USE TEMP B-TREE FOR ORDER BY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			query, args, err := listQuery(feedbackColumns, uuid.NewString(), c.filter, 101)
			if err != nil {
				t.Fatal(err)
			}
			plan := queryPlan(t, s, query, args)
			want := []string{c.search}
			if c.sort != "" {
				want = append(want, c.sort)
			}
			if strings.Join(plan, "\n") != strings.Join(want, "\n") {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(plan, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// emptyStore is a store on a new file in t's folder, closed after t.
func emptyStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plans.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// queryPlan is the detail column of SQLite's EXPLAIN QUERY PLAN of query.
func queryPlan(t *testing.T, s *Store, query string, args []any) []string {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}
