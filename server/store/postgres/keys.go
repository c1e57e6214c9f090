package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store"
)

// EnsureWorkspace implements store.Store.
func (s *Store) EnsureWorkspace(ctx context.Context, name string) (*store.Workspace, error) {
	var w store.Workspace
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, id.String(), name, time.Now()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT id::text, name, created_at FROM workspaces WHERE name = $1`, name).
			Scan(&w.ID, &w.Name, &w.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("ensure workspace: %w", err)
	}
	w.CreatedAt = w.CreatedAt.UTC()
	return &w, nil
}

// CreateAPIKey implements store.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, workspace_id, name, hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.ID, k.WorkspaceID, k.Name, k.Hash, k.CreatedAt, k.ExpiresAt)
		return err
	})
}

const keyColumns = `k.id::text, k.workspace_id::text, w.name, k.name, k.hash, k.created_at, k.expires_at, k.revoked_at, k.last_used_at`

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	return view(s, func(pool *pgxpool.Pool) (*store.APIKey, error) {
		return scanKey(pool.QueryRow(ctx, `SELECT `+keyColumns+`
			FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.hash = $1`, hash))
	})
}

// APIKeyByID implements store.Store.
func (s *Store) APIKeyByID(ctx context.Context, id string) (*store.APIKey, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, store.Errorf(store.ENOTFOUND, "api key not found")
	}
	return view(s, func(pool *pgxpool.Pool) (*store.APIKey, error) {
		return scanKey(pool.QueryRow(ctx, `SELECT `+keyColumns+`
			FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = $1`, id))
	})
}

// TouchAPIKey implements store.Store.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	if _, err := uuid.Parse(id); err != nil {
		return store.Errorf(store.ENOTFOUND, "api key %s not found", id)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET last_used_at = greatest(last_used_at, $1) WHERE id = $2`, at, id)
		return affectedOne(tag, err, "api key %s not found", id)
	})
}

// ListAPIKeys implements store.Store.
func (s *Store) ListAPIKeys(ctx context.Context) ([]*store.APIKey, error) {
	return view(s, func(pool *pgxpool.Pool) ([]*store.APIKey, error) {
		rows, err := pool.Query(ctx, `SELECT `+keyColumns+`
			FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id ORDER BY k.created_at, k.id`)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		defer rows.Close()
		var keys []*store.APIKey
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		return keys, rows.Err()
	})
}

// RevokeAPIKey implements store.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	if _, err := uuid.Parse(id); err != nil {
		return store.Errorf(store.ENOTFOUND, "api key %s not found", id)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, at, id)
		return affectedOne(tag, err, "api key %s not found", id)
	})
}

// CountAPIKeys implements store.Store.
func (s *Store) CountAPIKeys(ctx context.Context) (int, error) {
	return view(s, func(pool *pgxpool.Pool) (n int, err error) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
			return 0, fmt.Errorf("count keys: %w", err)
		}
		return n, nil
	})
}

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context, name string, generate func() []byte) ([]byte, error) {
	var secret []byte
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO secrets (name, secret, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, name, generate(), time.Now()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT secret FROM secrets WHERE name = $1`, name).Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return secret, nil
}

func scanKey(row pgx.Row) (*store.APIKey, error) {
	var k store.APIKey
	err := row.Scan(&k.ID, &k.WorkspaceID, &k.WorkspaceName, &k.Name, &k.Hash, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "api key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan key: %w", err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	for _, t := range []*time.Time{k.ExpiresAt, k.RevokedAt, k.LastUsedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return &k, nil
}
