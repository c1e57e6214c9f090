package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// EnsureWorkspace implements store.Store.
func (s *Store) EnsureWorkspace(ctx context.Context, name string) (*store.Workspace, error) {
	var w store.Workspace
	err := s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, id.String(), name, micros(time.Now())); err != nil {
			return err
		}
		var created int64
		if err := tx.QueryRowContext(ctx, `SELECT id, name, created_at FROM workspaces WHERE name = ?`, name).
			Scan(&w.ID, &w.Name, &created); err != nil {
			return err
		}
		w.CreatedAt = time.UnixMicro(created).UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ensure workspace: %w", err)
	}
	return &w, nil
}

// CreateAPIKey implements store.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, workspace_id, name, hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, k.ID, k.WorkspaceID, k.Name, k.Hash, micros(k.CreatedAt), optMicros(k.ExpiresAt))
		return err
	})
}

const keyColumns = `k.id, k.workspace_id, w.name, k.name, k.hash, k.created_at, k.expires_at, k.revoked_at, k.last_used_at`

// readStatements are the reads every request makes.
type readStatements struct {
	keyByHash, keyByID, feedbackByID *sql.Stmt
}

func (r *readStatements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&r.keyByHash, `SELECT ` + keyColumns + ` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.hash = ?`},
		{&r.keyByID, `SELECT ` + keyColumns + ` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = ?`},
		{&r.feedbackByID, `SELECT ` + feedbackColumns + ` FROM feedback WHERE workspace_id = ? AND id = ?`},
	} {
		var err error
		if *p.stmt, err = db.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

func (r *readStatements) close() {
	for _, s := range []*sql.Stmt{r.keyByHash, r.keyByID, r.feedbackByID} {
		if s != nil {
			s.Close()
		}
	}
}

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	return view(s, func(*sql.DB) (*store.APIKey, error) { return scanKey(s.reads.keyByHash.QueryRowContext(ctx, hash)) })
}

// APIKeyByID implements store.Store.
func (s *Store) APIKeyByID(ctx context.Context, id string) (*store.APIKey, error) {
	return view(s, func(*sql.DB) (*store.APIKey, error) { return scanKey(s.reads.keyByID.QueryRowContext(ctx, id)) })
}

// TouchAPIKey implements store.Store.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?`, micros(at), id)
		return affectedOne(res, err, "api key %s not found", id)
	})
}

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context, name string, generate func() []byte) ([]byte, error) {
	var secret []byte
	err := s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, secret, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, generate(), micros(time.Now())); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT secret FROM secrets WHERE name = ?`, name).Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return secret, nil
}

// ListAPIKeys implements store.Store.
func (s *Store) ListAPIKeys(ctx context.Context) ([]*store.APIKey, error) {
	return view(s, func(db *sql.DB) ([]*store.APIKey, error) {
		rows, err := db.QueryContext(ctx, `SELECT `+keyColumns+`
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
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, micros(at), id)
		return affectedOne(res, err, "api key %s not found", id)
	})
}

// CountAPIKeys implements store.Store.
func (s *Store) CountAPIKeys(ctx context.Context) (int, error) {
	return view(s, func(db *sql.DB) (n int, err error) {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
			return 0, fmt.Errorf("count keys: %w", err)
		}
		return n, nil
	})
}

func scanKey(row scanner) (*store.APIKey, error) {
	var (
		k                          store.APIKey
		created                    int64
		expires, revoked, lastUsed sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.WorkspaceID, &k.WorkspaceName, &k.Name, &k.Hash, &created, &expires, &revoked, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "api key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan key: %w", err)
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.ExpiresAt = fromNull(expires)
	k.RevokedAt = fromNull(revoked)
	k.LastUsedAt = fromNull(lastUsed)
	return &k, nil
}

func optMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func fromNull(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.UnixMicro(n.Int64).UTC()
	return &t
}

// affectedOne turns an exec result that changed no row into ENOTFOUND with
// the given message.
func affectedOne(res sql.Result, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.Errorf(store.ENOTFOUND, format, args...)
	}
	return nil
}
