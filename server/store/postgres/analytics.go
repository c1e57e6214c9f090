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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// floorDiv is the SQL of x divided by d rounding down; d is positive.
// Integer arithmetic: numeric arithmetic on every rollup row cost more
// than the rest of the query.
func floorDiv(x, d string) string {
	return `((` + x + `) - (((` + x + `) % ` + d + `) + ` + d + `) % ` + d + `) / ` + d
}

// FeedbackCells implements store.Store: the whole slots of the range from
// the rollups when they answer the query (rollup.PlanGraph), the rest from
// the rows, in one snapshot.
func (s *Store) FeedbackCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.Cell, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var cells []store.Cell
	err := s.inSnapshot(ctx, func(tx pgx.Tx) (err error) {
		plan := rollup.PlanGraph(q)
		keys, err := filterModelKeys(ctx, tx, q)
		if err != nil {
			return err
		}
		cells, err = plan.Cells(func(from, to int64, cells rollup.Cells) error {
			c := &conditions{}
			if err := c.analytics(workspaceID, q, from, to, keys); err != nil {
				return err
			}
			shift, size := c.arg(q.BucketShift), c.arg(q.BucketSize)
			// Whole seconds (floor), then integer floor division.
			t := `floor(extract(epoch FROM created_at))::bigint + ` + shift
			rows, err := tx.Query(ctx, `SELECT `+floorDiv(t, size)+` AS b, value, count(*), sum(value * weight)
				FROM feedback WHERE `+c.where()+` GROUP BY b, value`, customPlan(c.args)...)
			return addCells(rows, err, cells)
		}, func(r rollup.Read, metaValue string, cells rollup.Cells) error {
			// One index lookup per slot, to the rollups of the meta value in it.
			rows, err := tx.Query(ctx, `SELECT `+floorDiv(`r.slot * $3 + $4`, `$5`)+` AS b, r.value, sum(r.n)::bigint, sum(r.sum_weighted)
				FROM generate_series($1::bigint, $2::bigint) AS s(slot)
				CROSS JOIN LATERAL (SELECT * FROM rollups WHERE workspace_id = $6 AND meta_key = $7 AND grain = $3 AND slot = s.slot AND meta_value = $8) AS r
				GROUP BY b, r.value`,
				r.First, r.Last, r.Grain, q.BucketShift, q.BucketSize, workspaceID, plan.MetaKey, metaValue)
			return addCells(rows, err, cells)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("feedback cells: %w", err)
	}
	return cells, nil
}

// inSnapshot runs fn in a read-only transaction that sees one snapshot,
// and classifies its error.
func (s *Store) inSnapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return classify(pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn))
}

// customPlan has PostgreSQL plan a query over feedback rows for its own
// arguments every time (see ListFeedback): after five runs of a statement
// it may switch to a generic plan, which cannot see how much of the table
// a time range or a filter value covers.
func customPlan(args []any) []any {
	return append([]any{pgx.QueryExecModeDescribeExec}, args...)
}

func addCells(rows pgx.Rows, err error, cells rollup.Cells) error {
	if err != nil {
		return fmt.Errorf("feedback cells: %w", err)
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

// filterModelKeys reads the model keys when q filters by model.
func filterModelKeys(ctx context.Context, db querier, q store.AnalyticsQuery) ([]string, error) {
	if len(q.OrgModels) == 0 {
		return nil, nil
	}
	return modelKeys(ctx, db)
}

// analytics adds q's filters over feedback rows created in [from, to]
// (microseconds); keys are the model keys when q filters by model.
func (c *conditions) analytics(workspaceID string, q store.AnalyticsQuery, from, to int64, keys []string) error {
	c.add("workspace_id = " + c.arg(workspaceID))
	c.add("created_at BETWEEN " + c.arg(time.UnixMicro(from)) + " AND " + c.arg(time.UnixMicro(to)))
	if len(q.OrgModels) > 0 {
		c.orgModels(keys, q.OrgModels)
	}
	if q.WeightedMin != nil {
		c.add("value * weight >= " + c.arg(*q.WeightedMin))
	}
	if q.WeightedMax != nil {
		c.add("value * weight <= " + c.arg(*q.WeightedMax))
	}
	// The GIN index on metadata finds the rows of a pair.
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
		if str, ok := metadata[k].(string); ok && rollup.SpecialColumns[k] != "" {
			c.add(rollup.SpecialColumns[k] + " = " + c.arg(str))
		}
	}
	return nil
}

// MetadataGroups implements store.Store: from group rollups when they answer
// the query (rollup.PlanGroups), else from the rows.
func (s *Store) MetadataGroups(ctx context.Context, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	if q.To.Before(q.From) {
		return nil, 0, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	var (
		groups []store.Group
		total  int
		err    error
	)
	if plan, ok := rollup.PlanGroups(key, q); ok {
		err = s.inSnapshot(ctx, func(tx pgx.Tx) error {
			groups, total, err = groupsFromRollups(ctx, tx, workspaceID, key, q, plan, offset, limit)
			return err
		})
	} else {
		groups, err = view(s, func(pool *pgxpool.Pool) (groups []store.Group, err error) {
			groups, total, err = groupsFromRows(ctx, pool, workspaceID, key, q, offset, limit)
			return groups, err
		})
	}
	if err != nil {
		return nil, 0, fmt.Errorf("metadata groups: %w", err)
	}
	return groups, total, nil
}

// groupsFromRollups answers groups by a rollup.GroupKeys key: whole slots
// from group_rollups, the partial ones at the range's ends from the rows,
// and each listed group's last feedback from the key's index.
func groupsFromRollups(ctx context.Context, tx pgx.Tx, workspaceID, key string, q store.AnalyticsQuery, plan rollup.GroupPlan, offset, limit int) ([]store.Group, int, error) {
	col := rollup.SpecialColumns[key]
	return plan.Groups(rollup.GroupReads{
		Rollups: func(r rollup.Read, ts rollup.Tallies) error {
			// One index lookup per slot, to the key's meta values in it.
			rows, err := tx.Query(ctx, `SELECT g.meta_value, sum(g.traces)::bigint, sum(g.n)::bigint, sum(g.sum_weighted)
				FROM generate_series($1::bigint, $2::bigint) AS s(slot)
				CROSS JOIN LATERAL (SELECT * FROM group_rollups WHERE workspace_id = $3 AND grain = $4 AND slot = s.slot AND meta_key = $5) AS g
				GROUP BY g.meta_value`, r.First, r.Last, workspaceID, r.Grain, key)
			return addTallies(rows, err, ts)
		},
		Raw: func(from, to int64, ts rollup.Tallies) error {
			rows, err := tx.Query(ctx, `SELECT `+col+`, count(*) FILTER (WHERE m_first_bits & $1 <> 0), count(*), sum(value * weight) FROM feedback
				WHERE workspace_id = $2 AND created_at BETWEEN $3 AND $4 AND `+col+` IS NOT NULL GROUP BY `+col,
				rollup.Bit(key), workspaceID, time.UnixMicro(from), time.UnixMicro(to))
			return addTallies(rows, err, ts)
		},
		LastSeen: func(metaValue string) (last time.Time, err error) {
			err = tx.QueryRow(ctx, `SELECT created_at FROM feedback
				WHERE workspace_id = $1 AND `+col+` = $2 AND created_at BETWEEN $3 AND $4 ORDER BY created_at DESC LIMIT 1`,
				workspaceID, metaValue, q.From, q.To).Scan(&last)
			return last, err
		},
	}, offset, limit)
}

func addTallies(rows pgx.Rows, err error, tallies rollup.Tallies) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	return tallies.AddRows(rows)
}

// groupsFromRows answers groups from the rows q selects. A row of a
// special key says itself whether it is its trace's first with its meta
// value; for any other key the trace's earlier rows are looked up.
func groupsFromRows(ctx context.Context, pool *pgxpool.Pool, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	c := &conditions{}
	var group, first string
	if col, special := rollup.SpecialColumns[key]; special {
		group, first = col, `m_first_bits & `+strconv.Itoa(rollup.Bit(key))+` <> 0`
	} else {
		k := c.arg(key)
		group = `feedback.metadata ->> ` + k
		first = `NOT EXISTS (SELECT FROM feedback AS p WHERE p.workspace_id = feedback.workspace_id AND p.trace_id = feedback.trace_id
			AND (p.created_at, p.id) < (feedback.created_at, feedback.id) AND p.metadata ->> ` + k + ` = feedback.metadata ->> ` + k + `)`
	}
	keys, err := filterModelKeys(ctx, pool, q)
	if err != nil {
		return nil, 0, err
	}
	if err := c.analytics(workspaceID, q, q.From.UnixMicro(), q.To.UnixMicro(), keys); err != nil {
		return nil, 0, err
	}
	inner := `SELECT ` + group + ` AS g, ` + first + ` AS first, value * weight AS vw, created_at FROM feedback WHERE ` + c.where()
	args := c.args
	lim, off := c.arg(limit), c.arg(offset)
	rows, err := pool.Query(ctx, `SELECT g, count(*) FILTER (WHERE first) AS r, avg(vw), max(created_at), count(*) OVER ()
		FROM (`+inner+`) x WHERE g IS NOT NULL
		GROUP BY g ORDER BY r DESC, g COLLATE "C" LIMIT `+lim+` OFFSET `+off, customPlan(c.args)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		groups []store.Group
		total  int64
	)
	for rows.Next() {
		var g store.Group
		if err := rows.Scan(&g.MetaValue, &g.Requests, &g.AvgWeighted, &g.LastSeen, &total); err != nil {
			return nil, 0, err
		}
		g.LastSeen = g.LastSeen.UTC()
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if len(groups) == 0 && offset > 0 {
		// Past the last page: the count still says how many there are.
		if err := pool.QueryRow(ctx, `SELECT count(DISTINCT g) FROM (`+inner+`) x WHERE g IS NOT NULL`, customPlan(args)...).Scan(&total); err != nil {
			return nil, 0, err
		}
	}
	return groups, int(total), nil
}
