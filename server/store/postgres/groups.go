package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/feedbackd/feedbackd/server/store"
)

// Group cells (migration 00009, store.GroupCells) are kept by every write
// in its own transaction. A write that touches rows with a rollup key
// first takes a transaction lock on each trace it touches (hashed into
// traceLocks locks, which bounds the locks a bulk write holds, taken in
// one order in one statement), reads those traces' chains as committed
// (a statement that starts after the locks sees what the writes that held
// them committed), works out the chains after the write, moves the cells
// by the difference, and only then writes its rows. So the cells follow
// the writes to a trace one at a time, and every write takes its locks in
// one order: trace locks, then its feedback row (updates), then group
// cells (sorted), then what its statement's triggers lock (rollups) last,
// which keeps the time it holds the busiest rows (today's rollups) as
// short as it was without group cells.

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

// lockChains takes the locks of traces and returns the rows of their
// chains as committed.
func lockChains(ctx context.Context, tx pgx.Tx, traces []trace) ([]store.ChainRow, error) {
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
	// One round trip: the read starts when the locks are taken. unnest
	// keeps the array's order.
	b := &pgx.Batch{}
	b.Queue(`SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`, locks)
	b.Queue(`SELECT `+chainColumns+` FROM feedback
		WHERE (workspace_id, trace_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
		  AND coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL`, wss, ids)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("group cells: %w", err)
	}
	return scanChains(br.Query())
}

// moveCells queues on b the statements that file the difference between
// the chains before and after a write.
func moveCells(b *pgx.Batch, before, after []store.ChainRow) {
	cells := store.GroupCells{}
	cells.AddChains(before, -1)
	cells.AddChains(after, 1)
	queueGroupCells(b, cells)
}

// sendBatch sends b in tx, one round trip, and returns the command tag of
// its last statement.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	if b.Len() == 0 {
		return tag, nil
	}
	br := tx.SendBatch(ctx, b)
	for range b.Len() {
		var err error
		if tag, err = br.Exec(); err != nil {
			br.Close()
			return tag, err
		}
	}
	return tag, br.Close()
}

// without returns rows without the row with id.
func without(rows []store.ChainRow, id string) []store.ChainRow {
	return slices.DeleteFunc(slices.Clone(rows), func(r store.ChainRow) bool { return r.ID == id })
}

// rollupValues returns the rollup keys' values of each metadata as the
// m_ columns will hold them (metadata ->> key): strings as they are, from
// Go; any other value as PostgreSQL renders it, asked of PostgreSQL.
func rollupValues(ctx context.Context, tx pgx.Tx, metas []map[string]any, encoded []string) ([][3]*string, error) {
	out := make([][3]*string, len(metas))
	var ask []int
	for i, m := range metas {
		sp := store.SpecialOf(m)
		for d := range out[i] {
			out[i][d] = sp.Values[d+1]
			if sp.Values[d+1] != nil && sp.Strings&(1<<(d+1)) == 0 {
				ask = append(ask, i)
			}
		}
	}
	ask = slices.Compact(ask)
	if len(ask) == 0 {
		return out, nil
	}
	jsons := make([]string, len(ask))
	for j, i := range ask {
		jsons[j] = encoded[i]
	}
	rows, err := tx.Query(ctx, `SELECT m ->> '_organisation', m ->> '_prompt', m ->> '_environment'
		FROM unnest($1::jsonb[]) WITH ORDINALITY AS u (m, i) ORDER BY i`, jsons)
	if err != nil {
		return nil, fmt.Errorf("group cells: %w", err)
	}
	defer rows.Close()
	for j := 0; rows.Next(); j++ {
		v := &out[ask[j]]
		if err := rows.Scan(&v[0], &v[1], &v[2]); err != nil {
			return nil, fmt.Errorf("group cells: %w", err)
		}
	}
	return out, rows.Err()
}

// lockedRow locks the stored feedback a condition selects (FOR UPDATE) and
// returns it as a chain row with its weight; nil when there is none.
func lockedRow(ctx context.Context, tx pgx.Tx, where string, args ...any) (*store.ChainRow, float64, error) {
	var (
		r      store.ChainRow
		weight float64
	)
	err := tx.QueryRow(ctx, `SELECT `+chainColumns+`, weight FROM feedback WHERE `+where+` FOR UPDATE`, args...).
		Scan(&r.WorkspaceID, &r.ID, &r.Trace, &r.CreatedAt, &r.Values[0], &r.Values[1], &r.Values[2], &r.Weighted, &weight)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return &r, weight, nil
}

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
	return tallies.AddRows(rows)
}
