package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
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

// FeedbackCells implements store.Store. Whole days, hours and 15-minute
// slots come from the rollups when the filters allow it, plus the rows not
// folded into them yet; the partial slots at the range's ends, and any
// query rollups cannot answer, come from the rows. All of it is read in one
// snapshot, so a fold running meanwhile cannot count a row twice or never.
func (s *Store) FeedbackCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.Cell, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("feedback cells: %w", err)
	}
	defer tx.Rollback()
	cells := store.Cells{}
	plan := q.Plan()
	var folded int64
	if len(plan.Reads) > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT folded FROM rollup_fold`).Scan(&folded); err != nil {
			return nil, fmt.Errorf("feedback cells: %w", err)
		}
	}
	for _, r := range plan.Raw {
		if err := rawCells(ctx, tx, workspaceID, q, r[0], r[1], -1, cells); err != nil {
			return nil, err
		}
	}
	covered := [2]int64{math.MaxInt64, math.MinInt64}
	for _, r := range plan.Reads {
		unit := r.Span * 1_000_000
		covered = [2]int64{min(covered[0], r.First*unit), max(covered[1], (r.Last+1)*unit-1)}
		// 15-minute slots are in feedback_rollup, hours and days in
		// feedback_rollup_coarse.
		from, spanCond := `feedback_rollup`, ``
		args := []any{r.Span, q.BucketShift, q.BucketSize, workspaceID, plan.Dim, plan.DimValue}
		if r.Span != store.SlotSeconds {
			from, spanCond = `feedback_rollup_coarse`, ` AND span = ?`
			args = append(args, r.Span)
		}
		rows, err := tx.QueryContext(ctx, `SELECT (slot * ? + ?) / ? AS b, value, sum(n), sum(sum_weighted)
			FROM `+from+`
			WHERE workspace_id = ? AND dim = ? AND dim_value = ?`+spanCond+` AND slot BETWEEN ? AND ?
			GROUP BY b, value`, append(args, r.First, r.Last)...)
		if err := addCells(rows, err, cells); err != nil {
			return nil, err
		}
	}
	if len(plan.Reads) > 0 {
		// The rollups' slots are contiguous: one range of unfolded rows.
		if err := rawCells(ctx, tx, workspaceID, q, covered[0], covered[1], folded, cells); err != nil {
			return nil, err
		}
	}
	return cells.Sorted(), nil
}

// rawCells aggregates the feedback rows created in [from, to]
// (microseconds); with after >= 0, only the rows above that rowid, found by
// rowid rather than by any index.
func rawCells(ctx context.Context, tx *sql.Tx, workspaceID string, q store.AnalyticsQuery, from, to, after int64, cells store.Cells) error {
	if key, val, ok := q.IndexedPairOnly(); ok && after < 0 && pairDays(from, to) != "" {
		// feedback_pairs holds all a graph needs: no row is read.
		where, args := pairConditions(workspaceID, q, key, val, from, to)
		rows, err := tx.QueryContext(ctx, `SELECT (created_at + ?) / ? AS b, value, count(*), sum(value * weight)
			FROM feedback_pairs WHERE `+where+` GROUP BY b, value`, append([]any{q.BucketShift * 1_000_000, q.BucketSize * 1_000_000}, args...)...)
		return addCells(rows, err, cells)
	}
	where, args, err := analyticsConditions(workspaceID, q, from, to)
	if err != nil {
		return err
	}
	table := `feedback`
	if after >= 0 {
		table = `feedback NOT INDEXED`
		where += ` AND rowid > ?`
		args = append(args, after)
	}
	args = append([]any{q.BucketShift * 1_000_000, q.BucketSize * 1_000_000}, args...)
	rows, err := tx.QueryContext(ctx, `SELECT (created_at + ?) / ? AS b, value, count(*), sum(value * weight)
		FROM `+table+` WHERE `+where+` GROUP BY b, value`, args...)
	return addCells(rows, err, cells)
}

// pairConditions is the WHERE clause over feedback_pairs of the entries of
// one pair (q.IndexedPairOnly) created in [from, to] (microseconds) within
// q's weighted bounds; the caller checked pairDays(from, to) is not "".
func pairConditions(workspaceID string, q store.AnalyticsQuery, key, val string, from, to int64) (string, []any) {
	where, args := []string{"workspace_id = ? AND day IN (" + pairDays(from, to) + ") AND key = ? AND val = ? AND created_at BETWEEN ? AND ?"},
		[]any{workspaceID, key, val, from, to}
	if q.WeightedMin != nil {
		where, args = append(where, "value * weight >= ?"), append(args, *q.WeightedMin)
	}
	if q.WeightedMax != nil {
		where, args = append(where, "value * weight <= ?"), append(args, *q.WeightedMax)
	}
	return strings.Join(where, " AND "), args
}

// pairDays lists, for SQL's IN, the feedback_pairs days of the rows
// created in [from, to] (microseconds): SQLite seeks each; "" when there
// are more than store.MaxPairDays. The division truncates, as SQLite's does.
func pairDays(from, to int64) string {
	first, last := from/store.PairDayMicros, to/store.PairDayMicros
	if last-first >= store.MaxPairDays {
		return ""
	}
	var b strings.Builder
	for d := first; d <= last; d++ {
		if d > first {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	return b.String()
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
	for k, v := range q.Metadata {
		if _, ok := store.IndexedPair(k, v); ok && pairDays(from, to) != "" {
			// The pair's rows are found by rowid: keep SQLite from
			// walking the whole range by time and probing the pair's list.
			where[0], where[1] = "+workspace_id = ?", "+created_at BETWEEN ? AND ?"
		}
	}
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
		if str, ok := store.IndexedPair(k, q.Metadata[k]); ok && pairDays(from, to) != "" {
			// The pair's index finds the rows (a listing, which stops at
			// its first page, walks the rows instead).
			where = append(where, `feedback.rowid IN (SELECT fid FROM feedback_pairs
				WHERE workspace_id = ? AND day IN (`+pairDays(from, to)+`) AND key = ? AND val = ? AND created_at BETWEEN ? AND ?)`)
			args = append(args, workspaceID, k, str, from, to)
			continue
		}
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

// groupRows is the SELECT of the (g, trace_id, value, weight, created_at)
// that groups by key aggregate: from feedback_pairs alone when q filters
// by one indexed pair and key is special (the entries hold the special
// keys' columns and the trace id, migration 00011), from the rows
// otherwise.
func groupRows(workspaceID, key string, q store.AnalyticsQuery) (string, []any, error) {
	from, to := micros(q.From), micros(q.To)
	col, special := specialColumns[key]
	if pk, pv, ok := q.IndexedPairOnly(); ok && special && pairDays(from, to) != "" {
		where, args := pairConditions(workspaceID, q, pk, pv, from, to)
		return `SELECT ` + col + ` AS g, trace_id, value, weight, created_at FROM feedback_pairs WHERE ` + where, args, nil
	}
	where, args, err := analyticsConditions(workspaceID, q, from, to)
	if err != nil {
		return "", nil, err
	}
	group := renderedValue
	if special {
		group = col
	} else {
		args = append([]any{key}, args...)
	}
	return `SELECT ` + group + ` AS g, trace_id, value, weight, created_at FROM feedback WHERE ` + where, args, nil
}

// MetadataGroups implements store.Store.
func (s *Store) MetadataGroups(ctx context.Context, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	if q.To.Before(q.From) {
		return nil, 0, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	if gq, ok := q.GroupCellsServe(key); ok {
		groups, total, ok, err := s.groupsFromCells(ctx, workspaceID, gq, q, offset, limit)
		if err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", err)
		}
		if ok {
			return groups, total, nil
		}
	}
	inner, args, err := groupRows(workspaceID, key, q)
	if err != nil {
		return nil, 0, err
	}
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
