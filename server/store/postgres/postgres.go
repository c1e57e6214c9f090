// Package postgres is feedbackd's store on PostgreSQL (or a database that
// speaks its protocol), through a pgx connection pool. Several stateless
// feedbackd replicas can share one database: every write is one
// transaction, and small concurrent writes of one replica share one
// statement (batch.go), which runs the write triggers once for all.
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
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/feedbackd/feedbackd/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// observer is told about each CreateFeedback (SetCommitObserver).
	observer commitObserver
	logger   *slog.Logger
	// fileBatch is how many queued versions a filer round picks, and
	// vacuumAfter how many it files before it vacuums the queue;
	// bloatPages is queueBloatPages (vacuumQueue).
	fileBatch   int
	vacuumAfter int64
	bloatPages  int64
	// The background filer of group cells (filer.go): kick wakes it,
	// stopFiler stops it, filerDone is closed when it has stopped.
	kick      chan struct{}
	stopFiler context.CancelFunc
	filerDone chan struct{}
	// filedSinceVacuum counts the queued versions filed since the queue
	// was last vacuumed (vacuumQueue).
	filedSinceVacuum atomic.Int64
	// lastBloatCheck is when (Unix nanoseconds) a filer last looked at the
	// size of the queue's table, and bloatVacuumed the size in pages it
	// last vacuumed it at for that (vacuumQueue).
	lastBloatCheck, bloatVacuumed atomic.Int64
	// The batchers of small writes (batch.go): creates is their queue,
	// closed (under closeMu) by Close, which then waits for batchersDone.
	creates      chan *createOp
	closeMu      sync.RWMutex
	closed       bool
	batchersDone sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Options tune Open.
type Options struct {
	// MaxConns caps the connection pool; 0 keeps pgx's default (or the
	// URL's pool_max_conns).
	MaxConns int32
	// FileGroupsEvery is how often the background filer of group cells
	// looks for work when no write of this store woke it (other replicas'
	// writes): 0 means a second; below 0 runs no background filer (tests
	// call FileGroups).
	FileGroupsEvery time.Duration
	// Logger receives the background filer's errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// fileBatch, vacuumAfter and bloatPages override the constants
	// fileBatch, queueBacklog and queueBloatPages of the filer (tests).
	fileBatch   int
	vacuumAfter int64
	bloatPages  int64
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
	// by its estimates: right after a burst of writes, stale statistics of
	// the group queue made it compile a groups query for 36 ms that then
	// ran in under 1. A URL that sets jit keeps its choice.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := Migrate(ctx, url); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, logger: opts.Logger, fileBatch: opts.fileBatch, vacuumAfter: opts.vacuumAfter, bloatPages: opts.bloatPages}
	if s.fileBatch <= 0 {
		s.fileBatch = fileBatch
	}
	if s.vacuumAfter <= 0 {
		s.vacuumAfter = queueBacklog
	}
	if s.bloatPages <= 0 {
		s.bloatPages = queueBloatPages
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.startBatchers()
	switch {
	case opts.FileGroupsEvery == 0:
		s.startFiler(fileEvery)
	case opts.FileGroupsEvery > 0:
		s.startFiler(opts.FileGroupsEvery)
	}
	return s, nil
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
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close implements store.Store. It writes the small writes already queued
// for the batchers (later ones fail), then stops the background filer (a
// round it leaves unfinished rolls back: what it was filing stays queued)
// and the pool. Other writes run in their callers' goroutines and have
// returned before their callers answer.
func (s *Store) Close() error {
	s.stopBatchers()
	if s.stopFiler != nil {
		s.stopFiler()
		<-s.filerDone
	}
	s.pool.Close()
	return nil
}

// inTx runs fn in one transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return translate(fn(tx)) })
}

// translate maps driver errors to the shared store error codes.
func translate(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return store.Errorf(store.ECONFLICT, "already exists")
		case "22P02": // invalid_text_representation: a malformed uuid
			return store.Errorf(store.ENOTFOUND, "not found")
		}
	}
	return err
}

const feedbackColumns = `id::text, workspace_id::text, trace_id, value, weight, metadata, created_at, updated_at`

// CreateFeedback implements store.Store: one multi-row INSERT from arrays,
// the same statement whatever the batch size (its triggers keep the
// rollups and queue its rows for the group cells, see filer.go). A write
// of few rows shares its statement with the other writes waiting at the
// time (batch.go).
func (s *Store) CreateFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	if len(fs) >= aloneRows {
		return s.createNow(ctx, fs, idem)
	}
	return s.enqueue(&createOp{ctx: ctx, fs: fs, idem: idem, err: make(chan error, 1)})
}

// insertFeedback inserts the rows of insertArgs' arrays.
const insertFeedback = `INSERT INTO feedback
		(id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at)
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::float8[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[])`

// insertArgs are insertFeedback's arguments for fs: one array per column.
func insertArgs(fs []*store.Feedback) ([]any, error) {
	n := len(fs)
	ids, wss, traces, metas := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	values, weights := make([]int32, n), make([]float64, n)
	created, updated := make([]time.Time, n), make([]time.Time, n)
	for i, f := range fs {
		meta, err := f.EncodedMetadata()
		if err != nil {
			return nil, err
		}
		ids[i], wss[i], traces[i], metas[i] = f.ID, f.WorkspaceID, f.TraceID, meta
		values[i], weights[i], created[i], updated[i] = int32(f.Value), f.Weight, f.CreatedAt, f.UpdatedAt
	}
	return []any{ids, wss, traces, values, weights, metas, created, updated}, nil
}

// createNow writes fs in a statement of its own, and its idempotency key
// beside it: one round trip either way.
func (s *Store) createNow(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) (err error) {
	defer s.observeCommit(time.Now(), 1, len(fs), &err)
	args, err := insertArgs(fs)
	if err != nil {
		return err
	}
	defer s.kickFiler()
	if idem == nil {
		// One statement is atomic on its own (its triggers included):
		// with no key to record beside it, it needs no BEGIN and COMMIT,
		// two of the three round trips a transaction would cost.
		_, err := s.pool.Exec(ctx, insertFeedback, args...)
		return translate(err)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// The rows and the key go in one round trip.
		b := &pgx.Batch{}
		b.Queue(insertFeedback, args...)
		queueIdempotency(b, idem, feedbackIDs(fs))
		tag, err := sendBatch(ctx, tx, b)
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrIdempotencyKeyUsed
		}
		return err
	})
}

// recordIdempotency records a write under its idempotency key, in the
// write's transaction; ErrIdempotencyKeyUsed when the key is taken (by a
// write committed meanwhile, on any replica), which rolls the write back.
func recordIdempotency(ctx context.Context, tx pgx.Tx, idem *store.Idempotency, ids []string) error {
	b := &pgx.Batch{}
	queueIdempotency(b, idem, ids)
	tag, err := sendBatch(ctx, tx, b)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrIdempotencyKeyUsed
	}
	return nil
}

// queueIdempotency queues recordIdempotency's statement on b: it inserts no
// row when the key is taken.
func queueIdempotency(b *pgx.Batch, idem *store.Idempotency, ids []string) {
	b.Queue(`INSERT INTO idempotency (scope, key, fingerprint, message, ids, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, idem.Scope, idem.Key, idem.Fingerprint, idem.Message, ids, idem.At)
}

// sendBatch sends b in tx, one round trip, and returns the command tag of
// its last statement.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	if b.Len() == 0 {
		return tag, nil
	}
	br := tx.SendBatch(ctx, b)
	for range b.Len() {
		var err error
		if tag, err = br.Exec(); err != nil {
			br.Close()
			return tag, err
		}
	}
	return tag, br.Close()
}

// IdempotentResult implements store.Store.
func (s *Store) IdempotentResult(ctx context.Context, scope, key string) (*store.IdempotentResult, error) {
	var r store.IdempotentResult
	err := s.pool.QueryRow(ctx, `SELECT fingerprint, message, ids, created_at FROM idempotency WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&r.Fingerprint, &r.Message, &r.IDs, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "no write under this key")
	}
	if err != nil {
		return nil, fmt.Errorf("idempotent result: %w", err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return &r, nil
}

// PurgeIdempotency implements store.Store.
func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, before)
	return err
}

// UpsertTokenFeedback implements store.Store. A token's row, once stored,
// keeps its id, trace id and time; a second submission replaces its score,
// weight and metadata.
func (s *Store) UpsertTokenFeedback(ctx context.Context, tokenID string, f *store.Feedback, idem *store.Idempotency) (*store.Feedback, error) {
	meta, err := f.EncodedMetadata()
	if err != nil {
		return nil, err
	}
	defer s.kickFiler()
	var out *store.Feedback
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `INSERT INTO feedback
				(id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (workspace_id, token_id) WHERE token_id IS NOT NULL DO UPDATE SET
				value = excluded.value,
				weight = excluded.weight,
				metadata = excluded.metadata,
				updated_at = excluded.updated_at
			RETURNING `+feedbackColumns,
			f.ID, f.WorkspaceID, f.TraceID, f.Value, f.Weight, meta, f.CreatedAt, f.UpdatedAt, tokenID)
		var err error
		if out, err = scanFeedback(row); err != nil || idem == nil {
			return err
		}
		return recordIdempotency(ctx, tx, idem, []string{out.ID})
	})
	return out, err
}

// GetFeedback implements store.Store.
func (s *Store) GetFeedback(ctx context.Context, workspaceID, id string) (*store.Feedback, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+feedbackColumns+` FROM feedback WHERE workspace_id = $1 AND id = $2`, workspaceID, id)
	f, err := scanFeedback(row)
	return f, translate(err)
}

// UpdateFeedback implements store.Store. It is one UPDATE, which locks the
// row, so concurrent updates from several replicas run one after the other
// and end in one of them, whole (last write wins), never a mix.
func (s *Store) UpdateFeedback(ctx context.Context, workspaceID, id string, u store.Update, idem *store.Idempotency) (*store.Feedback, error) {
	var meta *string
	if u.MetadataSet {
		m, err := store.EncodeMetadata(u.Metadata)
		if err != nil {
			return nil, err
		}
		meta = &m
	}
	defer s.kickFiler()
	var out *store.Feedback
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `UPDATE feedback SET
				value = $1,
				weight = coalesce($2, weight),
				metadata = coalesce($3::jsonb, metadata),
				updated_at = $4
			WHERE workspace_id = $5 AND id = $6
			RETURNING `+feedbackColumns,
			u.Value, u.Weight, meta, u.UpdatedAt, workspaceID, id)
		var err error
		if out, err = scanFeedback(row); err != nil || idem == nil {
			return err
		}
		return recordIdempotency(ctx, tx, idem, []string{out.ID})
	})
	return out, err
}

// DeleteFeedback implements store.Store.
func (s *Store) DeleteFeedback(ctx context.Context, workspaceID, id string) error {
	defer s.kickFiler()
	tag, err := s.pool.Exec(ctx, `DELETE FROM feedback WHERE workspace_id = $1 AND id = $2`, workspaceID, id)
	return affectedOne(tag, translate(err), "feedback not found")
}

// ListFeedback implements store.Store. It walks the workspace's feedback
// in the order store.Cursor describes, from f.After down, so a page
// boundary is a fixed point: rows written meanwhile, on any replica,
// neither shift nor repeat what a client has not read yet. Unfiltered or
// bounded in time, the walk is down (workspace_id, created_at, id)
// (migration 00008) and stops with the page; the planner, which keeps
// statistics, takes a trace's or a special key's index when those find
// fewer rows.
func (s *Store) ListFeedback(ctx context.Context, workspaceID string, f store.Filter) (*store.Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query, args, err := listQuery(workspaceID, f, limit+1)
	if err != nil {
		return nil, err
	}
	// Planned for its own arguments each time, never with a generic plan
	// cached for the statement: PostgreSQL switches to one after five
	// runs when it looks no dearer, and without the time bounds' values
	// it guesses a range holds a few rows, so it fetches them all through
	// bitmaps and sorts them (130 ms instead of 4 for 30 days of a
	// million rows with a metadata filter).
	rows, err := s.pool.Query(ctx, query, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("list feedback: %w", translate(err))
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
		return nil, fmt.Errorf("list feedback: %w", translate(err))
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.HasMore = true
	}
	return page, nil
}

// listQuery is the statement of a listing page of at most n rows.
func listQuery(workspaceID string, f store.Filter, n int) (string, []any, error) {
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
	return `SELECT ` + feedbackColumns + ` FROM feedback
		WHERE ` + c.where() + `
		ORDER BY feedback.created_at DESC, feedback.id DESC LIMIT ` + c.arg(n), c.args, nil
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

func scanFeedback(row pgx.Row) (*store.Feedback, error) {
	var (
		f     store.Feedback
		value int16
		meta  []byte
	)
	err := row.Scan(&f.ID, &f.WorkspaceID, &f.TraceID, &value, &f.Weight, &meta, &f.CreatedAt, &f.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "feedback not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan feedback: %w", translate(err))
	}
	f.Value = int(value)
	if f.Metadata, err = store.DecodeMetadata(meta); err != nil {
		return nil, err
	}
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
