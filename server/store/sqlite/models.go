package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// querier is what reads settings: a connection, a transaction or a pool.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// modelKeys reads the database's model keys; nil when none are set yet.
// Writes and reads take them in their own transaction, so that every
// process derives a row's model alike, whichever keys it was started with.
func modelKeys(ctx context.Context, q querier) ([]string, error) {
	var stored string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'model_keys'`).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("model keys: %w", err)
	}
	return rollup.DecodeModelKeys(stored)
}

// firstStringSQL is the SQL of rollup's firstString over the metadata of
// table alias t: the first of keys holding a string of 1 to
// rollup.MaxEntryLength characters. Keys are spelled in the SQL as they
// are (rollup.CheckModelKeys allows no quote).
func firstStringSQL(t string, keys []string) string {
	cases := make([]string, len(keys))
	for i, k := range keys {
		path := `'$."` + k + `"'`
		cases[i] = fmt.Sprintf(`CASE WHEN json_type(%[1]s.metadata, %[2]s) = 'text' AND length(json_extract(%[1]s.metadata, %[2]s)) BETWEEN 1 AND %[3]d
			THEN json_extract(%[1]s.metadata, %[2]s) END`, t, path, rollup.MaxEntryLength)
	}
	return `coalesce(` + strings.Join(cases, ", ") + `, NULL)`
}

// dimensionSQL is the SQL of rollup.Dimension over the metadata of the
// feedback rows, under the model keys.
func dimensionSQL(keys []string) string {
	return `(SELECT CASE WHEN m IS NULL THEN NULL WHEN p IS NULL THEN '-:' || m ELSE length(p) || ':' || p || m END
		FROM (SELECT ` + firstStringSQL("feedback", keys) + ` AS m, ` + firstStringSQL("feedback", rollup.ProviderKeys) + ` AS p))`
}

// orgModelsCondition is the condition that a row of feedback is served by
// one of items (rollup.OrgModelDimensions).
func orgModelsCondition(keys, items []string) (string, []any) {
	dims := rollup.OrgModelDimensions(items)
	args := make([]any, len(dims))
	for i, d := range dims {
		args[i] = d
	}
	return dimensionSQL(keys) + ` IN (?` + strings.Repeat(", ?", len(dims)-1) + `)`, args
}

// FeedbackModels implements store.Store: whole slots from the model
// rollups when they answer the query (rollup.PlanModels), the rest from
// the rows, in one snapshot.
func (s *Store) FeedbackModels(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.ModelTally, error) {
	if q.To.Before(q.From) {
		return nil, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	return view(s, func(db *sql.DB) ([]store.ModelTally, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("feedback models: %w", err)
		}
		defer tx.Rollback()
		keys, err := modelKeys(ctx, tx)
		if err != nil {
			return nil, err
		}
		return rollup.PlanModels(q).Models(func(from, to int64, ts rollup.Tallies) error {
			where, args, err := analyticsConditions(ctx, tx, workspaceID, q, from, to)
			if err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, `SELECT d, 0, count(*), sum(vw) FROM (
				SELECT `+dimensionSQL(keys)+` AS d, value * weight AS vw FROM feedback WHERE `+where+`)
				WHERE d IS NOT NULL GROUP BY d`, args...)
			return addTallies(rows, err, ts)
		}, func(r rollup.Read, dim string, ts rollup.Tallies) error {
			// One seek per slot, to the models in it (one, or all).
			match := `r.meta_value = ?6`
			if dim == "" {
				match = `r.meta_value > ?6`
			}
			rows, err := tx.QueryContext(ctx, `WITH RECURSIVE s(slot) AS (SELECT ?1 UNION ALL SELECT slot + 1 FROM s WHERE slot < ?2)
				SELECT r.meta_value, 0, sum(r.n), sum(r.sum_weighted)
				FROM s CROSS JOIN rollups AS r ON r.workspace_id = ?3 AND r.grain = ?4 AND r.slot = s.slot AND r.meta_key = ?5 AND `+match+`
				GROUP BY r.meta_value`, r.First, r.Last, workspaceID, r.Grain, rollup.ModelMetaKey, dim)
			return addTallies(rows, err, ts)
		})
	})
}

// SetModelKeys implements store.Store: through the writer, so that no
// write of this process runs between the rebuild and the new keys.
func (s *Store) SetModelKeys(ctx context.Context, keys []string) (rebuilt bool, err error) {
	if err := rollup.CheckModelKeys(keys); err != nil {
		return false, store.Errorf(store.EINVALID, "%v", err)
	}
	// Most starts set the keys the database has: they wait for no write.
	if stored, err := modelKeys(ctx, s.read); err != nil || slices.Equal(stored, keys) {
		return false, classify(err)
	}
	err = s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		stored, err := modelKeys(ctx, tx)
		if err != nil || slices.Equal(stored, keys) {
			return err
		}
		rebuilt = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM rollups WHERE meta_key = ? AND meta_value > ''`, rollup.ModelMetaKey); err != nil {
			return err
		}
		grains := make([]string, len(rollup.Grains))
		for i, g := range rollup.Grains {
			grains[i] = fmt.Sprintf("SELECT %d AS grain", g)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollups (workspace_id, meta_key, grain, slot, meta_value, value, n, sum_weighted)
			SELECT f.workspace_id, ?, g.grain, `+floorDiv(`f.created_at`, `(g.grain * 1000000)`)+`, f.d, f.value, count(*), sum(f.value * f.weight)
			FROM (SELECT workspace_id, created_at, value, weight, `+dimensionSQL(keys)+` AS d FROM feedback) AS f
			CROSS JOIN (`+strings.Join(grains, " UNION ALL ")+`) AS g
			WHERE f.d IS NOT NULL
			GROUP BY f.workspace_id, g.grain, 4, f.d, f.value`, rollup.ModelMetaKey); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('model_keys', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, rollup.EncodeModelKeys(keys))
		return err
	})
	return rebuilt, err
}
