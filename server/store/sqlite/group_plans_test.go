package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// Groups that read rows (by _user, or under filters without group cells)
// must not read more than their filter selects: filtered by a string on a
// special key, that key's index over the range; and filtered by one
// metadata pair, the pair's entries alone (migration 00011), no row.
func TestGroupRowPlans(t *testing.T) {
	s := emptyStore(t)
	to := time.Now()
	month := store.AnalyticsQuery{From: to.Add(-30 * 24 * time.Hour), To: to}
	with := func(q store.AnalyticsQuery, m map[string]any) store.AnalyticsQuery {
		q.Metadata = m
		return q
	}
	cases := []struct {
		name string
		key  string
		q    store.AnalyticsQuery
		want string
	}{
		{"by _user, _prompt", "_user", with(month, map[string]any{"_prompt": "p"}),
			"SEARCH feedback USING INDEX feedback_workspace_m_prompt (workspace_id=? AND m_prompt=? AND created_at>? AND created_at<?)"},
		{"by _user, _organisation", "_user", with(month, map[string]any{"_organisation": "o"}),
			"SEARCH feedback USING INDEX feedback_workspace_m_organisation (workspace_id=? AND m_organisation=? AND created_at>? AND created_at<?)"},
		{"by _user, _environment", "_user", with(month, map[string]any{"_environment": "e"}),
			"SEARCH feedback USING INDEX feedback_workspace_m_environment (workspace_id=? AND m_environment=? AND created_at>? AND created_at<?)"},
		{"by _prompt, region", "_prompt", with(month, map[string]any{"region": "eu"}),
			"SEARCH feedback_pairs USING PRIMARY KEY (workspace_id=? AND day=? AND key=? AND val=? AND created_at>? AND created_at<?)"},
		{"by _user, _user", "_user", with(month, map[string]any{"_user": "u"}),
			"SEARCH feedback USING INDEX feedback_workspace_m_user (workspace_id=? AND m_user=? AND created_at>? AND created_at<?)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			query, args, err := groupRows(uuid.NewString(), c.key, c.q)
			if err != nil {
				t.Fatal(err)
			}
			plan := queryPlan(t, s, query, args)
			if strings.Join(plan, "\n") != c.want {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(plan, "\n  "), c.want)
			}
		})
	}
}

// Groups from cells read whole the chains with a row at the range's
// edges: under a filter, the filter key's index finds those rows (a
// coarse family's edges are whole partial days, whose rows by time are
// mostly of other values); unfiltered, the edges are partial 15-minute
// slots, found by time.
func TestEdgeChainPlans(t *testing.T) {
	s := emptyStore(t)
	to := time.Date(2026, 11, 26, 18, 53, 0, 0, time.UTC)
	from := to.Add(-30 * 24 * time.Hour)
	cases := []struct {
		name     string
		key      string
		metadata map[string]any
		edge     string
	}{
		{"by _prompt, _organisation (coarse)", "_prompt", map[string]any{"_organisation": "o"},
			"SEARCH feedback USING INDEX feedback_workspace_m_organisation (workspace_id=? AND m_organisation=? AND created_at>? AND created_at<?)"},
		{"by _organisation, _environment", "_organisation", map[string]any{"_environment": "e"},
			"SEARCH feedback USING INDEX feedback_workspace_m_environment (workspace_id=? AND m_environment=? AND created_at>? AND created_at<?)"},
		{"by _prompt", "_prompt", nil,
			"SEARCH feedback USING INDEX feedback_workspace_created_id (workspace_id=? AND created_at>? AND created_at<?)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := store.AnalyticsQuery{From: from, To: to, Metadata: c.metadata}
			gq, ok := q.GroupCellsServe(c.key)
			if !ok {
				t.Fatal("no group cells")
			}
			edges := gq.Dim.Plan(micros(from), micros(to)).GroupEdges(micros(from))
			query, args := edgeChains(uuid.NewString(), gq, edges, 0, micros(from), micros(to))
			plan := queryPlan(t, s, query, args)
			if n := strings.Count(strings.Join(plan, "\n"), c.edge); n != len(edges) {
				t.Errorf("%d edges, %d read as wanted (%s); plan:\n  %s", len(edges), n, c.edge, strings.Join(plan, "\n  "))
			}
		})
	}
}
