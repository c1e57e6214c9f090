package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// statements are prepared once on the write connection.
type statements struct {
	begin, commit, rollback        *sql.Stmt
	savepoint, rollbackTo, release *sql.Stmt
	insertFeedback, insertPair     *sql.Stmt
	// fold.go's: the state a batch starts from, the fold statements, and
	// the new fold mark.
	rowidState, setFolded *sql.Stmt
	fold                  [4]*sql.Stmt
}

func (st *statements) prepare(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, foldTable); err != nil {
		return fmt.Errorf("fold table: %w", err)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.begin, "BEGIN IMMEDIATE"}, {&st.commit, "COMMIT"}, {&st.rollback, "ROLLBACK"},
		{&st.savepoint, "SAVEPOINT op"}, {&st.rollbackTo, "ROLLBACK TO op"}, {&st.release, "RELEASE op"},
	} {
		var err error
		if *p.stmt, err = conn.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("prepare %s: %w", p.sql, err)
		}
	}
	var err error
	st.insertFeedback, err = conn.PrepareContext(ctx, `INSERT INTO feedback
		(rowid, id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at,
		 m_user, m_organisation, m_prompt, m_environment, m_strings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.insertPair, `INSERT INTO feedback_pairs (workspace_id, day, key, val, created_at, fid, value, weight,
			trace_id, m_user, m_organisation, m_prompt, m_environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.rowidState, `SELECT coalesce((SELECT max(rowid) FROM feedback), 0), folded FROM rollup_fold`},
		{&st.setFolded, `UPDATE rollup_fold SET folded = ?`},
		{&st.fold[0], foldSum}, {&st.fold[1], foldFine}, {&st.fold[2], foldCoarse}, {&st.fold[3], foldClear},
	} {
		if *p.stmt, err = conn.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("prepare %s: %w", p.sql, err)
		}
	}
	return nil
}

func (st *statements) close() {
	for _, s := range []*sql.Stmt{st.begin, st.commit, st.rollback, st.savepoint, st.rollbackTo, st.release, st.insertFeedback, st.insertPair, st.rowidState, st.setFolded, st.fold[0], st.fold[1], st.fold[2], st.fold[3]} {
		if s != nil {
			s.Close()
		}
	}
}

const feedbackColumns = `id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at`

// CreateFeedback implements store.Store.
func (s *Store) CreateFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	rows := make([][]any, len(fs))
	special := make([]store.Special, len(fs))
	for i, f := range fs {
		meta, err := f.EncodedMetadata()
		if err != nil {
			return err
		}
		sp := store.SpecialOf(f.Metadata)
		special[i] = sp
		rows[i] = []any{0, f.ID, f.WorkspaceID, f.TraceID, f.Value, f.Weight, meta, micros(f.CreatedAt), micros(f.UpdatedAt),
			sp.Values[0], sp.Values[1], sp.Values[2], sp.Values[3], sp.Strings}
	}
	pairs := 0
	for _, f := range fs {
		pairs += countPairs(f.Metadata)
	}
	insert := func(ctx context.Context, tx *sql.Conn) error {
		stmt := s.stmts.insertFeedback
		for i, args := range rows {
			rowid := s.allocRowid()
			args[0] = rowid
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return translate(err)
			}
			if pairs > 0 {
				if err := s.insertPairs(ctx, fs[i], special[i], rowid); err != nil {
					return err
				}
			}
		}
		if idem == nil {
			return nil
		}
		ids := make([]string, len(fs))
		for i, f := range fs {
			ids[i] = f.ID
		}
		return recordIdempotency(ctx, tx, idem, ids)
	}
	// One row without a key or indexed pairs is one INSERT, which needs
	// no savepoint.
	if len(rows) == 1 && idem == nil && pairs == 0 {
		return s.doOne(ctx, insert)
	}
	return s.doRows(ctx, len(rows), insert)
}

// countPairs is the number of feedback_pairs entries of metadata m.
func countPairs(m map[string]any) int {
	n := 0
	for k, v := range m {
		if _, ok := store.IndexedPair(k, v); ok {
			n++
		}
	}
	return n
}

// insertPairs adds the feedback_pairs entries of a new row (updates and
// deletes are the triggers' of migration 00011).
func (s *Store) insertPairs(ctx context.Context, f *store.Feedback, sp store.Special, rowid int64) error {
	for k, v := range f.Metadata {
		if str, ok := store.IndexedPair(k, v); ok {
			at := micros(f.CreatedAt)
			if _, err := s.stmts.insertPair.ExecContext(ctx, f.WorkspaceID, at/store.PairDayMicros, k, str, at, rowid, f.Value, f.Weight,
				f.TraceID, sp.Values[0], sp.Values[1], sp.Values[2], sp.Values[3]); err != nil {
				return fmt.Errorf("index metadata: %w", err)
			}
		}
	}
	return nil
}

// recordIdempotency records a write under its idempotency key, in the
// write's transaction; ErrIdempotencyKeyUsed when the key is taken, which
// rolls the write back.
func recordIdempotency(ctx context.Context, tx *sql.Conn, idem *store.Idempotency, ids []string) error {
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO idempotency (scope, key, fingerprint, message, ids, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, idem.Scope, idem.Key, idem.Fingerprint, idem.Message, string(b), micros(idem.At))
	if store.ErrorCode(translate(err)) == store.ECONFLICT {
		return store.ErrIdempotencyKeyUsed
	}
	return err
}

// IdempotentResult implements store.Store.
func (s *Store) IdempotentResult(ctx context.Context, scope, key string) (*store.IdempotentResult, error) {
	var (
		r       store.IdempotentResult
		ids     string
		created int64
	)
	err := s.read.QueryRowContext(ctx, `SELECT fingerprint, message, ids, created_at FROM idempotency WHERE scope = ? AND key = ?`,
		scope, key).Scan(&r.Fingerprint, &r.Message, &ids, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "no write under this key")
	}
	if err != nil {
		return nil, fmt.Errorf("idempotent result: %w", err)
	}
	if err := json.Unmarshal([]byte(ids), &r.IDs); err != nil {
		return nil, fmt.Errorf("idempotent result: %w", err)
	}
	r.CreatedAt = time.UnixMicro(created).UTC()
	return &r, nil
}

// PurgeIdempotency implements store.Store.
func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, micros(before))
		return err
	})
}

// UpsertTokenFeedback implements store.Store.
func (s *Store) UpsertTokenFeedback(ctx context.Context, tokenID string, f *store.Feedback, idem *store.Idempotency) (*store.Feedback, error) {
	meta, err := f.EncodedMetadata()
	if err != nil {
		return nil, err
	}
	sp := store.SpecialOf(f.Metadata)
	var out *store.Feedback
	err = s.doRows(ctx, 1, func(ctx context.Context, tx *sql.Conn) error {
		// A token's row, once stored, keeps its trace id: an update moves
		// the group cells of that trace.
		trace, err := traceOf(ctx, tx, `SELECT trace_id FROM feedback WHERE workspace_id = ? AND token_id = ?`, f.WorkspaceID, tokenID)
		if err != nil {
			return err
		}
		// On conflict the stored row keeps its rowid; the one allocated
		// here is then left unused.
		rowid := s.allocRowid()
		if err := s.regroup(ctx, tx, f.WorkspaceID, trace, func() error {
			row := tx.QueryRowContext(ctx, `INSERT INTO feedback
					(rowid, id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id,
					 m_user, m_organisation, m_prompt, m_environment, m_strings)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (workspace_id, token_id) WHERE token_id IS NOT NULL DO UPDATE SET
					value = excluded.value,
					weight = excluded.weight,
					metadata = excluded.metadata,
					updated_at = excluded.updated_at,
					m_user = excluded.m_user,
					m_organisation = excluded.m_organisation,
					m_prompt = excluded.m_prompt,
					m_environment = excluded.m_environment,
					m_strings = excluded.m_strings
				RETURNING `+feedbackColumns,
				rowid, f.ID, f.WorkspaceID, f.TraceID, f.Value, f.Weight, meta, micros(f.CreatedAt), micros(f.UpdatedAt), tokenID,
				sp.Values[0], sp.Values[1], sp.Values[2], sp.Values[3], sp.Strings)
			out, err = scanFeedback(row)
			return translate(err)
		}); err != nil {
			return err
		}
		if out.ID == f.ID {
			// Inserted, not updated (the update trigger saw to that).
			if err := s.insertPairs(ctx, out, sp, rowid); err != nil {
				return err
			}
		}
		if idem != nil {
			return recordIdempotency(ctx, tx, idem, []string{out.ID})
		}
		return nil
	})
	return out, err
}

// GetFeedback implements store.Store.
func (s *Store) GetFeedback(ctx context.Context, workspaceID, id string) (*store.Feedback, error) {
	return scanFeedback(s.reads.feedbackByID.QueryRowContext(ctx, workspaceID, id))
}

// UpdateFeedback implements store.Store.
func (s *Store) UpdateFeedback(ctx context.Context, workspaceID, id string, u store.Update, idem *store.Idempotency) (*store.Feedback, error) {
	set, args := `value = ?, weight = coalesce(?, weight), updated_at = ?`, []any{u.Value, u.Weight, micros(u.UpdatedAt)}
	if u.MetadataSet {
		meta, err := store.EncodeMetadata(u.Metadata)
		if err != nil {
			return nil, err
		}
		sp := store.SpecialOf(u.Metadata)
		set += `, metadata = ?, m_user = ?, m_organisation = ?, m_prompt = ?, m_environment = ?, m_strings = ?`
		args = append(args, meta, sp.Values[0], sp.Values[1], sp.Values[2], sp.Values[3], sp.Strings)
	}
	var out *store.Feedback
	err := s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		trace, err := traceOf(ctx, tx, traceByID, workspaceID, id)
		if err != nil {
			return err
		}
		if err := s.regroup(ctx, tx, workspaceID, trace, func() error {
			row := tx.QueryRowContext(ctx, `UPDATE feedback SET `+set+`
				WHERE workspace_id = ? AND id = ?
				RETURNING `+feedbackColumns, append(args, workspaceID, id)...)
			out, err = scanFeedback(row)
			return err
		}); err != nil {
			return err
		}
		if idem != nil {
			return recordIdempotency(ctx, tx, idem, []string{out.ID})
		}
		return nil
	})
	return out, err
}

// DeleteFeedback implements store.Store.
func (s *Store) DeleteFeedback(ctx context.Context, workspaceID, id string) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		trace, err := traceOf(ctx, tx, traceByID, workspaceID, id)
		if err != nil {
			return err
		}
		return s.regroup(ctx, tx, workspaceID, trace, func() error {
			res, err := tx.ExecContext(ctx, `DELETE FROM feedback WHERE workspace_id = ? AND id = ?`, workspaceID, id)
			return affectedOne(res, err, "feedback not found")
		})
	})
}

// ListFeedback implements store.Store. It walks the workspace's feedback
// in the order store.Cursor describes, from f.After down: a page boundary
// is a fixed point, so rows written while a client pages neither shift nor
// repeat what it has not read yet. The index of the walk is listIndex's
// choice, not the planner's: without statistics SQLite takes whichever
// index gives the order, and walks a whole workspace to find a trace.
func (s *Store) ListFeedback(ctx context.Context, workspaceID string, f store.Filter) (*store.Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query, args, err := listQuery(workspaceID, f, limit+1)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list feedback: %w", err)
	}
	defer rows.Close()
	page := &store.Page{}
	for rows.Next() {
		fb, err := scanFeedback(rows)
		if err != nil {
			return nil, err
		}
		page.Items = append(page.Items, fb)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list feedback: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.HasMore = true
	}
	return page, nil
}

// listQuery is the statement of a listing page of at most n rows.
func listQuery(workspaceID string, f store.Filter, n int) (string, []any, error) {
	var where []string
	args := []any{workspaceID}
	where = append(where, "workspace_id = ?")
	if f.After != nil {
		// The first condition bounds the walk on the indexes that hold
		// created_at after their equality columns; the second places the
		// cursor among rows of equal created_at.
		at := micros(f.After.CreatedAt)
		where = append(where, "created_at <= ?", "(created_at, id) < (?, ?)")
		args = append(args, at, at, f.After.ID)
	}
	if len(f.TraceIDs) > 0 {
		cond, condArgs := traceIDsIn(f.TraceIDs)
		where, args = append(where, cond), append(args, condArgs...)
	}
	if f.ValueMin != nil {
		where = append(where, "value >= ?")
		args = append(args, *f.ValueMin)
	}
	if f.ValueMax != nil {
		where = append(where, "value <= ?")
		args = append(args, *f.ValueMax)
	}
	if f.CreatedAfter != nil {
		where = append(where, "created_at >= ?")
		args = append(args, micros(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		where = append(where, "created_at < ?")
		args = append(args, micros(*f.CreatedBefore))
	}
	for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
		cond, condArgs, err := metadataMatch(k, f.Metadata[k])
		if err != nil {
			return "", nil, err
		}
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	args = append(args, n)
	return `SELECT ` + feedbackColumns + ` FROM feedback INDEXED BY ` + listIndex(f) + `
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY created_at DESC, id DESC LIMIT ?`, args, nil
}

// listIndex names the index a listing with filter f walks, so that a page
// costs about its own size (plus the rows the other filters reject) at any
// table size:
//   - with trace ids, feedback_workspace_trace: it finds their rows, few
//     per trace, which are then sorted;
//   - with a string on a special key, that key's index (workspace_id,
//     m_key, created_at): its rows come newest first, only rows of equal
//     created_at are sorted by id, and the walk stops with the page;
//   - otherwise feedback_workspace_created_id (migration 00008), in the
//     listing's own order, from the upper time bound or the cursor down.
func listIndex(f store.Filter) string {
	if len(f.TraceIDs) > 0 {
		return "feedback_workspace_trace"
	}
	for _, k := range store.SpecialKeys {
		if _, ok := f.Metadata[k].(string); ok {
			return "feedback_workspace_" + specialColumns[k]
		}
	}
	return "feedback_workspace_created_id"
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
	if col, special := specialColumns[key]; special {
		if str, ok := v.(string); ok {
			// The key's own column and index find the rows; the bit says
			// the value is a JSON string.
			return fmt.Sprintf("%s = ? AND m_strings & %d", col, specialBit(key)), []any{str}, nil
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

type scanner interface{ Scan(dest ...any) error }

func scanFeedback(row scanner) (*store.Feedback, error) {
	var (
		f                store.Feedback
		meta             string
		created, updated int64
	)
	err := row.Scan(&f.ID, &f.WorkspaceID, &f.TraceID, &f.Value, &f.Weight, &meta, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "feedback not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan feedback: %w", err)
	}
	if f.Metadata, err = store.DecodeMetadata([]byte(meta)); err != nil {
		return nil, err
	}
	f.CreatedAt = time.UnixMicro(created).UTC()
	f.UpdatedAt = time.UnixMicro(updated).UTC()
	return &f, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
