// Package postgres is feedbackd's store on PostgreSQL (or a database that
// speaks its protocol), through a pgx connection pool. Several stateless
// feedbackd replicas can share one database: every write is one
// transaction that locks the traces it touches (derived.go) and moves the
// derived data by what it changed, and small concurrent writes of one
// replica share one transaction (batch.go).
//
// Migrations are embedded and versioned like the SQLite store's (the same
// version numbers, in PostgreSQL's dialect) and applied under a session
// advisory lock, so replicas starting together migrate once.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/baseline"
	"github.com/feedbackd/feedbackd/server/store/groupcommit"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// CommitObservers are told about each commit of feedback.
	store.CommitObservers
	store.EventRecording
	// creates is the group commit of small writes (batch.go).
	creates *groupcommit.Queue[createOp]
	// modelKeys are the database's model keys as this store last saw
	// them, which its writes derive model rollups with (checkModelKeys).
	modelKeys atomic.Pointer[[]string]
}

var _ store.Store = (*Store)(nil)

// Options tune Open.
type Options struct {
	// MaxConns caps the connection pool; 0 keeps pgx's default (or the
	// URL's pool_max_conns).
	MaxConns int32
}

// Open connects to the database at url (postgres:// or postgresql://),
// applies the embedded migrations and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	// Compiling a query (JIT) pays off for queries that run for seconds;
	// feedbackd's are meant to run for milliseconds, and PostgreSQL decides
	// by its estimates, which stale statistics make it get wrong (a query
	// compiled for tens of milliseconds that then ran in under one). A URL
	// that sets jit keeps its choice.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	poolSettings(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := Migrate(ctx, url); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool}
	// A database made before model keys existed gets its model rollups
	// now, from its rows.
	keys, err := modelKeys(ctx, pool)
	if err == nil {
		if keys == nil {
			keys = rollup.DefaultModelKeys
		}
		_, err = s.SetModelKeys(ctx, keys)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.startCreates()
	return s, nil
}

// The pool's settings that decide how fast a request is answered while
// the database is gone (docs/operations.md): a request then fails with
// EUNAVAILABLE (503) within about connectTimeout, never waiting for the
// client's timeout.
const (
	// connectTimeout bounds each connection attempt (a URL's
	// connect_timeout keeps its own): a refused connection fails at
	// once, but a host that does not answer at all would otherwise hold
	// the request for the kernel's TCP timeout, minutes.
	connectTimeout = 2 * time.Second
	// pingTimeout bounds the liveness ping pgxpool sends on a connection
	// that sat idle over a second before handing it out, so that
	// connections broken by a restart are dropped, not used.
	pingTimeout = time.Second
	// healthCheckPeriod is how often idle connections are checked and
	// closed when past their idle time or lifetime.
	healthCheckPeriod = 10 * time.Second
)

func poolSettings(cfg *pgxpool.Config) {
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.PingTimeout = pingTimeout
	cfg.HealthCheckPeriod = healthCheckPeriod
}

// Migrate applies the embedded migrations to the database at url and
// returns. It holds a PostgreSQL advisory lock while it works, so
// concurrent callers (replicas starting together) apply each migration
// once.
func Migrate(ctx context.Context, url string) error {
	connCfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	db := stdlib.OpenDB(*connCfg)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if err := baseline.Check(ctx, p); err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	return classify(s.pool.Ping(ctx))
}

// Close implements store.Store. It writes the small writes already queued
// (later ones fail), then closes the pool. Other writes
// run in their callers' goroutines and have returned before their callers
// answer.
func (s *Store) Close() error {
	s.creates.Close()
	s.pool.Close()
	return nil
}

// inTx runs fn in one transaction, committed when fn returns nil, and
// classifies its error: every write leaves the store through here.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return classify(pgx.BeginFunc(ctx, s.pool, fn))
}

// view runs fn, a read, on the pool and classifies its error: reads of
// one statement leave the store through here, reads of several through
// inSnapshot.
func view[T any](s *Store, fn func(pool *pgxpool.Pool) (T, error)) (T, error) {
	v, err := fn(s.pool)
	return v, classify(err)
}

const feedbackColumns = `id::text, workspace_id::text, trace_id, value, weight, metadata, created_at, updated_at`

// CreateFeedback implements store.Store. A write of few rows shares its
// transaction with the other writes waiting at the time (batch.go).
func (s *Store) CreateFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	for _, f := range fs {
		meta, err := f.EncodedMetadata()
		if err != nil {
			return err
		}
		f.MetadataJSON = meta
	}
	if len(fs) >= aloneRows {
		return s.createNow(ctx, fs, idem)
	}
	return s.creates.Do(ctx, createOp{fs: fs, idem: idem})
}

// createNow writes fs, and its idempotency key beside it, in a
// transaction of its own.
func (s *Store) createNow(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	return s.createAll(ctx, 1, fs, []*store.Idempotency{idem}, [][]string{feedbackIDs(fs)})
}

// createAll inserts fs, of writes writes, and records each non-nil
// idems[i] with ids[i], in one transaction; ErrIdempotencyKeyUsed when a
// key is taken.
func (s *Store) createAll(ctx context.Context, writes int, fs []*store.Feedback, idems []*store.Idempotency, ids [][]string) error {
	// Counted here, not where they are queued: write may queue them again
	// (when the model keys change under it).
	keys := 0
	for _, idem := range idems {
		if idem != nil {
			keys++
		}
	}
	return s.write(ctx, writes, len(fs), func(w *writeTx, d *rollup.Deltas) error {
		return rollup.Create(ctx, w, fs, d)
	}, func(b *pgx.Batch) {
		for i, idem := range idems {
			if idem != nil {
				queueIdempotency(b, idem, ids[i], 0)
			}
		}
	}, func(br pgx.BatchResults) error {
		for range keys {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return store.ErrIdempotencyKeyUsed
			}
		}
		return nil
	})
}

// recordIdempotency queues idem's record on b, and returns what checks
// it: ErrIdempotencyKeyUsed when the key is taken (by a write committed
// meanwhile, on any replica), which rolls the write back.
func recordIdempotency(idem *store.Idempotency, answer func() ([]string, int)) (func(*pgx.Batch), func(pgx.BatchResults) error) {
	if idem == nil {
		return nil, nil
	}
	return func(b *pgx.Batch) { ids, replaced := answer(); queueIdempotency(b, idem, ids, replaced) }, func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrIdempotencyKeyUsed
		}
		return err
	}
}

// queueIdempotency queues recordIdempotency's statement on b: it inserts no
// row when the key is taken.
func queueIdempotency(b *pgx.Batch, idem *store.Idempotency, ids []string, replaced int) {
	b.Queue(`INSERT INTO idempotency (scope, key, fingerprint, message, ids, replaced, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, idem.Scope, idem.Key, idem.Fingerprint, idem.Message, ids, replaced, idem.At)
}

// IdempotentResult implements store.Store.
func (s *Store) IdempotentResult(ctx context.Context, scope, key string) (*store.IdempotentResult, error) {
	return view(s, func(pool *pgxpool.Pool) (*store.IdempotentResult, error) {
		var r store.IdempotentResult
		err := pool.QueryRow(ctx, `SELECT fingerprint, message, ids, replaced, created_at FROM idempotency WHERE scope = $1 AND key = $2`,
			scope, key).Scan(&r.Fingerprint, &r.Message, &r.IDs, &r.Replaced, &r.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.Errorf(store.ENOTFOUND, "no write under this key")
		}
		if err != nil {
			return nil, fmt.Errorf("idempotent result: %w", err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		return &r, nil
	})
}

// PurgeIdempotency implements store.Store.
func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, before)
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
	extra, check := recordIdempotency(idem, func() ([]string, int) { return []string{out.ID}, 0 })
	err = s.write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) (err error) {
		outs, _, err := rollup.Put(ctx, w, []*store.Feedback{f}, []string{tokenID}, true, d)
		if err == nil {
			out = outs[0]
		}
		return err
	}, extra, check)
	return out, err
}

// PutFeedback implements store.Store. It runs at once in a transaction
// of its own: its count is its own, and puts are rarer than creates.
func (s *Store) PutFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) (int, error) {
	keys := feedbackIDs(fs)
	for _, f := range fs {
		meta, err := f.EncodedMetadata()
		if err != nil {
			return 0, err
		}
		f.MetadataJSON = meta
	}
	var replaced int
	extra, check := recordIdempotency(idem, func() ([]string, int) { return keys, replaced })
	err := s.write(ctx, 1, len(fs), func(w *writeTx, d *rollup.Deltas) (err error) {
		_, replaced, err = rollup.Put(ctx, w, fs, keys, false, d)
		return err
	}, extra, check)
	return replaced, err
}

// GetFeedback implements store.Store.
func (s *Store) GetFeedback(ctx context.Context, workspaceID, id string) (*store.Feedback, error) {
	return view(s, func(pool *pgxpool.Pool) (*store.Feedback, error) {
		return scanFeedback(pool.QueryRow(ctx, `SELECT `+feedbackColumns+` FROM feedback WHERE workspace_id = $1 AND id = $2`, workspaceID, id))
	})
}

// UpdateFeedback implements store.Store. Concurrent updates of one
// feedback, from several replicas, run one after the other (they lock its
// trace) and end in one of them, whole (last write wins), never a mix.
func (s *Store) UpdateFeedback(ctx context.Context, workspaceID, id string, u store.Update, idem *store.Idempotency) (*store.Feedback, error) {
	var out *store.Feedback
	extra, check := recordIdempotency(idem, func() ([]string, int) { return []string{id}, 0 })
	err := s.write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) (err error) {
		out, err = rollup.Update(ctx, w, workspaceID, id, u, d)
		return err
	}, extra, check)
	return out, err
}

// DeleteFeedback implements store.Store.
func (s *Store) DeleteFeedback(ctx context.Context, workspaceID, id string) error {
	return s.write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) error {
		return rollup.Delete(ctx, w, workspaceID, id, d)
	}, nil, nil)
}

// EraseFeedback implements store.Store. It locks the traces of the rows
// it erases as every write does (writeTx.Lock): the traces share
// traceLockBuckets locks, so an erase over any number of traces holds at
// most that many, taken in one sorted round like a bulk create's, and
// needs no lock of its own (a lock of the whole workspace would make
// every write of the workspace take it too).
func (s *Store) EraseFeedback(ctx context.Context, workspaceID string, f store.Filter, e store.Erase, idem *store.Idempotency) (int, error) {
	var (
		n   int
		rec *store.Idempotency
	)
	if idem != nil && !e.DryRun {
		copied := *idem
		rec = &copied
	}
	// The record's message is formatted once the count is known: the
	// statement is queued after fn ran.
	extra, check := recordIdempotency(rec, func() ([]string, int) {
		rec.Message = fmt.Sprintf(idem.Message, n)
		return []string{}, 0
	})
	err := s.write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) (err error) {
		n, err = rollup.Erase(ctx, w, workspaceID, f, e, d)
		return err
	}, extra, check)
	return n, err
}

// ListFeedback implements store.Store. It walks the workspace's feedback
// in the order store.Cursor describes, from f.After down, so a page
// boundary is a fixed point: rows written meanwhile, on any replica,
// neither shift nor repeat what a client has not read yet. Unfiltered or
// bounded in time, the walk is down (workspace_id, created_at, id)
// and stops with the page; the planner, which keeps
// statistics, takes a trace's or a special key's index when those find
// fewer rows.
func (s *Store) ListFeedback(ctx context.Context, workspaceID string, f store.Filter) (*store.Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query, args, err := listQuery(feedbackColumns, workspaceID, f, limit+1)
	if err != nil {
		return nil, err
	}
	// Planned for its own arguments each time, never with a generic plan
	// cached for the statement: PostgreSQL switches to one after five
	// runs when it looks no dearer, and without the time bounds' values
	// it guesses a range holds a few rows, so it fetches them all through
	// bitmaps and sorts them, where walking the index would stop with the
	// page.
	return view(s, func(pool *pgxpool.Pool) (*store.Page, error) {
		rows, err := pool.Query(ctx, query, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
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
	c := &conditions{}
	c.add("workspace_id = " + c.arg(workspaceID))
	if f.After != nil {
		// The first condition bounds the walk on the special keys' indexes
		// too, which hold created_at but not id.
		at := c.arg(f.After.CreatedAt)
		c.add("created_at <= " + at)
		c.add("(created_at, id) < (" + at + ", " + c.arg(f.After.ID) + "::uuid)")
	}
	if f.ValueMin != nil {
		c.add("value >= " + c.arg(*f.ValueMin))
	}
	if f.ValueMax != nil {
		c.add("value <= " + c.arg(*f.ValueMax))
	}
	if f.CreatedAfter != nil {
		c.add("created_at >= " + c.arg(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		c.add("created_at < " + c.arg(*f.CreatedBefore))
	}
	if err := c.traceAndMetadata(f.TraceIDs, f.Metadata); err != nil {
		return "", nil, err
	}
	// The ORDER BY names the table's columns: a bare id would be the output
	// column id::text, which no index holds, and each page would sort the
	// whole workspace.
	limit := ""
	if n >= 0 {
		limit = " LIMIT " + c.arg(n)
	}
	return `SELECT ` + cols + ` FROM feedback
		WHERE ` + c.where() + `
		ORDER BY feedback.created_at DESC, feedback.id DESC` + limit, c.args, nil
}

// metadataFilter renders the filter pairs as one JSON object for @>; only
// strings, numbers and booleans may be compared.
func metadataFilter(m map[string]any) (string, error) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch m[k].(type) {
		case string, float64, json.Number, bool:
		default:
			return "", store.Errorf(store.EINVALID, "metadata filter values must be strings, numbers or booleans")
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", store.Errorf(store.EINVALID, "metadata filter: %v", err)
	}
	return string(b), nil
}

func scanFeedback(row pgx.Row) (*store.Feedback, error) { return scanFeedbackWith(row) }

// scanFeedbackWith reads a row of feedbackColumns followed by extra.
func scanFeedbackWith(row pgx.Row, extra ...any) (*store.Feedback, error) {
	var (
		f     store.Feedback
		value int16
		meta  []byte
	)
	err := row.Scan(append([]any{&f.ID, &f.WorkspaceID, &f.TraceID, &value, &f.Weight, &meta, &f.CreatedAt, &f.UpdatedAt}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "feedback not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan feedback: %w", err)
	}
	f.Value = int(value)
	if f.Metadata, err = store.DecodeMetadata(meta); err != nil {
		return nil, err
	}
	f.MetadataJSON = string(meta)
	f.CreatedAt = f.CreatedAt.UTC()
	f.UpdatedAt = f.UpdatedAt.UTC()
	return &f, nil
}

// affectedOne turns a command that changed no row into ENOTFOUND.
func affectedOne(tag pgconn.CommandTag, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.Errorf(store.ENOTFOUND, format, args...)
	}
	return nil
}
