package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
)

// Group cells (migrations 00009 and 00010, store.GroupCells) are kept by
// a filer off the write path (filer.go): writes only queue the versions
// of rows they end and begin. Groups read the cells of whole units and
// the chains of the traces at the range's edges and of the traces still
// queued, whole, in one snapshot.

// chainColumns are a ChainRow's columns, as scanChains reads them.
const chainColumns = `workspace_id::text, id::text, trace_id, (extract(epoch FROM created_at) * 1000000)::bigint,
	m_organisation, m_prompt, m_environment, value * weight`

// queueGroupCells queues on b the statements that add the differences in
// cells to the stored cells, in key order (so that concurrent writes lock
// shared cells in one order), and drop the cells left empty.
func queueGroupCells(b *pgx.Batch, cells store.GroupCells) {
	keys := make([]store.GroupCellKey, 0, len(cells))
	for k, c := range cells {
		if c.N != 0 || math.Abs(c.SumWeighted) >= 1e-9 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, func(a, b store.GroupCellKey) int {
		return cmp.Or(strings.Compare(a.WorkspaceID, b.WorkspaceID), strings.Compare(a.Dim, b.Dim), cmp.Compare(a.Span, b.Span),
			cmp.Compare(a.Unit, b.Unit), strings.Compare(a.Value, b.Value), cmp.Compare(a.PrevSlot, b.PrevSlot))
	})
	n := len(keys)
	wss, dims, vals := make([]string, n), make([]string, n), make([]string, n)
	spans, units, prevs, counts := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	sums := make([]float64, n)
	for i, k := range keys {
		c := cells[k]
		wss[i], dims[i], vals[i] = k.WorkspaceID, k.Dim, k.Value
		spans[i], units[i], prevs[i], counts[i], sums[i] = k.Span, k.Unit, k.PrevSlot, c.N, c.SumWeighted
	}
	b.Queue(`INSERT INTO feedback_group_cells AS c (workspace_id, dim, span, unit, dim_value, prev_slot, n, sum_weighted)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::float8[])
		ON CONFLICT (workspace_id, dim, span, unit, dim_value, prev_slot) DO UPDATE SET
			n = c.n + excluded.n, sum_weighted = c.sum_weighted + excluded.sum_weighted`,
		wss, dims, spans, units, vals, prevs, counts, sums)
	if !slices.ContainsFunc(counts, func(n int64) bool { return n < 0 }) {
		return
	}
	b.Queue(`DELETE FROM feedback_group_cells
		WHERE (workspace_id, dim, span, unit, dim_value, prev_slot) IN (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[]))
		  AND n = 0`, wss, dims, spans, units, vals, prevs)
}

// scanChains reads rows of chainColumns.
func scanChains(rows pgx.Rows, err error) ([]store.ChainRow, error) {
	if err != nil {
		return nil, fmt.Errorf("group cells: %w", err)
	}
	defer rows.Close()
	var out []store.ChainRow
	for rows.Next() {
		var r store.ChainRow
		if err := rows.Scan(&r.WorkspaceID, &r.ID, &r.Trace, &r.CreatedAt, &r.Values[0], &r.Values[1], &r.Values[2], &r.Weighted); err != nil {
			return nil, fmt.Errorf("group cells: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// groupsFromCells answers metadata groups from the group cells gq names,
// in one snapshot: the cells of whole days, hours and slots, corrected by
// the chains of the traces with a row at the edges or with queued
// versions, read whole (store.GroupCells, filer.go). ok is false when the
// queue holds more than queueBacklog versions of the workspace: the rows
// answer then.
func (s *Store) groupsFromCells(ctx context.Context, workspaceID string, gq store.GroupCellQuery, q store.AnalyticsQuery, offset, limit int) (page []store.Group, total int, ok bool, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, false, err
	}
	defer tx.Rollback(ctx)
	var backlog int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT FROM feedback_group_queue WHERE workspace_id = $1 LIMIT $2) q`,
		workspaceID, queueBacklog+1).Scan(&backlog); err != nil {
		return nil, 0, false, err
	}
	if backlog > queueBacklog {
		return nil, 0, false, nil
	}
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	plan := gq.Dim.Plan(from, to)
	tallies := store.GroupTallies{}
	for _, r := range plan.Reads {
		rows, err := tx.Query(ctx, `SELECT dim_value, sum(CASE WHEN prev_slot < $1 THEN n ELSE 0 END)::bigint, sum(n)::bigint, sum(sum_weighted)
			FROM feedback_group_cells
			WHERE workspace_id = $2 AND dim = $3 AND span = $4 AND unit BETWEEN $5 AND $6
			GROUP BY dim_value`, store.CountsFrom(from), workspaceID, gq.Name, r.Span, r.First, r.Last)
		if err := addTallies(rows, err, tallies); err != nil {
			return nil, 0, false, err
		}
	}
	// The rows and queued versions the groups count: with the grouped
	// key, and with the filter's value when there is one (the queue has
	// the same columns). A chain row carries those two values only.
	c := &conditions{}
	ws := c.arg(workspaceID)
	col := specialColumns[store.RollupKeys[gq.Dim.Key]]
	values := [3]string{"NULL", "NULL", "NULL"}
	values[gq.Dim.Key] = col
	selected := col + ` IS NOT NULL`
	if gq.Dim.Filter >= 0 {
		fcol := specialColumns[store.RollupKeys[gq.Dim.Filter]]
		values[gq.Dim.Filter] = fcol
		selected += ` AND ` + fcol + ` = ` + c.arg(gq.FilterValue)
	}
	selectedArgs := slices.Clone(c.args)
	_, versions, err := scanQueued(tx.Query(ctx, `SELECT seq, sign, workspace_id::text, id::text, trace_id, t, `+values[0]+`, `+values[1]+`, `+values[2]+`, weighted
		FROM feedback_group_queue WHERE workspace_id = `+ws+` AND `+selected, selectedArgs...))
	if err != nil {
		return nil, 0, false, err
	}
	traces := []string{`SELECT trace_id FROM feedback_group_queue WHERE workspace_id = ` + ws + ` AND ` + selected}
	for _, e := range plan.GroupEdges(from) {
		traces = append(traces, `SELECT trace_id FROM feedback WHERE workspace_id = `+ws+` AND `+selected+`
			AND created_at BETWEEN `+c.arg(time.UnixMicro(e[0]))+` AND `+c.arg(time.UnixMicro(e[1])))
	}
	rows, err := scanChains(tx.Query(ctx, `SELECT workspace_id::text, id::text, trace_id, (extract(epoch FROM created_at) * 1000000)::bigint,
			`+values[0]+`, `+values[1]+`, `+values[2]+`, value * weight
		FROM feedback WHERE workspace_id = `+ws+` AND `+selected+`
		  AND trace_id IN (`+strings.Join(traces, " UNION ")+`)`, customPlan(c.args)...))
	if err != nil {
		return nil, 0, false, err
	}
	filed, err := filedRows(rows, versions)
	if err != nil {
		return nil, 0, false, err
	}
	stored := store.GroupCells{}
	stored.AddChains(filed, 1)
	tallies.AddCells(stored, workspaceID, gq.Name, plan, from, -1)
	tallies.AddExact(rows, workspaceID, gq.Dim.Key, from, to, 1)

	groups := tallies.Groups(gq.Only)
	page = groups[min(offset, len(groups)):min(offset+limit, len(groups))]
	// The newest row of each group on the page: a walk down an index from
	// the range's end to the first row the filter selects.
	for i := range page {
		args := append(slices.Clone(selectedArgs), page[i].Value, time.UnixMicro(from), time.UnixMicro(to))
		n := len(selectedArgs)
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT created_at FROM feedback
			WHERE workspace_id = %s AND %s AND %s = $%d AND created_at BETWEEN $%d AND $%d
			ORDER BY created_at DESC LIMIT 1`, ws, selected, col, n+1, n+2, n+3), customPlan(args)...).Scan(&page[i].LastSeen); err != nil {
			return nil, 0, false, err
		}
		page[i].LastSeen = page[i].LastSeen.UTC()
	}
	return page, len(groups), true, nil
}

func addTallies(rows pgx.Rows, err error, tallies store.GroupTallies) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	return tallies.AddRows(rows)
}
