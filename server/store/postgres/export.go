package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store"
)

// ListWorkspaces implements store.Store.
func (s *Store) ListWorkspaces(ctx context.Context) ([]*store.Workspace, error) {
	return view(s, func(pool *pgxpool.Pool) ([]*store.Workspace, error) {
		rows, err := pool.Query(ctx, `SELECT id::text, name, created_at FROM workspaces ORDER BY name`)
		if err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Workspace, error) {
			var w store.Workspace
			err := row.Scan(&w.ID, &w.Name, &w.CreatedAt)
			w.CreatedAt = w.CreatedAt.UTC()
			return &w, err
		})
		if err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		return out, nil
	})
}

// ExportFeedback implements store.Store. The index on (workspace_id,
// created_at) serves the range; an incremental sort orders rows sharing one
// created_at (a bulk) by id.
func (s *Store) ExportFeedback(ctx context.Context, workspaceID string, q store.ExportQuery) ([]*store.Feedback, error) {
	if q.Limit < 1 || q.Limit > 10000 {
		return nil, store.Errorf(store.EINVALID, "limit must be 1..10000")
	}
	where := []string{"workspace_id = $1"}
	args := []any{workspaceID}
	if from := q.From(); !from.IsZero() {
		args = append(args, from)
		where = append(where, fmt.Sprintf("created_at >= $%d", len(args)))
	}
	if q.After != nil {
		args = append(args, q.After.CreatedAt, q.After.ID)
		where = append(where, fmt.Sprintf("(created_at, id) > ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	args = append(args, q.Limit)
	return view(s, func(pool *pgxpool.Pool) ([]*store.Feedback, error) {
		rows, err := pool.Query(ctx, `SELECT `+feedbackColumns+` FROM feedback
			WHERE `+strings.Join(where, " AND ")+fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args)), args...)
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

// ExistingFeedbackIDs implements store.Store. ids must be UUIDs.
func (s *Store) ExistingFeedbackIDs(ctx context.Context, ids []string) ([]string, error) {
	return view(s, func(pool *pgxpool.Pool) ([]string, error) {
		rows, err := pool.Query(ctx, `SELECT id::text FROM feedback WHERE id = ANY($1::uuid[])`, ids)
		if err != nil {
			return nil, fmt.Errorf("existing feedback: %w", err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("existing feedback: %w", err)
		}
		return out, nil
	})
}
