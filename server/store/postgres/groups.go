package postgres

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
)

// Group cells (migration 00009, store.GroupCells) are kept by every write
// in its own transaction. The write runs first; then regroup takes a
// transaction lock on each trace it touched (hashed into traceLocks locks,
// which bounds the locks a bulk write holds, and taken in one order), reads
// those traces' chains as they are now, and moves the cells by the
// difference between the chains with and without the write. A write to the
// same traces that has not committed waits for the locks before it reads,
// and then sees this one: each write's difference starts where the last
// one's ended. Locking after the write keeps the write itself, the costly
// part, out of the section writes to one trace pass one at a time, and
// means every write takes row locks (rollups, indexes) before trace locks,
// never the other way round.

// traceLocks is how many advisory locks the traces are hashed into.
const traceLocks = 256

// traceLockBase offsets the advisory lock keys, away from the key the
// migrations take.
const traceLockBase = 0x6664_0000

// chainColumns are a ChainRow's columns, as scanChains reads them.
const chainColumns = `workspace_id::text, id::text, trace_id, (extract(epoch FROM created_at) * 1000000)::bigint,
	m_organisation, m_prompt, m_environment, value * weight`

// trace names one trace of one workspace.
type trace struct{ workspaceID, traceID string }

// regroup moves the group cells after a write in tx to the rows of traces:
// removed are the rows it deleted or changed, as they were, and written the
// ids of the rows it inserted or changed.
func regroup(ctx context.Context, tx pgx.Tx, traces []trace, removed []store.ChainRow, written []string) error {
	if len(traces) == 0 {
		return nil
	}
	locks := make([]int64, 0, len(traces))
	wss, ids := make([]string, 0, len(traces)), make([]string, 0, len(traces))
	seen := map[trace]bool{}
	for _, t := range traces {
		if seen[t] {
			continue
		}
		seen[t] = true
		h := fnv.New64a()
		h.Write([]byte(t.workspaceID + "\x00" + t.traceID))
		locks = append(locks, traceLockBase+int64(h.Sum64()%traceLocks))
		wss, ids = append(wss, t.workspaceID), append(ids, t.traceID)
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	// unnest keeps the array's order: every write takes the locks in
	// ascending order, so two writes never wait for each other in a circle.
	if _, err := tx.Exec(ctx, `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`, locks); err != nil {
		return fmt.Errorf("group cells: %w", err)
	}
	// A statement that starts after the locks sees what the writes that
	// held them committed, and this write's own rows.
	after, err := scanChains(tx.Query(ctx, `SELECT `+chainColumns+` FROM feedback
		WHERE (workspace_id, trace_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
		  AND coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL`, wss, ids))
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, id := range written {
		mine[id] = true
	}
	before := slices.Clone(removed)
	for _, r := range after {
		if !mine[r.ID] {
			before = append(before, r)
		}
	}
	cells := store.GroupCells{}
	cells.AddChains(before, -1)
	cells.AddChains(after, 1)
	return fileGroupCells(ctx, tx, cells)
}

// lockedRow locks the stored feedback a condition selects (FOR UPDATE) and
// returns it as a chain row; nil when there is none.
func lockedRow(ctx context.Context, tx pgx.Tx, where string, args ...any) (*store.ChainRow, error) {
	rows, err := scanChains(tx.Query(ctx, `SELECT `+chainColumns+` FROM feedback WHERE `+where+` FOR UPDATE`, args...))
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// fileGroupCells adds the differences in cells to the stored cells, in key
// order (so that concurrent writes lock shared cells in one order), and
// drops the cells left empty.
func fileGroupCells(ctx context.Context, tx pgx.Tx, cells store.GroupCells) error {
	keys := make([]store.GroupCellKey, 0, len(cells))
	for k, c := range cells {
		if c.N != 0 || math.Abs(c.SumWeighted) >= 1e-9 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b store.GroupCellKey) int {
		return cmp.Or(strings.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.Dim, b.Dim), cmp.Compare(a.Span, b.Span),
			cmp.Compare(a.Unit, b.Unit), strings.Compare(a.Value, b.Value), cmp.Compare(a.PrevSlot, b.PrevSlot))
	})
	n := len(keys)
	wss, dims, vals := make([]string, n), make([]string, n), make([]string, n)
	spans, units, prevs, counts := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	sums := make([]float64, n)
	for i, k := range keys {
		c := cells[k]
		wss[i], dims[i], vals[i] = k.WorkspaceID, store.RollupKeys[k.Dim], k.Value
		spans[i], units[i], prevs[i], counts[i], sums[i] = k.Span, k.Unit, k.PrevSlot, c.N, c.SumWeighted
	}
	if _, err := tx.Exec(ctx, `INSERT INTO feedback_group_cells AS c (workspace_id, dim, span, unit, dim_value, prev_slot, n, sum_weighted)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::float8[])
		ON CONFLICT (workspace_id, dim, span, unit, dim_value, prev_slot) DO UPDATE SET
			n = c.n + excluded.n, sum_weighted = c.sum_weighted + excluded.sum_weighted`,
		wss, dims, spans, units, vals, prevs, counts, sums); err != nil {
		return fmt.Errorf("group cells: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM feedback_group_cells
		WHERE (workspace_id, dim, span, unit, dim_value, prev_slot) IN (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[]))
		  AND n = 0`, wss, dims, spans, units, vals, prevs); err != nil {
		return fmt.Errorf("group cells: %w", err)
	}
	return nil
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

// groupsFromCells answers metadata groups by a rollup key over [q.From,
// q.To] with no other filter from the group cells, in one snapshot: the
// cells of whole days, hours and slots, corrected by the chains with a
// row at the edges, read whole (store.GroupCells).
func (s *Store) groupsFromCells(ctx context.Context, workspaceID string, dim int, only string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(ctx)
	key := store.RollupKeys[dim]
	col := specialColumns[key]
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	plan := store.GroupPlan(from, to)
	tallies := store.GroupTallies{}
	for _, r := range plan.Reads {
		rows, err := tx.Query(ctx, `SELECT dim_value, sum(CASE WHEN prev_slot < $1 THEN n ELSE 0 END)::bigint, sum(n)::bigint, sum(sum_weighted)
			FROM feedback_group_cells
			WHERE workspace_id = $2 AND dim = $3 AND span = $4 AND unit BETWEEN $5 AND $6
			GROUP BY dim_value`, store.CountsFrom(from), workspaceID, key, r.Span, r.First, r.Last)
		if err := addTallies(rows, err, tallies); err != nil {
			return nil, 0, err
		}
	}
	var edges []string
	c := &conditions{}
	ws := c.arg(workspaceID)
	for _, e := range plan.GroupEdges(from) {
		edges = append(edges, `SELECT trace_id FROM feedback WHERE workspace_id = `+ws+` AND `+col+` IS NOT NULL
			AND created_at BETWEEN `+c.arg(time.UnixMicro(e[0]))+` AND `+c.arg(time.UnixMicro(e[1])))
	}
	var rows []store.ChainRow
	if len(edges) > 0 {
		values := [3]string{"NULL", "NULL", "NULL"}
		values[dim] = col
		rows, err = scanChains(tx.Query(ctx, `SELECT workspace_id::text, id::text, trace_id, (extract(epoch FROM created_at) * 1000000)::bigint,
				`+values[0]+`, `+values[1]+`, `+values[2]+`, value * weight
			FROM feedback WHERE workspace_id = `+ws+` AND `+col+` IS NOT NULL
			  AND trace_id IN (`+strings.Join(edges, " UNION ")+`)`, customPlan(c.args)...))
		if err != nil {
			return nil, 0, err
		}
	}
	stored := store.GroupCells{}
	stored.AddChains(rows, 1)
	tallies.AddCells(stored, workspaceID, dim, plan, from, -1)
	tallies.AddExact(rows, workspaceID, dim, from, to, 1)

	groups := tallies.Groups(only)
	page := groups[min(offset, len(groups)):min(offset+limit, len(groups))]
	// The newest row of each group on the page: one seek down the key's
	// index each.
	for i := range page {
		if err := tx.QueryRow(ctx, `SELECT max(created_at) FROM feedback
			WHERE workspace_id = $1 AND `+col+` = $2 AND created_at BETWEEN $3 AND $4`,
			workspaceID, page[i].Value, time.UnixMicro(from), time.UnixMicro(to)).Scan(&page[i].LastSeen); err != nil {
			return nil, 0, err
		}
		page[i].LastSeen = page[i].LastSeen.UTC()
	}
	return page, len(groups), nil
}

func addTallies(rows pgx.Rows, err error, tallies store.GroupTallies) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v           string
			requests, n int64
			sum         float64
		)
		if err := rows.Scan(&v, &requests, &n, &sum); err != nil {
			return err
		}
		tallies.Add(v, requests, n, sum)
	}
	return rows.Err()
}
