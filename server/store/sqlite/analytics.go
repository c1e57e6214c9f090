package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// userKey is the special key whose groups are read from rows: it has no
// group rollups (rollup.GroupKeys).
const userKey = "_user"

// floorDiv is the SQL of x divided by d rounding down (SQLite's integer
// division rounds toward zero); d is positive.
func floorDiv(x, d string) string {
	return `CASE WHEN ` + x + ` >= 0 THEN (` + x + `) / ` + d + ` ELSE -((-(` + x + `) - 1) / ` + d + `) - 1 END`
}

// FeedbackCells implements store.Store: the whole slots of the range from
// the rollups when they answer the query (rollup.PlanGraph), the rest from
// the rows, in one snapshot. Statements number their first parameters
// (?1, ?2), which SQLite continues with for the plain ones after them.
func (s *Store) FeedbackCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.Cell, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return view(s, func(db *sql.DB) ([]store.Cell, error) { return feedbackCells(ctx, db, workspaceID, q) })
}

func feedbackCells(ctx context.Context, db *sql.DB, workspaceID string, q store.AnalyticsQuery) ([]store.Cell, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("feedback cells: %w", err)
	}
	defer tx.Rollback()
	plan := rollup.PlanGraph(q)
	return plan.Cells(func(from, to int64, cells rollup.Cells) error {
		where, args, err := analyticsConditions(ctx, tx, workspaceID, q, from, to)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+floorDiv(`created_at + ?1`, `?2`)+` AS b, value, count(*), sum(value * weight)
			FROM feedback WHERE `+where+` GROUP BY b, value`,
			append([]any{q.BucketShift * 1_000_000, q.BucketSize * 1_000_000}, args...)...)
		return addCells(rows, err, cells)
	}, func(r rollup.Read, metaValue string, cells rollup.Cells) error {
		// One seek per slot, to the rollups of the meta value in it.
		rows, err := tx.QueryContext(ctx, `WITH RECURSIVE s(slot) AS (SELECT ?1 UNION ALL SELECT slot + 1 FROM s WHERE slot < ?2)
			SELECT `+floorDiv(`r.slot * ?3 + ?4`, `?5`)+` AS b, r.value, sum(r.n), sum(r.sum_weighted)
			FROM s CROSS JOIN rollups AS r ON r.workspace_id = ?6 AND r.meta_key = ?7 AND r.grain = ?3 AND r.slot = s.slot AND r.meta_value = ?8
			GROUP BY b, r.value`,
			r.First, r.Last, r.Grain, q.BucketShift, q.BucketSize, workspaceID, plan.MetaKey, metaValue)
		return addCells(rows, err, cells)
	})
}

func addCells(rows *sql.Rows, err error, cells rollup.Cells) error {
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
// in [from, to] (microseconds), with plain parameters; db reads the model
// keys when q filters by model.
func analyticsConditions(ctx context.Context, db querier, workspaceID string, q store.AnalyticsQuery, from, to int64) (string, []any, error) {
	where := []string{"workspace_id = ?", "created_at BETWEEN ? AND ?"}
	args := []any{workspaceID, from, to}
	if len(q.OrgModels) > 0 {
		keys, err := modelKeys(ctx, db)
		if err != nil {
			return "", nil, err
		}
		cond, condArgs := orgModelsCondition(keys, q.OrgModels)
		where, args = append(where, cond), append(args, condArgs...)
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
		if v, ok := rollup.EntryValue(k, q.Metadata[k]); ok {
			// The metadata entries find the rows, a seek per day; the unary
			// + keeps SQLite from walking the whole range by time instead.
			where[0], where[1] = "+workspace_id = ?", "+created_at BETWEEN ? AND ?"
			where = append(where, `id IN (WITH RECURSIVE d(day) AS (SELECT ? UNION ALL SELECT day + 1 FROM d WHERE day < ?)
				SELECT e.id FROM d CROSS JOIN metadata_entries AS e
				ON e.workspace_id = ? AND e.day = d.day AND e.meta_key = ? AND e.meta_value = ? AND e.created_at BETWEEN ? AND ?)`)
			args = append(args, store.FloorDiv(from, rollup.Day*1_000_000), store.FloorDiv(to, rollup.Day*1_000_000), workspaceID, k, v, from, to)
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

// renderedMetaValue is the SQL rendering of the value of a metadata key in
// the metadata of table alias t, and its arguments, as groups render it: a
// string as it is, anything else as JSON, as the special keys' columns
// hold them. It reads the key by path, far faster than json_each, unless
// the key holds a character a path cannot spell.
func renderedMetaValue(t, key string) (string, []any) {
	if strings.ContainsAny(key, "\"\\") {
		return `(SELECT CASE m.type WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
			ELSE CAST(m.value AS TEXT) END FROM json_each(` + t + `.metadata) AS m WHERE m.key = ?)`, []any{key}
	}
	path := `$."` + key + `"`
	return `(CASE json_type(` + t + `.metadata, ?) WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
		ELSE CAST(json_extract(` + t + `.metadata, ?) AS TEXT) END)`, []any{path, path}
}

// MetadataGroups implements store.Store: from group rollups when they answer
// the query (rollup.PlanGroups), else from the rows.
func (s *Store) MetadataGroups(ctx context.Context, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	if q.To.Before(q.From) {
		return nil, 0, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	var total int
	groups, err := view(s, func(db *sql.DB) (groups []store.Group, err error) {
		if plan, ok := rollup.PlanGroups(key, q); ok {
			if groups, total, err = groupsFromRollups(ctx, db, workspaceID, key, q, plan, offset, limit); err != nil {
				return nil, fmt.Errorf("metadata groups: %w", err)
			}
			return groups, nil
		}
		groups, total, err = groupsFromRows(ctx, db, workspaceID, key, q, offset, limit)
		return groups, err
	})
	if err != nil {
		return nil, 0, err
	}
	return groups, total, nil
}

// groupsFromRollups answers groups by a rollup.GroupKeys key in one
// snapshot: whole slots from group_rollups, the partial ones at the
// range's ends from the rows, and each listed group's last feedback from
// the key's index.
func groupsFromRollups(ctx context.Context, db *sql.DB, workspaceID, key string, q store.AnalyticsQuery, plan rollup.GroupPlan, offset, limit int) ([]store.Group, int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	col := rollup.SpecialColumns[key]
	return plan.Groups(rollup.GroupReads{
		Rollups: func(r rollup.Read, ts rollup.Tallies) error {
			// One seek per slot, to the key's meta values in it.
			rows, err := tx.QueryContext(ctx, `WITH RECURSIVE s(slot) AS (SELECT ?1 UNION ALL SELECT slot + 1 FROM s WHERE slot < ?2)
				SELECT g.meta_value, sum(g.traces), sum(g.n), sum(g.sum_weighted)
				FROM s CROSS JOIN group_rollups AS g ON g.workspace_id = ?3 AND g.grain = ?4 AND g.slot = s.slot AND g.meta_key = ?5
				GROUP BY g.meta_value`, r.First, r.Last, workspaceID, r.Grain, key)
			return addTallies(rows, err, ts)
		},
		Raw: func(from, to int64, ts rollup.Tallies) error {
			rows, err := tx.QueryContext(ctx, `SELECT `+col+`, sum(m_first_bits & ? != 0), count(*), sum(value * weight) FROM feedback
				WHERE workspace_id = ? AND created_at BETWEEN ? AND ? AND +`+col+` IS NOT NULL GROUP BY `+col,
				rollup.Bit(key), workspaceID, from, to)
			return addTallies(rows, err, ts)
		},
		LastSeen: func(metaValue string) (time.Time, error) {
			var last int64
			err := tx.QueryRowContext(ctx, `SELECT created_at FROM feedback
				WHERE workspace_id = ? AND `+col+` = ? AND created_at BETWEEN ? AND ? ORDER BY created_at DESC LIMIT 1`,
				workspaceID, metaValue, micros(q.From), micros(q.To)).Scan(&last)
			return time.UnixMicro(last), err
		},
	}, offset, limit)
}

func addTallies(rows *sql.Rows, err error, tallies rollup.Tallies) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	return tallies.AddRows(rows)
}

// groupsFromRows answers groups from the rows q selects. A row of a
// special key says itself whether it is its trace's first with its meta
// value; for any other key the trace's earlier rows are looked up.
func groupsFromRows(ctx context.Context, db *sql.DB, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	where, args, err := analyticsConditions(ctx, db, workspaceID, q, micros(q.From), micros(q.To))
	if err != nil {
		return nil, 0, err
	}
	var group, first string
	from := "feedback"
	if col, special := rollup.SpecialColumns[key]; special {
		group, first = col, col+` IS NOT NULL AND m_first_bits & `+strconv.Itoa(rollup.Bit(key))+` != 0`
		if key == userKey && len(args) == 3 {
			// Nothing but time: the _user index holds all a group reads,
			// in user order, so no row is read and nothing is sorted
			// but the groups.
			from, where = "feedback INDEXED BY feedback_workspace_m_user", where+" AND m_user IS NOT NULL"
		}
	} else {
		g, gargs := renderedMetaValue("feedback", key)
		p, pargs := renderedMetaValue("p", key)
		group = g
		first = `NOT EXISTS (SELECT 1 FROM feedback AS p INDEXED BY feedback_workspace_trace WHERE p.workspace_id = feedback.workspace_id AND p.trace_id = feedback.trace_id
			AND (p.created_at, p.id) < (feedback.created_at, feedback.id)
			AND ` + p + ` = ` + g + `)`
		args = append(append(append(append([]any{}, gargs...), pargs...), gargs...), args...)
	}
	inner := `SELECT ` + group + ` AS g, ` + first + ` AS first, value * weight AS vw, created_at FROM ` + from + ` WHERE ` + where
	rows, err := db.QueryContext(ctx, `SELECT g, sum(first) AS r, avg(vw), max(created_at), count(*) OVER ()
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
		if err := rows.Scan(&g.MetaValue, &g.Requests, &g.AvgWeighted, &last, &total); err != nil {
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
		if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT g) FROM (`+inner+`) WHERE g IS NOT NULL`, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("metadata groups: %w", err)
		}
	}
	return groups, total, nil
}

// traceIDsIn is the condition that a row's trace id is one of ids.
func traceIDsIn(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, t := range ids {
		args[i] = t
	}
	return "trace_id IN (?" + strings.Repeat(", ?", len(ids)-1) + ")", args
}

// metadataMatch is the condition that a feedback row's metadata holds key
// with the filter value v (for a string on a special key, through that
// key's column and index), compared by JSON value: strings with strings,
// numbers with numbers (1 equals 1.0), booleans with booleans. It reads the
// key with json_type/json_extract on a path, which SQLite evaluates far
// faster than a json_each subquery; keys a path cannot spell (with a quote
// or a backslash) take json_each.
func metadataMatch(key string, v any) (string, []any, error) {
	if col, special := rollup.SpecialColumns[key]; special {
		if str, ok := v.(string); ok {
			// The key's own column and index find the rows; the bit says
			// the meta value is a JSON string.
			return fmt.Sprintf("%s = ? AND m_strings & %d", col, rollup.Bit(key)), []any{str}, nil
		}
	}
	var kinds string
	var arg any
	switch v := v.(type) {
	case string:
		kinds, arg = "'text'", v
	case float64:
		kinds, arg = "'integer', 'real'", v
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return "", nil, store.Errorf(store.EINVALID, "metadata filter number %s is out of range", v)
		}
		kinds, arg = "'integer', 'real'", f
	case bool:
		kinds = "'" + strconv.FormatBool(v) + "'"
	default:
		return "", nil, store.Errorf(store.EINVALID, "metadata filter values must be strings, numbers or booleans")
	}
	if strings.ContainsAny(key, "\"\\") {
		cond := `EXISTS (SELECT 1 FROM json_each(feedback.metadata) AS m WHERE m.key = ? AND m.type IN (` + kinds + `)`
		if arg == nil {
			return cond + `)`, []any{key}, nil
		}
		return cond + ` AND m.atom = ?)`, []any{key, arg}, nil
	}
	path := `$."` + key + `"`
	if arg == nil {
		return `json_type(feedback.metadata, ?) IN (` + kinds + `)`, []any{path}, nil
	}
	return `json_type(feedback.metadata, ?) IN (` + kinds + `) AND json_extract(feedback.metadata, ?) = ?`, []any{path, path, arg}, nil
}
