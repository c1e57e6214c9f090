package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// ListWorkspaces implements store.Store.
func (s *Store) ListWorkspaces(ctx context.Context) ([]*store.Workspace, error) {
	return view(s, func(db *sql.DB) ([]*store.Workspace, error) {
		rows, err := db.QueryContext(ctx, `SELECT id, name, created_at FROM workspaces ORDER BY name`)
		if err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		defer rows.Close()
		var out []*store.Workspace
		for rows.Next() {
			var (
				w       store.Workspace
				created int64
			)
			if err := rows.Scan(&w.ID, &w.Name, &created); err != nil {
				return nil, fmt.Errorf("list workspaces: %w", err)
			}
			w.CreatedAt = time.UnixMicro(created).UTC()
			out = append(out, &w)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		return out, nil
	})
}

// ExportFeedback implements store.Store. The index on (workspace_id,
// created_at) serves the range; only rows sharing one created_at (a bulk)
// are sorted by id.
func (s *Store) ExportFeedback(ctx context.Context, workspaceID string, q store.ExportQuery) ([]*store.Feedback, error) {
	if q.Limit < 1 || q.Limit > 10000 {
		return nil, store.Errorf(store.EINVALID, "limit must be 1..10000")
	}
	where := []string{"workspace_id = ?", "created_at >= ?"}
	from := micros(q.From())
	if q.From().IsZero() {
		from = -1 << 62
	}
	args := []any{workspaceID, from}
	if q.After != nil {
		at := micros(q.After.CreatedAt)
		where = append(where, "(created_at, id) > (?, ?)")
		args = append(args, at, q.After.ID)
	}
	return view(s, func(db *sql.DB) ([]*store.Feedback, error) {
		rows, err := db.QueryContext(ctx, `SELECT `+feedbackColumns+` FROM feedback
			WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at, id LIMIT ?`, append(args, q.Limit)...)
		if err != nil {
			return nil, fmt.Errorf("export feedback: %w", err)
		}
		defer rows.Close()
		out := make([]*store.Feedback, 0, q.Limit)
		for rows.Next() {
			f, err := scanFeedback(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("export feedback: %w", err)
		}
		return out, nil
	})
}

// ExistingFeedbackIDs implements store.Store.
func (s *Store) ExistingFeedbackIDs(ctx context.Context, ids []string) ([]string, error) {
	return view(s, func(db *sql.DB) (out []string, err error) {
		// SQLite allows 32766 parameters in one statement.
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 10000)]
			ids = ids[len(chunk):]
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			rows, err := db.QueryContext(ctx, `SELECT id FROM feedback WHERE id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
			if err != nil {
				return nil, fmt.Errorf("existing feedback: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, fmt.Errorf("existing feedback: %w", err)
				}
				out = append(out, id)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, fmt.Errorf("existing feedback: %w", err)
			}
		}
		return out, nil
	})
}
