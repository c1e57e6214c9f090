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
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// statements are prepared once on the write connection.
type statements struct {
	begin, commit, rollback        *sql.Stmt
	savepoint, rollbackTo, release *sql.Stmt
	insertFeedback, updateFeedback *sql.Stmt
	deleteFeedback, setFlags       *sql.Stmt
	rowByID, rowByToken, earliest  *sql.Stmt
	// derived are derived.go's derivedStatements.
	derived []*chunked
}

func (st *statements) all() []**sql.Stmt {
	return []**sql.Stmt{&st.begin, &st.commit, &st.rollback, &st.savepoint, &st.rollbackTo, &st.release,
		&st.insertFeedback, &st.updateFeedback, &st.deleteFeedback, &st.setFlags, &st.rowByID, &st.rowByToken, &st.earliest}
}

// writerStatements are the texts of statements.all, in order.
var writerStatements = []string{"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT op", "ROLLBACK TO op", "RELEASE op",
	`INSERT INTO feedback (id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id,
			m_user, m_organisation, m_prompt, m_environment, m_strings, m_first_bits)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	`UPDATE feedback SET trace_id = ?, value = ?, weight = ?, metadata = ?, updated_at = ?,
			m_user = ?, m_organisation = ?, m_prompt = ?, m_environment = ?, m_strings = ?, m_first_bits = ?
		WHERE id = ?`,
	`DELETE FROM feedback WHERE id = ?`,
	`UPDATE feedback SET m_first_bits = (m_first_bits | ?) & ~? WHERE id = ?`,
	`SELECT ` + rowColumns + ` FROM feedback WHERE workspace_id = ? AND id = ?`,
	`SELECT ` + rowColumns + ` FROM feedback WHERE workspace_id = ? AND token_id = ?`,
	`SELECT created_at, id FROM trace_meta_values WHERE workspace_id = ? AND trace_id = ? AND meta_key = ? AND meta_value = ?
			ORDER BY created_at, id LIMIT ?`,
}

func (st *statements) prepare(ctx context.Context, conn *sql.Conn) error {
	for i, stmt := range st.all() {
		var err error
		if *stmt, err = conn.PrepareContext(ctx, writerStatements[i]); err != nil {
			return fmt.Errorf("prepare %s: %w", writerStatements[i], err)
		}
	}
	for _, d := range derivedStatements {
		c, err := prepareChunked(ctx, conn, d.head, d.cols, d.tail)
		if err != nil {
			return err
		}
		st.derived = append(st.derived, c)
	}
	return nil
}

func (st *statements) close() {
	for _, s := range st.all() {
		if *s != nil {
			(*s).Close()
		}
	}
	for _, c := range st.derived {
		c.close()
	}
}

const feedbackColumns = `id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at`

// CreateFeedback implements store.Store.
func (s *Store) CreateFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	_, err := s.writeFeedback(ctx, fs, idem, false)
	return err
}

// PutFeedback implements store.Store.
func (s *Store) PutFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) (int, error) {
	return s.writeFeedback(ctx, fs, idem, true)
}

// writeFeedback is CreateFeedback, or PutFeedback when put.
func (s *Store) writeFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency, put bool) (int, error) {
	ids := make([]string, len(fs))
	for i, f := range fs {
		// Encoded once, outside the writer, so that the writer's work is
		// the database's.
		meta, err := f.EncodedMetadata()
		if err != nil {
			return 0, err
		}
		f.MetadataJSON, ids[i] = meta, f.ID
	}
	replaced := 0
	// One new row without a key fails, if at all, with its insert, before
	// changing anything.
	err := s.doRows(ctx, len(fs), !put && len(fs) == 1 && idem == nil, func(ctx context.Context, tx *sql.Conn, d *rollup.Deltas) (err error) {
		if put {
			_, replaced, err = rollup.Put(ctx, writeTx{s}, fs, ids, false, d)
		} else {
			err = rollup.Create(ctx, writeTx{s}, fs, d)
		}
		if err != nil || idem == nil {
			return err
		}
		return recordIdempotency(ctx, tx, idem, ids, replaced)
	})
	return replaced, err
}

const insertIdempotency = `INSERT INTO idempotency (scope, key, fingerprint, message, ids, replaced, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`

// recordIdempotency records a write under its idempotency key, with the
// ids it answers and how many of them it replaced, in the write's
// transaction; ErrIdempotencyKeyUsed when the key is taken, which rolls
// the write back.
func recordIdempotency(ctx context.Context, tx *sql.Conn, idem *store.Idempotency, ids []string, replaced int) error {
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, insertIdempotency, idem.Scope, idem.Key, idem.Fingerprint, idem.Message, string(b), replaced, micros(idem.At))
	if store.ErrorCode(classify(err)) == store.ECONFLICT {
		return store.ErrIdempotencyKeyUsed
	}
	return err
}

// IdempotentResult implements store.Store.
func (s *Store) IdempotentResult(ctx context.Context, scope, key string) (*store.IdempotentResult, error) {
	return view(s, func(db *sql.DB) (*store.IdempotentResult, error) {
		var (
			r       store.IdempotentResult
			ids     string
			created int64
		)
		err := db.QueryRowContext(ctx, `SELECT fingerprint, message, ids, replaced, created_at FROM idempotency WHERE scope = ? AND key = ?`,
			scope, key).Scan(&r.Fingerprint, &r.Message, &ids, &r.Replaced, &created)
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
	})
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
	f.MetadataJSON = meta
	var out *store.Feedback
	err = s.doRows(ctx, 1, false, func(ctx context.Context, tx *sql.Conn, d *rollup.Deltas) (err error) {
		outs, _, err := rollup.Put(ctx, writeTx{s}, []*store.Feedback{f}, []string{tokenID}, true, d)
		if err != nil {
			return err
		}
		if out = outs[0]; idem == nil {
			return nil
		}
		return recordIdempotency(ctx, tx, idem, []string{out.ID}, 0)
	})
	return out, err
}

// EraseFeedback implements store.Store. The erase is one op of the
// writer: it holds the writer, and every other write waits, for as long
// as it takes, which grows with the rows it erases. Without a key it
// fails, if at all, before it writes (its guard), so a batch run again
// op by op does not copy its pages into a savepoint's journal.
func (s *Store) EraseFeedback(ctx context.Context, workspaceID string, f store.Filter, e store.Erase, idem *store.Idempotency) (int, error) {
	var n int
	err := s.doRows(ctx, 1, idem == nil, func(ctx context.Context, tx *sql.Conn, d *rollup.Deltas) (err error) {
		if n, err = rollup.Erase(ctx, writeTx{s}, workspaceID, f, e, d); err != nil || idem == nil || e.DryRun {
			return err
		}
		rec := *idem
		rec.Message = fmt.Sprintf(idem.Message, n)
		return recordIdempotency(ctx, tx, &rec, []string{}, 0)
	})
	return n, err
}

// GetFeedback implements store.Store.
func (s *Store) GetFeedback(ctx context.Context, workspaceID, id string) (*store.Feedback, error) {
	return view(s, func(*sql.DB) (*store.Feedback, error) {
		return scanFeedback(s.reads.feedbackByID.QueryRowContext(ctx, workspaceID, id))
	})
}

// UpdateFeedback implements store.Store.
func (s *Store) UpdateFeedback(ctx context.Context, workspaceID, id string, u store.Update, idem *store.Idempotency) (*store.Feedback, error) {
	var out *store.Feedback
	err := s.doRows(ctx, 1, false, func(ctx context.Context, tx *sql.Conn, d *rollup.Deltas) (err error) {
		if out, err = rollup.Update(ctx, writeTx{s}, workspaceID, id, u, d); err != nil || idem == nil {
			return err
		}
		return recordIdempotency(ctx, tx, idem, []string{out.ID}, 0)
	})
	return out, err
}

// DeleteFeedback implements store.Store.
func (s *Store) DeleteFeedback(ctx context.Context, workspaceID, id string) error {
	return s.doRows(ctx, 1, false, func(ctx context.Context, _ *sql.Conn, d *rollup.Deltas) error {
		return rollup.Delete(ctx, writeTx{s}, workspaceID, id, d)
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
	query, args, err := listQuery(feedbackColumns, workspaceID, f, limit+1)
	if err != nil {
		return nil, err
	}
	return view(s, func(db *sql.DB) (*store.Page, error) {
		rows, err := db.QueryContext(ctx, query, args...)
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
	})
}

// listQuery is the statement of a listing page of at most n rows (all
// of them when n is negative), of the columns cols.
func listQuery(cols, workspaceID string, f store.Filter, n int) (string, []any, error) {
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
	return `SELECT ` + cols + ` FROM feedback INDEXED BY ` + listIndex(f) + `
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY created_at DESC, id DESC LIMIT ?`, args, nil
}

// listIndex names the index a listing with filter f walks, so that a page
// costs about its own size (plus the rows the other filters reject) at any
// table size:
//   - with trace ids, feedback_workspace_trace (workspace_id, trace_id,
//     created_at, id): one trace's rows come in the listing's order, from
//     the cursor down, however many the trace holds; several traces' are
//     merged by a sort;
//   - with a string on a special key, that key's index (workspace_id,
//     m_key, created_at): its rows come newest first, only rows of equal
//     created_at are sorted by id, and the walk stops with the page;
//   - otherwise feedback_workspace_created_id, in the
//     listing's own order, from the upper time bound or the cursor down.
func listIndex(f store.Filter) string {
	if len(f.TraceIDs) > 0 {
		return "feedback_workspace_trace"
	}
	for _, k := range rollup.SpecialKeys {
		if _, ok := f.Metadata[k].(string); ok {
			return "feedback_workspace_" + rollup.SpecialColumns[k]
		}
	}
	return "feedback_workspace_created_id"
}

type scanner interface{ Scan(dest ...any) error }

func scanFeedback(row scanner) (*store.Feedback, error) { return scanFeedbackWith(row) }

// scanFeedbackWith reads a row of feedbackColumns followed by extra.
func scanFeedbackWith(row scanner, extra ...any) (*store.Feedback, error) {
	var (
		f                store.Feedback
		meta             string
		created, updated int64
	)
	err := row.Scan(append([]any{&f.ID, &f.WorkspaceID, &f.TraceID, &f.Value, &f.Weight, &meta, &created, &updated}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "feedback not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan feedback: %w", err)
	}
	if f.Metadata, err = store.DecodeMetadata([]byte(meta)); err != nil {
		return nil, err
	}
	f.MetadataJSON = meta
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
