package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// Group cells (migration 00009, store.GroupCells) are filed by the writer
// like the rollups, behind a mark of their own (group_fold.folded, the
// writer's gfolded), so that a database migrated with rows in it catches
// up in chunks while it serves.

// Defaults of Options.groupChunk, which bounds the rows one fold files in
// the group cells (a migrated database catches up this many rows per
// fold), and Options.groupLag, how many rows may wait to be filed before
// groups stop using the cells and read the rows (a reader reads those
// rows' chains whole).
const (
	groupChunk = 16384
	groupLag   = 16384
)

// chainColumns are a ChainRow's columns, after the rowid, in scanChains'
// order; the three values are the rollup keys' columns.
const chainColumns = `f.rowid, f.workspace_id, f.id, f.trace_id, f.created_at, f.m_organisation, f.m_prompt, f.m_environment, f.value * f.weight`

// groupStatements are the writer's statements for the group cells.
type groupStatements struct {
	mark, setMark, foldChains, traceChains, upsert, deleteEmpty *sql.Stmt
}

func (st *groupStatements) prepare(ctx context.Context, conn *sql.Conn) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.mark, `SELECT folded FROM group_fold`},
		{&st.setMark, `UPDATE group_fold SET folded = ?`},
		// Every row, up to ?2, of the traces of the rows in (?1, ?2]: the
		// chains those rows join. CROSS JOIN keeps SQLite from walking
		// feedback first.
		{&st.foldChains, `SELECT ` + chainColumns + `
			FROM (SELECT DISTINCT workspace_id, trace_id FROM feedback
				WHERE rowid > ?1 AND rowid <= ?2 AND coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL) AS t
			CROSS JOIN feedback AS f ON f.workspace_id = t.workspace_id AND f.trace_id = t.trace_id
			WHERE f.rowid <= ?2 AND coalesce(f.m_organisation, f.m_prompt, f.m_environment) IS NOT NULL`},
		{&st.traceChains, `SELECT ` + chainColumns + ` FROM feedback AS f
			WHERE f.workspace_id = ? AND f.trace_id = ? AND f.rowid <= ?`},
		{&st.upsert, `INSERT INTO feedback_group_cells (workspace_id, dim, span, unit, dim_value, prev_slot, n, sum_weighted)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (workspace_id, dim, span, unit, dim_value, prev_slot) DO UPDATE SET
				n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted`},
		{&st.deleteEmpty, `DELETE FROM feedback_group_cells
			WHERE workspace_id = ? AND dim = ? AND span = ? AND unit = ? AND dim_value = ? AND prev_slot = ? AND n = 0`},
	} {
		var err error
		if *p.stmt, err = conn.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("prepare %s: %w", p.sql, err)
		}
	}
	return nil
}

func (st *groupStatements) close() {
	for _, s := range []*sql.Stmt{st.mark, st.setMark, st.foldChains, st.traceChains, st.upsert, st.deleteEmpty} {
		if s != nil {
			s.Close()
		}
	}
}

// scanChains reads rows of chainColumns, and the rowid of each.
func scanChains(rows *sql.Rows, err error) ([]store.ChainRow, []int64, error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		out    []store.ChainRow
		rowids []int64
	)
	for rows.Next() {
		var (
			r     store.ChainRow
			rowid int64
		)
		if err := rows.Scan(&rowid, &r.WorkspaceID, &r.ID, &r.Trace, &r.CreatedAt, &r.Values[0], &r.Values[1], &r.Values[2], &r.Weighted); err != nil {
			return nil, nil, err
		}
		out, rowids = append(out, r), append(rowids, rowid)
	}
	return out, rowids, rows.Err()
}

// upTo returns the rows whose rowid is at most mark.
func upTo(rows []store.ChainRow, rowids []int64, mark int64) []store.ChainRow {
	var out []store.ChainRow
	for i, r := range rows {
		if rowids[i] <= mark {
			out = append(out, r)
		}
	}
	return out
}

// foldGroups files the next rows above the group mark, up to hi and at most
// groupChunk of them, inside the current write transaction: the chains
// they join are read whole, and each cell moves by the difference between
// the chains with and without them.
func (s *Store) foldGroups(ctx context.Context, hi int64) error {
	lo := s.gfolded
	hi = min(hi, lo+s.opts.groupChunk)
	if hi <= lo {
		return nil
	}
	rows, rowids, err := scanChains(s.groups.foldChains.QueryContext(ctx, lo, hi))
	if err != nil {
		return fmt.Errorf("fold groups: %w", err)
	}
	cells := store.GroupCells{}
	cells.AddChains(upTo(rows, rowids, lo), -1)
	cells.AddChains(rows, 1)
	if err := s.fileGroupCells(ctx, cells); err != nil {
		return err
	}
	if _, err := s.groups.setMark.ExecContext(ctx, hi); err != nil {
		return fmt.Errorf("fold groups: %w", err)
	}
	s.gfolded = hi
	return nil
}

// fileGroupCells adds the differences in cells to the stored cells and
// drops the cells left empty.
func (s *Store) fileGroupCells(ctx context.Context, cells store.GroupCells) error {
	for k, c := range cells {
		if c.N == 0 && math.Abs(c.SumWeighted) < 1e-9 {
			// The same rows left and came back unchanged.
			continue
		}
		args := []any{k.WorkspaceID, k.Dim, k.Span, k.Unit, k.Value, k.PrevSlot}
		if _, err := s.groups.upsert.ExecContext(ctx, append(args, c.N, c.SumWeighted)...); err != nil {
			return fmt.Errorf("group cells: %w", err)
		}
		if c.N < 0 {
			if _, err := s.groups.deleteEmpty.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("group cells: %w", err)
			}
		}
	}
	return nil
}

// regroup runs change, a write to filed rows of one trace (an update or a
// delete), and moves the group cells of the trace's chains with it.
func (s *Store) regroup(ctx context.Context, tx *sql.Conn, workspaceID, traceID string, change func() error) error {
	before, _, err := scanChains(s.groups.traceChains.QueryContext(ctx, workspaceID, traceID, s.gfolded))
	if err != nil {
		return fmt.Errorf("group cells: %w", err)
	}
	if err := change(); err != nil {
		return err
	}
	if len(before) == 0 {
		return nil
	}
	after, _, err := scanChains(s.groups.traceChains.QueryContext(ctx, workspaceID, traceID, s.gfolded))
	if err != nil {
		return fmt.Errorf("group cells: %w", err)
	}
	cells := store.GroupCells{}
	cells.AddChains(before, -1)
	cells.AddChains(after, 1)
	return s.fileGroupCells(ctx, cells)
}

// traceByID is traceOf's query for a feedback by workspace and id.
const traceByID = `SELECT trace_id FROM feedback WHERE workspace_id = ? AND id = ?`

// traceOf returns the trace id of a stored feedback, "" when there is none.
func traceOf(ctx context.Context, tx *sql.Conn, query string, args ...any) (string, error) {
	var trace string
	err := tx.QueryRowContext(ctx, query, args...).Scan(&trace)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return trace, err
}

// groupsFromCells answers metadata groups from the group cells gq names,
// in one snapshot: the cells of whole days, hours and slots, corrected by
// the chains read whole (store.GroupCells). ok is false when the cells
// lag too far behind the rows to be worth it.
func (s *Store) groupsFromCells(ctx context.Context, workspaceID string, gq store.GroupCellQuery, q store.AnalyticsQuery, offset, limit int) (page []store.Group, total int, ok bool, err error) {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, false, err
	}
	defer tx.Rollback()
	var mark, top int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT folded FROM group_fold), coalesce((SELECT max(rowid) FROM feedback), 0)`).Scan(&mark, &top); err != nil {
		return nil, 0, false, err
	}
	if top-mark > s.opts.groupLag {
		return nil, 0, false, nil
	}
	col := specialColumns[store.RollupKeys[gq.Dim.Key]]
	from, to := micros(q.From), micros(q.To)
	plan := gq.Dim.Plan(from, to)
	tallies := store.GroupTallies{}
	for _, r := range plan.Reads {
		rows, err := tx.QueryContext(ctx, `SELECT dim_value, sum(CASE WHEN prev_slot < ? THEN n ELSE 0 END), sum(n), sum(sum_weighted)
			FROM feedback_group_cells
			WHERE workspace_id = ? AND dim = ? AND span = ? AND unit BETWEEN ? AND ?
			GROUP BY dim_value`, store.CountsFrom(from), workspaceID, gq.Name, r.Span, r.First, r.Last)
		if err := addTallies(rows, err, tallies); err != nil {
			return nil, 0, false, err
		}
	}
	query, args := edgeChains(workspaceID, gq, plan.GroupEdges(from), mark, from, to)
	rows, rowids, err := scanChains(tx.QueryContext(ctx, query, args...))
	if err != nil {
		return nil, 0, false, err
	}
	filed := store.GroupCells{}
	filed.AddChains(upTo(rows, rowids, mark), 1)
	tallies.AddCells(filed, workspaceID, gq.Name, plan, from, -1)
	tallies.AddExact(rows, workspaceID, gq.Dim.Key, from, to, 1)

	groups := tallies.Groups(gq.Only)
	page = groups[min(offset, len(groups)):min(offset+limit, len(groups))]
	// The newest row of each group on the page: a walk down the key's
	// index from the range's end to the first row the filter selects.
	for i := range page {
		var last int64
		cond, filter := selectedBy(gq, "")
		if err := tx.QueryRowContext(ctx, `SELECT created_at FROM feedback
			WHERE workspace_id = ? AND `+col+` = ? AND created_at BETWEEN ? AND ? AND `+cond+`
			ORDER BY created_at DESC LIMIT 1`,
			append([]any{workspaceID, page[i].Value, from, to}, filter...)...).Scan(&last); err != nil {
			return nil, 0, false, err
		}
		page[i].LastSeen = time.UnixMicro(last).UTC()
	}
	return page, len(groups), true, nil
}

// selectedBy is the condition on the rows (columns under prefix, "" or
// "f.") the groups of gq count: with the grouped key, and with the
// filter's value when there is one, and its argument. The unary + keeps
// SQLite, which has no statistics, off the keys' partial indexes, which
// hold every row of a key over all time, where the query has a better one.
func selectedBy(gq store.GroupCellQuery, prefix string) (string, []any) {
	cond := "+" + prefix + specialColumns[store.RollupKeys[gq.Dim.Key]] + " IS NOT NULL"
	if gq.Dim.Filter < 0 {
		return cond, nil
	}
	return cond + " AND +" + prefix + specialColumns[store.RollupKeys[gq.Dim.Filter]] + " = ?", []any{gq.FilterValue}
}

// edgeChains is the query of the chains the cells of gq cannot count
// exactly, read whole (in chainColumns, after a rowid): those with a row
// in one of edges (store.CellPlan.GroupEdges), and those with a row in
// [from, to] not filed yet (rowid above mark). A chain row carries the
// values of the grouped and the filter key only.
//
// Edge rows are found by time, or, under a filter, by the filter key's
// index: a coarse family's edges are whole partial days at each end of
// the range, whose rows by time are thousands for every one the filter
// selects (groups by _prompt filtered by an _organisation over 30 days
// not on day boundaries read ~220,000 rows at 10 million, 150-240 ms).
func edgeChains(workspaceID string, gq store.GroupCellQuery, edges [][2]int64, mark, from, to int64) (string, []any) {
	values := [3]string{"NULL", "NULL", "NULL"}
	values[gq.Dim.Key] = "f." + specialColumns[store.RollupKeys[gq.Dim.Key]]
	if gq.Dim.Filter >= 0 {
		values[gq.Dim.Filter] = "f." + specialColumns[store.RollupKeys[gq.Dim.Filter]]
	}
	selected, filter := selectedBy(gq, "")
	var (
		pick []string
		args []any
	)
	for _, e := range edges {
		if gq.Dim.Filter < 0 {
			pick = append(pick, `SELECT trace_id FROM feedback WHERE workspace_id = ? AND created_at BETWEEN ? AND ? AND `+selected)
			args = append(args, workspaceID, e[0], e[1])
			continue
		}
		pick = append(pick, `SELECT trace_id FROM feedback WHERE workspace_id = ? AND `+specialColumns[store.RollupKeys[gq.Dim.Filter]]+` = ?
			AND created_at BETWEEN ? AND ? AND +`+specialColumns[store.RollupKeys[gq.Dim.Key]]+` IS NOT NULL`)
		args = append(args, workspaceID, gq.FilterValue, e[0], e[1])
	}
	pick = append(pick, `SELECT trace_id FROM feedback NOT INDEXED WHERE rowid > ? AND workspace_id = ? AND created_at BETWEEN ? AND ? AND `+selected)
	args = append(append(args, mark, workspaceID, from, to), filter...)
	chainSelected, _ := selectedBy(gq, "f.")
	args = append(append(args, workspaceID), filter...)
	return `SELECT f.rowid, f.workspace_id, f.id, f.trace_id, f.created_at, ` + strings.Join(values[:], ", ") + `, f.value * f.weight
		FROM (SELECT DISTINCT trace_id FROM (` + strings.Join(pick, " UNION ALL ") + `)) AS t
		CROSS JOIN feedback AS f ON f.workspace_id = ? AND f.trace_id = t.trace_id
		WHERE ` + chainSelected, args
}

func addTallies(rows *sql.Rows, err error, tallies store.GroupTallies) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	return tallies.AddRows(rows)
}
