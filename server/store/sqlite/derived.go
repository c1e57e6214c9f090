package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Each derived structure moves by one upsert (and one delete of what it
// emptied) per batch, run over the batch's deltas in chunks of rows of
// VALUES: a statement call costs modernc's SQLite more than a row does,
// and a JSON argument costs more to take apart than it saves.
var derivedStatements = []struct {
	head string
	cols int
	tail string
}{
	{`INSERT INTO rollups (workspace_id, meta_key, grain, slot, meta_value, value, n, sum_weighted)`, 8,
		` ON CONFLICT (workspace_id, grain, slot, meta_key, meta_value, value) DO UPDATE SET
    n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted`},
	{`DELETE FROM rollups WHERE n = 0 AND (workspace_id, meta_key, grain, slot, meta_value, value) IN (`, 6, `)`},
	{`INSERT INTO group_rollups (workspace_id, meta_key, grain, slot, meta_value, n, traces, sum_weighted)`, 8,
		` ON CONFLICT (workspace_id, grain, slot, meta_key, meta_value) DO UPDATE SET
    n = n + excluded.n, traces = traces + excluded.traces, sum_weighted = sum_weighted + excluded.sum_weighted`},
	{`DELETE FROM group_rollups WHERE n = 0 AND (workspace_id, meta_key, grain, slot, meta_value) IN (`, 5, `)`},
	{`INSERT INTO metadata_entries (workspace_id, day, meta_key, meta_value, created_at, id)`, 6, ``},
	{`DELETE FROM metadata_entries WHERE (workspace_id, day, meta_key, meta_value, created_at, id) IN (`, 6, `)`},
	{`INSERT INTO trace_meta_values (workspace_id, trace_id, meta_key, meta_value, created_at, id)`, 6, ``},
	{`DELETE FROM trace_meta_values WHERE (workspace_id, trace_id, meta_key, meta_value, created_at, id) IN (`, 6, `)`},
	// Events are recorded only for a workspace with a webhook that is not
	// disabled (store.Webhooks), in the order given.
	{`INSERT INTO webhook_events (id, workspace_id, kind, at, feedback_id, trace_id, value, weight, metadata, created_at, updated_at)
    SELECT * FROM (`, 11, `) AS e WHERE EXISTS (
        SELECT 1 FROM webhooks w WHERE w.workspace_id = e.column2 AND w.state <> 'disabled')`},
}

// Indexes of derivedStatements.
const (
	applyRollups = iota
	dropEmptyRollups
	applyGroups
	dropEmptyGroups
	addMetadataEntries
	removeMetadataEntries
	addTraceEntries
	dropTraceEntries
	recordEvents
)

// chunkRows are the numbers of rows of VALUES the derived statements are
// prepared for, largest first; a batch's deltas go through the largest
// that fit.
var chunkRows = []int{64, 16, 4, 1}

// chunked is one derived statement, prepared for each of chunkRows.
type chunked struct {
	cols  int
	stmts []*sql.Stmt
}

func prepareChunked(ctx context.Context, conn *sql.Conn, head string, cols int, tail string) (*chunked, error) {
	c := &chunked{cols: cols}
	for _, n := range chunkRows {
		text := chunkedText(head, cols, tail, n)
		stmt, err := conn.PrepareContext(ctx, text)
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", text, err)
		}
		c.stmts = append(c.stmts, stmt)
	}
	return c, nil
}

// chunkedText is a derived statement's text for n rows of VALUES.
func chunkedText(head string, cols int, tail string, n int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return head + " VALUES " + row + strings.Repeat(", "+row, n-1) + tail
}

// exec runs the statement over rows, each of c.cols values.
func (c *chunked) exec(ctx context.Context, rows [][]any) error {
	args := make([]any, 0, chunkRows[0]*c.cols)
	for len(rows) > 0 {
		i := slices.IndexFunc(chunkRows, func(n int) bool { return n <= len(rows) })
		args = args[:0]
		for _, r := range rows[:chunkRows[i]] {
			args = append(args, r...)
		}
		if _, err := c.stmts[i].ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("derived data: %w", err)
		}
		rows = rows[chunkRows[i]:]
	}
	return nil
}

func (c *chunked) close() {
	for _, s := range c.stmts {
		s.Close()
	}
}

// rowColumns are the columns a rollup.Row is read from (scanRow).
const rowColumns = feedbackColumns + `, coalesce(token_id, ''), m_user, m_organisation, m_prompt, m_environment, m_strings, m_first_bits`

// applyDeltas moves the derived structures by d, and records its events,
// inside the batch's transaction.
func (s *Store) applyDeltas(ctx context.Context, d *rollup.Deltas) error {
	var rollups, groups, add, remove [][]any
	for _, r := range d.Rollups() {
		rollups = append(rollups, []any{r.WorkspaceID, r.MetaKey, r.Grain, r.Slot, r.MetaValue, r.Value, r.N, r.SumWeighted})
	}
	for _, g := range d.Groups() {
		groups = append(groups, []any{g.WorkspaceID, g.MetaKey, g.Grain, g.Slot, g.MetaValue, g.N, g.Traces, g.SumWeighted})
	}
	added, removed := d.MetadataEntries()
	for _, e := range added {
		add = append(add, []any{e.WorkspaceID, e.Day, e.MetaKey, e.MetaValue, e.CreatedAt, e.ID})
	}
	for _, e := range removed {
		remove = append(remove, []any{e.WorkspaceID, e.Day, e.MetaKey, e.MetaValue, e.CreatedAt, e.ID})
	}
	steps := make([][][]any, len(derivedStatements))
	steps[applyRollups], steps[applyGroups], steps[removeMetadataEntries], steps[addMetadataEntries] = rollups, groups, remove, add
	if d.Shrinks() {
		steps[dropEmptyRollups], steps[dropEmptyGroups] = keys(rollups, 6), keys(groups, 5)
	}
	if s.RecordsEvents() {
		for _, e := range d.Events(time.Now()) {
			f := e.Feedback
			meta, err := f.EncodedMetadata()
			if err != nil {
				return err
			}
			steps[recordEvents] = append(steps[recordEvents], []any{e.ID, f.WorkspaceID, int(e.Kind), micros(e.At),
				f.ID, f.TraceID, f.Value, f.Weight, meta, micros(f.CreatedAt), micros(f.UpdatedAt)})
		}
	}
	for i, rows := range steps {
		if err := s.stmts.derived[i].exec(ctx, rows); err != nil {
			return err
		}
	}
	return nil
}

// keys returns the first n values of each row: its key.
func keys(rows [][]any, n int) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = r[:n]
	}
	return out
}

// writeTx is the writer's transaction as rollup's write algorithm sees
// it. The writer is the only one: there is nothing to lock.
type writeTx struct{ s *Store }

var _ rollup.Tx = writeTx{}

func (writeTx) Lock(context.Context, []rollup.TraceRef) (bool, error) { return false, nil }

func (writeTx) LockKeys(context.Context, []rollup.RowKey, bool) error { return nil }

func (w writeTx) Rows(ctx context.Context, keys []rollup.RowKey, byToken bool) ([]*rollup.Row, error) {
	stmt := w.s.stmts.rowByID
	if byToken {
		stmt = w.s.stmts.rowByToken
	}
	out := make([]*rollup.Row, len(keys))
	for i, k := range keys {
		r, err := scanRow(stmt.QueryRowContext(ctx, k.WorkspaceID, k.Key))
		switch {
		case err == nil:
			out[i] = &r
		case store.ErrorCode(err) != store.ENOTFOUND:
			return nil, err
		}
	}
	return out, nil
}

func (w writeTx) Earliest(ctx context.Context, probes []rollup.Probe) ([][]rollup.TraceEntry, error) {
	out := make([][]rollup.TraceEntry, len(probes))
	for i, p := range probes {
		rows, err := w.s.stmts.earliest.QueryContext(ctx, p.WorkspaceID, p.TraceID, p.MetaKey, p.MetaValue, p.N)
		if err != nil {
			return nil, fmt.Errorf("trace meta values: %w", err)
		}
		for rows.Next() {
			e := rollup.TraceEntry{TraceMetaValue: p.TraceMetaValue}
			if err := rows.Scan(&e.CreatedAt, &e.ID); err != nil {
				rows.Close()
				return nil, fmt.Errorf("trace meta values: %w", err)
			}
			out[i] = append(out[i], e)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("trace meta values: %w", err)
		}
	}
	return out, nil
}

// Matching reads the rows with the listing's own statement, on the
// writer's connection, inside its transaction.
func (w writeTx) Matching(ctx context.Context, workspaceID string, f store.Filter) ([]rollup.Row, error) {
	query, args, err := listQuery(rowColumns, workspaceID, f, -1)
	if err != nil {
		return nil, err
	}
	rows, err := w.s.conn.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("matching feedback: %w", err)
	}
	defer rows.Close()
	var out []rollup.Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Write stores a change's rows, flags and trace meta values, a new row's
// insert first.
func (w writeTx) Write(ctx context.Context, ws rollup.Writes) error {
	st := &w.s.stmts
	for _, r := range ws.Inserts {
		sp := r.Special()
		if _, err := st.insertFeedback.ExecContext(ctx, r.ID, r.WorkspaceID, r.TraceID, r.Value, r.Weight, r.MetadataJSON,
			micros(r.CreatedAt), micros(r.UpdatedAt), nullable(r.TokenID),
			sp.MetaValues[0], sp.MetaValues[1], sp.MetaValues[2], sp.MetaValues[3], sp.Strings, r.FirstBits); err != nil {
			return err
		}
	}
	for _, r := range ws.Updates {
		sp := r.Special()
		if _, err := st.updateFeedback.ExecContext(ctx, r.TraceID, r.Value, r.Weight, r.MetadataJSON, micros(r.UpdatedAt),
			sp.MetaValues[0], sp.MetaValues[1], sp.MetaValues[2], sp.MetaValues[3], sp.Strings, r.FirstBits, r.ID); err != nil {
			return err
		}
	}
	for _, r := range ws.Deletes {
		if _, err := st.deleteFeedback.ExecContext(ctx, r.ID); err != nil {
			return err
		}
	}
	for _, f := range ws.Flags {
		if _, err := st.setFlags.ExecContext(ctx, f.Set, f.Clear, f.ID); err != nil {
			return err
		}
	}
	if err := st.derived[dropTraceEntries].exec(ctx, entryArgs(ws.DropEntries)); err != nil {
		return err
	}
	return st.derived[addTraceEntries].exec(ctx, entryArgs(ws.AddEntries))
}

func entryArgs(es []rollup.TraceEntry) [][]any {
	out := make([][]any, len(es))
	for i, e := range es {
		out[i] = []any{e.WorkspaceID, e.TraceID, e.MetaKey, e.MetaValue, e.CreatedAt, e.ID}
	}
	return out
}

// scanRow reads a row of rowColumns.
func scanRow(row scanner) (rollup.Row, error) {
	r := rollup.Row{Stored: &rollup.Special{}}
	sp := r.Stored
	var err error
	r.Feedback, err = scanFeedbackWith(row, &r.TokenID, &sp.MetaValues[0], &sp.MetaValues[1], &sp.MetaValues[2], &sp.MetaValues[3], &sp.Strings, &r.FirstBits)
	return r, err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
