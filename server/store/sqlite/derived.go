package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

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
	{`INSERT INTO rollups (workspace_id, dim, span, slot, dim_value, score, n, sum_weighted)`, 8,
		` ON CONFLICT (workspace_id, span, slot, dim, dim_value, score) DO UPDATE SET
    n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted`},
	{`DELETE FROM rollups WHERE n = 0 AND (workspace_id, dim, span, slot, dim_value, score) IN (`, 6, `)`},
	{`INSERT INTO group_slots (workspace_id, key, span, slot, value, n, firsts, sum_weighted)`, 8,
		` ON CONFLICT (workspace_id, span, slot, key, value) DO UPDATE SET
    n = n + excluded.n, firsts = firsts + excluded.firsts, sum_weighted = sum_weighted + excluded.sum_weighted`},
	{`DELETE FROM group_slots WHERE n = 0 AND (workspace_id, key, span, slot, value) IN (`, 5, `)`},
	{`INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, id)`, 6, ``},
	{`DELETE FROM feedback_pairs WHERE (workspace_id, day, key, val, created_at, id) IN (`, 6, `)`},
}

// Indexes of derivedStatements.
const (
	applyRollups = iota
	dropEmptyRollups
	applyGroups
	dropEmptyGroups
	addPairs
	removePairs
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
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for _, n := range chunkRows {
		text := head + " VALUES " + row + strings.Repeat(", "+row, n-1) + tail
		stmt, err := conn.PrepareContext(ctx, text)
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", text, err)
		}
		c.stmts = append(c.stmts, stmt)
	}
	return c, nil
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
const rowColumns = feedbackColumns + `, m_user, m_organisation, m_prompt, m_environment, m_strings, m_firsts`

// applyDeltas moves the derived structures by d, inside the batch's
// transaction.
func (s *Store) applyDeltas(ctx context.Context, d *rollup.Deltas) error {
	var rollups, groups, add, remove [][]any
	for _, r := range d.Rollups() {
		rollups = append(rollups, []any{r.WorkspaceID, r.Dim, r.Span, r.Slot, r.DimValue, r.Score, r.N, r.SumWeighted})
	}
	for _, g := range d.Groups() {
		groups = append(groups, []any{g.WorkspaceID, g.Key, g.Span, g.Slot, g.Value, g.N, g.Firsts, g.SumWeighted})
	}
	added, removed := d.Pairs()
	for _, e := range added {
		add = append(add, []any{e.WorkspaceID, e.Day, e.Key, e.Val, e.CreatedAt, e.ID})
	}
	for _, e := range removed {
		remove = append(remove, []any{e.WorkspaceID, e.Day, e.Key, e.Val, e.CreatedAt, e.ID})
	}
	steps := [][][]any{applyRollups: rollups, applyGroups: groups, removePairs: remove, addPairs: add}
	if d.Shrinks() {
		steps[dropEmptyRollups], steps[dropEmptyGroups] = keys(rollups, 6), keys(groups, 5)
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

// appendString appends s as a JSON string: SQLite's json_each reads it
// back as the same text.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r)
			i += size
			continue
		}
		i++
	}
	return append(b, '"')
}

// traceRows returns every stored row of a workspace's traces, inside the
// writer's transaction.
func (s *Store) traceRows(ctx context.Context, workspaceID string, traces []string) ([]rollup.Row, error) {
	b := []byte{'['}
	for i, t := range traces {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t)
	}
	rows, err := s.stmts.traceRows.QueryContext(ctx, workspaceID, string(append(b, ']')))
	if err != nil {
		return nil, fmt.Errorf("trace rows: %w", err)
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

// scanRow reads a row of rowColumns.
func scanRow(row scanner) (rollup.Row, error) {
	r := rollup.Row{Stored: &rollup.Special{}}
	sp := r.Stored
	var err error
	r.Feedback, err = scanFeedbackWith(row, &sp.Values[0], &sp.Values[1], &sp.Values[2], &sp.Values[3], &sp.Strings, &r.Firsts)
	return r, err
}

// writeRows stores the rows a change writes (rollup.Diff of before and after)
// and adds its deltas to d. A new row's insert comes first, so that a
// write of one new row fails, if at all, before it changed anything.
func (s *Store) writeRows(ctx context.Context, before, after []rollup.Row, d *rollup.Deltas) error {
	w := rollup.Diff(before, after, d)
	for _, r := range w.Inserts {
		meta, err := r.EncodedMetadata()
		if err != nil {
			return err
		}
		sp := r.Special()
		if _, err := s.stmts.insertFeedback.ExecContext(ctx, r.ID, r.WorkspaceID, r.TraceID, r.Value, r.Weight, meta,
			micros(r.CreatedAt), micros(r.UpdatedAt), nullable(r.TokenID),
			sp.Values[0], sp.Values[1], sp.Values[2], sp.Values[3], sp.Strings, r.Firsts); err != nil {
			return translate(err)
		}
	}
	for _, r := range w.Updates {
		meta, err := r.EncodedMetadata()
		if err != nil {
			return err
		}
		sp := r.Special()
		if _, err := s.stmts.updateFeedback.ExecContext(ctx, r.Value, r.Weight, meta, micros(r.UpdatedAt),
			sp.Values[0], sp.Values[1], sp.Values[2], sp.Values[3], sp.Strings, r.Firsts, r.ID); err != nil {
			return translate(err)
		}
	}
	for _, r := range w.Deletes {
		if _, err := s.stmts.deleteFeedback.ExecContext(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
