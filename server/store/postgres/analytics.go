package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
)

// specialColumns are the generated columns (migration 00003) that hold the
// special keys' values as text.
var specialColumns = map[string]string{
	"_user": "m_user", "_organisation": "m_organisation", "_prompt": "m_prompt", "_environment": "m_environment",
}

// FeedbackCells implements store.Store. Whole 15-minute slots come from
// feedback_rollup when the filters allow it; the partial slots at the
// range's ends, and any query rollups cannot answer, come from the rows.
func (s *Store) FeedbackCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.Cell, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	cells := store.Cells{}
	plan := q.Plan()
	for _, r := range plan.Raw {
		if err := s.rawCells(ctx, workspaceID, q, r[0], r[1], cells); err != nil {
			return nil, err
		}
	}
	for _, r := range plan.Reads {
		// 15-minute slots are in feedback_rollup, hours and days in
		// feedback_rollup_coarse. Integer floor division: numeric
		// arithmetic on every rollup row cost more than the rest.
		from, spanCond := `feedback_rollup`, ``
		args := []any{r.Span, q.BucketShift, q.BucketSize, workspaceID, plan.Dim, plan.DimValue, r.First, r.Last}
		if r.Span != store.SlotSeconds {
			from, spanCond = `feedback_rollup_coarse`, ` AND span = $9`
			args = append(args, r.Span)
		}
		rows, err := s.pool.Query(ctx, `SELECT ((slot * $1 + $2) - (((slot * $1 + $2) % $3) + $3) % $3) / $3 AS b, value, sum(n)::bigint, sum(sum_weighted)
			FROM `+from+`
			WHERE workspace_id = $4 AND dim = $5 AND dim_value = $6 AND slot BETWEEN $7 AND $8`+spanCond+`
			GROUP BY b, value`, args...)
		if err := addCells(rows, err, cells); err != nil {
			return nil, err
		}
	}
	return cells.Sorted(), nil
}

// rawCells aggregates the feedback rows created in [from, to] (microseconds).
func (s *Store) rawCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery, from, to int64, cells store.Cells) error {
	c := &conditions{}
	table := "feedback"
	if key, val, ok := q.IndexedPairOnly(); ok && pairDays(from, to) != nil {
		// feedback_pairs holds all a graph needs: no row is read.
		table = "feedback_pairs"
		c.pair(workspaceID, q, key, val, from, to)
	} else if err := c.analytics(workspaceID, q, from, to); err != nil {
		return err
	}
	shift, size := c.arg(q.BucketShift), c.arg(q.BucketSize)
	// Whole seconds (floor), then integer floor division, as for rollups.
	t := `(floor(extract(epoch FROM created_at))::bigint + ` + shift + `)`
	rows, err := s.pool.Query(ctx, `SELECT (`+t+` - ((`+t+` % `+size+`) + `+size+`) % `+size+`) / `+size+` AS b,
			value, count(*), sum(value * weight)
		FROM `+table+` WHERE `+c.where()+` GROUP BY b, value`, customPlan(c.args)...)
	return addCells(rows, err, cells)
}

// pairDays lists the feedback_pairs days of the rows created in [from, to]
// (microseconds); nil when there are more than store.MaxPairDays.
func pairDays(from, to int64) []int32 {
	first, last := store.FloorDiv(from, store.PairDayMicros), store.FloorDiv(to, store.PairDayMicros)
	if last-first >= store.MaxPairDays {
		return nil
	}
	days := make([]int32, 0, last-first+1)
	for d := first; d <= last; d++ {
		days = append(days, int32(d))
	}
	return days
}

// customPlan has PostgreSQL plan a query over feedback rows for its own
// arguments every time (see ListFeedback): after five runs of a statement
// it may switch to a generic plan, which cannot see how much of the table
// a time range or a filter value covers.
func customPlan(args []any) []any {
	return append([]any{pgx.QueryExecModeDescribeExec}, args...)
}

func addCells(rows pgx.Rows, err error, cells store.Cells) error {
	if err != nil {
		return fmt.Errorf("feedback cells: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			c     store.Cell
			value int16
		)
		if err := rows.Scan(&c.Bucket, &value, &c.Count, &c.SumWeighted); err != nil {
			return fmt.Errorf("feedback cells: %w", err)
		}
		c.Value = int(value)
		cells.Add(c)
	}
	return rows.Err()
}

// conditions builds a WHERE clause with numbered parameters.
type conditions struct {
	parts []string
	args  []any
}

func (c *conditions) arg(v any) string {
	c.args = append(c.args, v)
	return "$" + strconv.Itoa(len(c.args))
}

func (c *conditions) add(part string) { c.parts = append(c.parts, part) }

func (c *conditions) where() string { return strings.Join(c.parts, " AND ") }

// pair adds the filters over feedback_pairs of the entries of one pair
// (q.IndexedPairOnly) created in [from, to] (microseconds) within q's
// weighted bounds; the caller checked pairDays(from, to) is not nil.
func (c *conditions) pair(workspaceID string, q store.AnalyticsQuery, key, val string, from, to int64) {
	c.add("workspace_id = " + c.arg(workspaceID) + " AND day = ANY(" + c.arg(pairDays(from, to)) + "::integer[])")
	c.add("key = " + c.arg(key) + " AND val = " + c.arg(val))
	c.add("created_at BETWEEN " + c.arg(time.UnixMicro(from)) + " AND " + c.arg(time.UnixMicro(to)))
	if q.WeightedMin != nil {
		c.add("value * weight >= " + c.arg(*q.WeightedMin))
	}
	if q.WeightedMax != nil {
		c.add("value * weight <= " + c.arg(*q.WeightedMax))
	}
}

// analytics adds q's filters over feedback rows created in [from, to]
// (microseconds).
func (c *conditions) analytics(workspaceID string, q store.AnalyticsQuery, from, to int64) error {
	c.add("workspace_id = " + c.arg(workspaceID))
	c.add("created_at BETWEEN " + c.arg(time.UnixMicro(from)) + " AND " + c.arg(time.UnixMicro(to)))
	if q.WeightedMin != nil {
		c.add("value * weight >= " + c.arg(*q.WeightedMin))
	}
	if q.WeightedMax != nil {
		c.add("value * weight <= " + c.arg(*q.WeightedMax))
	}
	// Graphs and groups by a special key filtered by one pair and nothing
	// else read feedback_pairs alone (rawCells, MetadataGroups): for other
	// analytics PostgreSQL finds a pair's rows faster with the GIN index
	// on metadata than through the pair index's ids (groups by _prompt
	// filtered by region at 10 million rows: 1.9 s with GIN, 3.2 s through
	// feedback_pairs).
	return c.traceAndMetadata(q.TraceIDs, q.Metadata)
}

// traceAndMetadata adds the trace id and metadata filters that listing and
// analytics share.
func (c *conditions) traceAndMetadata(traceIDs []string, metadata map[string]any) error {
	if len(traceIDs) > 0 {
		c.add("trace_id = ANY(" + c.arg(traceIDs) + "::text[])")
	}
	if len(metadata) == 0 {
		return nil
	}
	filter, err := metadataFilter(metadata)
	if err != nil {
		return err
	}
	// jsonb containment compares numbers by value (5 matches 5.0) and never
	// a string with a number, and it uses the GIN index.
	c.add("metadata @> " + c.arg(filter) + "::jsonb")
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		// A string on a special key can also use that key's index.
		if str, ok := metadata[k].(string); ok && specialColumns[k] != "" {
			c.add(specialColumns[k] + " = " + c.arg(str))
		}
	}
	return nil
}

// MetadataGroups implements store.Store.
func (s *Store) MetadataGroups(ctx context.Context, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	if q.To.Before(q.From) {
		return nil, 0, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	if gq, ok := q.GroupCellsServe(key); ok {
		groups, total, ok, err := s.groupsFromCells(ctx, workspaceID, gq, q, offset, limit)
		if err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", translate(err))
		}
		if ok {
			return groups, total, nil
		}
	}
	c := &conditions{}
	group, table := specialColumns[key], "feedback"
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	if pk, pv, ok := q.IndexedPairOnly(); ok && group != "" && pairDays(from, to) != nil {
		// The pair's entries hold the special keys' columns and the trace
		// id (migration 00012): no row is read.
		table = "feedback_pairs"
		c.pair(workspaceID, q, pk, pv, from, to)
	} else {
		if group == "" {
			group = "metadata ->> " + c.arg(key)
		}
		if err := c.analytics(workspaceID, q, from, to); err != nil {
			return nil, 0, err
		}
	}
	inner := `SELECT ` + group + ` AS g, trace_id, value, weight, created_at FROM ` + table + ` WHERE ` + c.where()
	args := c.args
	lim, off := c.arg(limit), c.arg(offset)
	rows, err := s.pool.Query(ctx, `SELECT g, count(DISTINCT trace_id) AS r, avg(value * weight), max(created_at), count(*) OVER ()
		FROM (`+inner+`) x WHERE g IS NOT NULL
		GROUP BY g ORDER BY r DESC, g COLLATE "C" LIMIT `+lim+` OFFSET `+off, customPlan(c.args)...)
	if err != nil {
		return nil, 0, fmt.Errorf("metadata groups: %w", translate(err))
	}
	defer rows.Close()
	var (
		groups []store.Group
		total  int64
	)
	for rows.Next() {
		var g store.Group
		if err := rows.Scan(&g.Value, &g.Requests, &g.AvgWeighted, &g.LastSeen, &total); err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", err)
		}
		g.LastSeen = g.LastSeen.UTC()
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("metadata groups: %w", err)
	}
	if len(groups) == 0 && offset > 0 {
		// Past the last page: the count still says how many there are.
		if err := s.pool.QueryRow(ctx, `SELECT count(DISTINCT g) FROM (`+inner+`) x WHERE g IS NOT NULL`, customPlan(args)...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", err)
		}
	}
	return groups, int(total), nil
}
