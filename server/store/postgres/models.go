package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// modelKeysQuery reads the database's model keys.
const modelKeysQuery = `SELECT value FROM settings WHERE name = 'model_keys'`

// querier is what reads settings: a transaction or the pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// modelKeys reads the database's model keys; nil when none are set yet.
func modelKeys(ctx context.Context, q querier) ([]string, error) {
	var stored string
	err := q.QueryRow(ctx, modelKeysQuery).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("model keys: %w", err)
	}
	return rollup.DecodeModelKeys(stored)
}

// errModelKeysChanged fails a write whose deltas were worked out with
// model keys that another process changed meanwhile (write runs it again).
var errModelKeysChanged = errors.New("the model keys changed during the write")

// checkModelKeys is the results function of a write's last round trip:
// the keys the transaction sees, after its own writes (which wait for a
// rebuild's lock), must be those it derived the model rollups with. A
// mismatch refreshes the store's keys.
func (s *Store) checkModelKeys(br pgx.BatchResults, used []string) error {
	var stored string
	if err := br.QueryRow().Scan(&stored); err != nil {
		return fmt.Errorf("model keys: %w", err)
	}
	keys, err := rollup.DecodeModelKeys(stored)
	if err != nil {
		return err
	}
	if !slices.Equal(keys, used) {
		s.modelKeys.Store(&keys)
		return errModelKeysChanged
	}
	return nil
}

// firstStringSQL is the SQL of rollup's firstString over the metadata of
// table alias t: the first of keys holding a string of 1 to
// rollup.MaxEntryLength characters. Keys are spelled in the SQL as they
// are (rollup.CheckModelKeys allows no quote).
func firstStringSQL(t string, keys []string) string {
	cases := make([]string, len(keys))
	for i, k := range keys {
		cases[i] = fmt.Sprintf(`CASE WHEN jsonb_typeof(%[1]s.metadata -> '%[2]s') = 'string' AND length(%[1]s.metadata ->> '%[2]s') BETWEEN 1 AND %[3]d
			THEN %[1]s.metadata ->> '%[2]s' END`, t, k, rollup.MaxEntryLength)
	}
	return `coalesce(` + strings.Join(cases, ", ") + `)`
}

// dimensionSQL is the SQL of rollup.Dimension over the metadata of the
// feedback rows, under the model keys.
func dimensionSQL(keys []string) string {
	return `(SELECT CASE WHEN m IS NULL THEN NULL WHEN p IS NULL THEN '-:' || m ELSE length(p)::text || ':' || p || m END
		FROM (SELECT ` + firstStringSQL("feedback", keys) + ` AS m, ` + firstStringSQL("feedback", rollup.ProviderKeys) + ` AS p) AS x)`
}

// orgModels adds the condition that a row of feedback is served by one of
// items (rollup.OrgModelDimensions).
func (c *conditions) orgModels(keys, items []string) {
	c.add(dimensionSQL(keys) + ` = ANY(` + c.arg(rollup.OrgModelDimensions(items)) + `::text[])`)
}

// FeedbackModels implements store.Store: whole slots from the model
// rollups when they answer the query (rollup.PlanModels), the rest from
// the rows, in one snapshot.
func (s *Store) FeedbackModels(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.ModelTally, error) {
	if q.To.Before(q.From) {
		return nil, store.Errorf(store.EINVALID, "the range ends before it starts")
	}
	var out []store.ModelTally
	err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
		keys, err := modelKeys(ctx, tx)
		if err != nil {
			return err
		}
		out, err = rollup.PlanModels(q).Models(func(from, to int64, ts rollup.Tallies) error {
			c := &conditions{}
			if err := c.analytics(workspaceID, q, from, to, keys); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT d, 0::bigint, count(*), sum(vw) FROM (
				SELECT `+dimensionSQL(keys)+` AS d, value * weight AS vw FROM feedback WHERE `+c.where()+`) x
				WHERE d IS NOT NULL GROUP BY d`, customPlan(c.args)...)
			return addTallies(rows, err, ts)
		}, func(r rollup.Read, dim string, ts rollup.Tallies) error {
			// One index lookup per slot, to the models in it (one, or all).
			match := `meta_value = $6`
			if dim == "" {
				match = `meta_value > $6`
			}
			rows, err := tx.Query(ctx, `SELECT r.meta_value, 0::bigint, sum(r.n)::bigint, sum(r.sum_weighted)
				FROM generate_series($1::bigint, $2::bigint) AS s(slot)
				CROSS JOIN LATERAL (SELECT * FROM rollups WHERE workspace_id = $3 AND grain = $4 AND slot = s.slot AND meta_key = $5 AND `+match+`) AS r
				GROUP BY r.meta_value`, r.First, r.Last, workspaceID, r.Grain, rollup.ModelMetaKey, dim)
			return addTallies(rows, err, ts)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("feedback models: %w", err)
	}
	return out, nil
}

// SetModelKeys implements store.Store. The rebuild locks feedback against
// writes, on every replica, until it commits; a write of a replica that
// still has the old keys then fails its check (checkModelKeys) and runs
// again with the new ones.
func (s *Store) SetModelKeys(ctx context.Context, keys []string) (rebuilt bool, err error) {
	if err := rollup.CheckModelKeys(keys); err != nil {
		return false, store.Errorf(store.EINVALID, "%v", err)
	}
	// Most starts set the keys the database has: they lock nothing.
	if stored, err := modelKeys(ctx, s.pool); err != nil || slices.Equal(stored, keys) {
		if err == nil {
			s.modelKeys.Store(&keys)
		}
		return false, classify(err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE feedback IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		stored, err := modelKeys(ctx, tx)
		if err != nil || slices.Equal(stored, keys) {
			return err
		}
		rebuilt = true
		if _, err := tx.Exec(ctx, `DELETE FROM rollups WHERE meta_key = $1 AND meta_value > ''`, rollup.ModelMetaKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rollups (workspace_id, meta_key, grain, slot, meta_value, value, n, sum_weighted)
			SELECT f.workspace_id, $1, g.grain, `+floorDiv(`f.at`, `g.grain`)+`, f.d, f.value, count(*), sum(f.value * f.weight)
			FROM (SELECT workspace_id, floor(extract(epoch FROM created_at))::bigint AS at, value, weight, `+dimensionSQL(keys)+` AS d FROM feedback) AS f
			CROSS JOIN unnest($2::int[]) AS g(grain)
			WHERE f.d IS NOT NULL
			GROUP BY f.workspace_id, g.grain, 4, f.d, f.value`, rollup.ModelMetaKey, rollup.Grains); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('model_keys', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, rollup.EncodeModelKeys(keys))
		return err
	})
	if err == nil {
		s.modelKeys.Store(&keys)
	}
	return rebuilt, err
}
