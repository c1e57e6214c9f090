package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Each derived structure moves by one statement per batch, fed the batch's
// deltas as one JSON array: one call into SQLite whatever their number.
const (
	applyRollups = `INSERT INTO rollups (workspace_id, dim, span, slot, dim_value, score, n, sum_weighted)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7
FROM json_each(?) AS j WHERE true
ON CONFLICT (workspace_id, dim, span, slot, dim_value, score) DO UPDATE SET
    n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted`
	dropEmptyRollups = `DELETE FROM rollups WHERE n = 0 AND (workspace_id, dim, span, slot, dim_value, score) IN (
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 FROM json_each(?) AS j)`
	applyGroups = `INSERT INTO group_slots (workspace_id, key, span, slot, value, n, firsts, sum_weighted)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7
FROM json_each(?) AS j WHERE true
ON CONFLICT (workspace_id, key, span, slot, value) DO UPDATE SET
    n = n + excluded.n, firsts = firsts + excluded.firsts, sum_weighted = sum_weighted + excluded.sum_weighted`
	dropEmptyGroups = `DELETE FROM group_slots WHERE n = 0 AND (workspace_id, key, span, slot, value) IN (
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 FROM json_each(?) AS j)`
	addPairs = `INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, id)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 FROM json_each(?) AS j`
	removePairs = `DELETE FROM feedback_pairs WHERE (workspace_id, day, key, val, created_at, id) IN (
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 FROM json_each(?) AS j)`
)

// rowColumns are the columns a rollup.Row is read from (scanRow).
const rowColumns = feedbackColumns + `, m_user, m_organisation, m_prompt, m_environment, m_strings, m_firsts`

// applyDeltas moves the derived structures by d, inside the batch's
// transaction.
func (s *Store) applyDeltas(ctx context.Context, d *rollup.Deltas) error {
	var b []byte
	if rs := d.Rollups(); len(rs) > 0 {
		b = b[:0]
		b = append(b, '[')
		for i, r := range rs {
			b = appendArray(b, i, r.WorkspaceID, r.Dim, r.Span, r.Slot, r.DimValue, int64(r.Score), r.N, r.SumWeighted)
		}
		if err := s.exec(ctx, s.stmts.applyRollups, append(b, ']')); err != nil {
			return err
		}
		if d.Shrinks() {
			if err := s.exec(ctx, s.stmts.dropEmptyRollups, append(b, ']')); err != nil {
				return err
			}
		}
	}
	if gs := d.Groups(); len(gs) > 0 {
		b = b[:0]
		b = append(b, '[')
		for i, g := range gs {
			b = appendArray(b, i, g.WorkspaceID, g.Key, g.Span, g.Slot, g.Value, g.N, g.Firsts, g.SumWeighted)
		}
		if err := s.exec(ctx, s.stmts.applyGroups, append(b, ']')); err != nil {
			return err
		}
		if d.Shrinks() {
			if err := s.exec(ctx, s.stmts.dropEmptyGroups, append(b, ']')); err != nil {
				return err
			}
		}
	}
	add, remove := d.Pairs()
	for _, p := range []struct {
		entries []rollup.PairEntry
		stmt    *sql.Stmt
	}{{remove, s.stmts.removePairs}, {add, s.stmts.addPairs}} {
		if len(p.entries) == 0 {
			continue
		}
		b = b[:0]
		b = append(b, '[')
		for i, e := range p.entries {
			b = appendArray(b, i, e.WorkspaceID, e.Day, e.Key, e.Val, e.CreatedAt, e.ID)
		}
		if err := s.exec(ctx, p.stmt, append(b, ']')); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) exec(ctx context.Context, stmt *sql.Stmt, arg []byte) error {
	if _, err := stmt.ExecContext(ctx, string(arg)); err != nil {
		return fmt.Errorf("derived data: %w", err)
	}
	return nil
}

// appendArray appends the JSON array of vs (strings, int64s and float64s)
// to b, after a comma unless it is element 0.
func appendArray(b []byte, i int, vs ...any) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, '[')
	for j, v := range vs {
		if j > 0 {
			b = append(b, ',')
		}
		switch v := v.(type) {
		case string:
			b = appendString(b, v)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case float64:
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		default:
			panic(fmt.Sprintf("appendArray: %T", v))
		}
	}
	return append(b, ']')
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
