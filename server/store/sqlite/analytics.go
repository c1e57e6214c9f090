package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// specialColumns are the columns (migration 00003) that hold the special
// keys' values as text.
var specialColumns = map[string]string{
	"_user": "m_user", "_organisation": "m_organisation", "_prompt": "m_prompt", "_environment": "m_environment",
}

// specialBit is a special key's bit in m_strings.
func specialBit(key string) int { return 1 << slices.Index(store.SpecialKeys, key) }

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
		// feedback_rollup_coarse.
		from, spanCond := `feedback_rollup`, ``
		args := []any{r.Span, q.BucketShift, q.BucketSize, workspaceID, plan.Dim, plan.DimValue}
		if r.Span != store.SlotSeconds {
			from, spanCond = `feedback_rollup_coarse`, ` AND span = ?`
			args = append(args, r.Span)
		}
		rows, err := s.read.QueryContext(ctx, `SELECT (slot * ? + ?) / ? AS b, value, sum(n), sum(sum_weighted)
			FROM `+from+`
			WHERE workspace_id = ? AND dim = ? AND dim_value = ?`+spanCond+` AND slot BETWEEN ? AND ?
			GROUP BY b, value`, append(args, r.First, r.Last)...)
		if err := addCells(rows, err, cells); err != nil {
			return nil, err
		}
	}
	return cells.Sorted(), nil
}

// rawCells aggregates the feedback rows created in [from, to] (microseconds).
func (s *Store) rawCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery, from, to int64, cells store.Cells) error {
	where, args, err := analyticsConditions(workspaceID, q, from, to)
	if err != nil {
		return err
	}
	args = append([]any{q.BucketShift * 1_000_000, q.BucketSize * 1_000_000}, args...)
	rows, err := s.read.QueryContext(ctx, `SELECT (created_at + ?) / ? AS b, value, count(*), sum(value * weight)
		FROM feedback WHERE `+where+` GROUP BY b, value`, args...)
	return addCells(rows, err, cells)
}

func addCells(rows *sql.Rows, err error, cells store.Cells) error {
	if err != nil {
		return fmt.Errorf("feedback cells: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c store.Cell
		if err := rows.Scan(&c.Bucket, &c.Value, &c.Count, &c.SumWeighted); err != nil {
			return fmt.Errorf("feedback cells: %w", err)
		}
		cells.Add(c)
	}
	return rows.Err()
}

// analyticsConditions is the WHERE clause of q over feedback rows created
// in [from, to] (microseconds).
func analyticsConditions(workspaceID string, q store.AnalyticsQuery, from, to int64) (string, []any, error) {
	where := []string{"workspace_id = ?", "created_at BETWEEN ? AND ?"}
	args := []any{workspaceID, from, to}
	if len(q.TraceIDs) > 0 {
		cond, condArgs := traceIDsIn(q.TraceIDs)
		where, args = append(where, cond), append(args, condArgs...)
	}
	if q.WeightedMin != nil {
		where = append(where, "value * weight >= ?")
		args = append(args, *q.WeightedMin)
	}
	if q.WeightedMax != nil {
		where = append(where, "value * weight <= ?")
		args = append(args, *q.WeightedMax)
	}
	for _, k := range slices.Sorted(maps.Keys(q.Metadata)) {
		cond, condArgs, err := metadataMatch(k, q.Metadata[k])
		if err != nil {
			return "", nil, err
		}
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	return strings.Join(where, " AND "), args, nil
}

// renderedValue is the SQL rendering of a metadata value as text, for
// groups: a string as it is, anything else as JSON, as the special keys'
// columns hold them.
const renderedValue = `(SELECT CASE m.type WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
	ELSE CAST(m.value AS TEXT) END FROM json_each(feedback.metadata) AS m WHERE m.key = ?)`

// MetadataGroups implements store.Store.
func (s *Store) MetadataGroups(ctx context.Context, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	if q.To.Before(q.From) {
		return nil, 0, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	where, args, err := analyticsConditions(workspaceID, q, micros(q.From), micros(q.To))
	if err != nil {
		return nil, 0, err
	}
	group := renderedValue
	if col, special := specialColumns[key]; special {
		group = col
	} else {
		args = append([]any{key}, args...)
	}
	inner := `SELECT ` + group + ` AS g, trace_id, value, weight, created_at FROM feedback WHERE ` + where
	rows, err := s.read.QueryContext(ctx, `SELECT g, count(DISTINCT trace_id) AS r, avg(value * weight), max(created_at), count(*) OVER ()
		FROM (`+inner+`) WHERE g IS NOT NULL
		GROUP BY g ORDER BY r DESC, g LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("metadata groups: %w", err)
	}
	defer rows.Close()
	var (
		groups []store.Group
		total  int
	)
	for rows.Next() {
		var (
			g    store.Group
			last int64
		)
		if err := rows.Scan(&g.Value, &g.Requests, &g.AvgWeighted, &last, &total); err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", err)
		}
		g.LastSeen = time.UnixMicro(last).UTC()
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("metadata groups: %w", err)
	}
	if len(groups) == 0 && offset > 0 {
		// Past the last page: the count still says how many there are.
		if err := s.read.QueryRowContext(ctx, `SELECT count(DISTINCT g) FROM (`+inner+`) WHERE g IS NOT NULL`, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", err)
		}
	}
	return groups, total, nil
}
