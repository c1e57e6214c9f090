// Package sqlite is feedbackd's embedded store: one SQLite file through the
// pure-Go modernc.org/sqlite driver, so the binary needs no cgo and no
// database server.
//
// All writes go through one writer goroutine that owns the only write
// connection. It gathers the writes that arrived while the previous commit
// ran and commits them together (groupcommit), so the cost of the durable
// fsync is shared as load grows; each write still returns only after its own
// commit. Reads use a separate pool of read-only connections, which WAL mode
// lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/baseline"
	"github.com/feedbackd/feedbackd/server/store/groupcommit"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxBatch bounds how many writes share one commit, so one commit never
// holds the writer long enough to stall the requests queued behind it.
const maxBatch = 512

// Store is a store.Store on one SQLite file.
type Store struct {
	read  *sql.DB
	write *sql.DB
	conn  *sql.Conn
	stmts statements
	// reads are prepared once on the read pool (database/sql keeps one
	// prepared copy per connection), for the lookups every request makes.
	reads readStatements

	// writes is the writer: every write goes through it, on conn.
	writes *groupcommit.Queue[writeOp]
	// wal is the writer's part in checkpointing, run between batches.
	wal walKeeper
	// checkpoints copies the WAL into the database in the background.
	checkpoints *checkpointer
	// CommitObservers are told about each commit of feedback.
	store.CommitObservers
	store.EventRecording
	// walObserver is told what the writer sees of the WAL
	// (SetWALObserver).
	walObserver walObserver
}

var _ store.Store = (*Store)(nil)

// writeOp is one write waiting for the writer: fn runs inside the shared
// transaction (perhaps twice: see commit) and adds what it does to derived
// data to d.
type writeOp struct {
	fn writeFn
	// rows is how many feedback rows the op writes, for the commit
	// observer.
	rows int
	// failsFirst says fn can fail only at its first statement that
	// writes, which SQLite undoes by itself (an insert of a taken id),
	// before it changed anything; any later failure fails the whole
	// transaction: the op needs no savepoint of its own even when its
	// batch runs isolated.
	failsFirst bool
}

// Open opens (creating when missing) the SQLite database at path, applies
// the embedded migrations and starts the writer.
func Open(ctx context.Context, path string) (*Store, error) {
	write, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)

	s := &Store{read: read, write: write}
	if s.conn, err = write.Conn(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Statements are prepared before any transaction: preparing on the one
	// write connection while a transaction holds it would wait forever.
	if err := s.stmts.prepare(ctx, s.conn); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.reads.prepare(ctx, s.read); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.wal.conn = s.conn
	s.writes = groupcommit.Start(groupcommit.Config[writeOp]{
		Commit:    s.commit,
		Weight:    func(writeOp) int { return 1 },
		MaxWeight: maxBatch,
		// Between two commits, once a batch is answered, the writer sees
		// to the WAL.
		AfterBatch: func() { s.observeWAL(s.wal.afterCommit(time.Now())) },
	})
	if s.checkpoints, err = startCheckpointer(path); err != nil {
		s.Close()
		return nil, err
	}
	// A database made before model keys existed gets its model rollups
	// now, from its rows.
	keys, err := modelKeys(ctx, s.read)
	if err == nil {
		if keys == nil {
			keys = rollup.DefaultModelKeys
		}
		_, err = s.SetModelKeys(ctx, keys)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// busyTimeout is how long, in milliseconds, a connection waits for a lock
// another holds before it fails with SQLITE_BUSY.
const busyTimeout = 10000

// dsn builds the connection string. Writes use WAL with synchronous=FULL so a
// commit is on disk before it returns (a crash after an acknowledgement
// loses nothing); readers are read-only.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// No connection checkpoints inside its COMMIT: the checkpointer copies
	// the WAL in the background and the writer starts it over between two
	// commits (checkpoint.go). SQLite's own checkpoint would run in every
	// COMMIT once the WAL passed its mark, until the WAL started over,
	// which under steady commits takes a while.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Set("_txlock", "immediate")
		// The writer touches every index of every new row: rows, time,
		// traces, special keys and metadata pairs, some of whose values
		// arrive in random order (_user). SQLite's default 2 MiB page
		// cache makes those pages reads once the file outgrows it; 8 MiB
		// keeps them cached while the process stays well within 100 MiB
		// under load, where a larger cache mostly grows the process
		// (docs/performance.md).
		q.Add("_pragma", "cache_size(-8192)")
		// A batch that runs isolated puts each write under a savepoint;
		// SQLite keeps the original of every page a savepoint changes in
		// a sub-journal, by default a temporary file, for data never
		// needed once the savepoint ends. In memory it is a copy of a
		// few pages.
		q.Add("_pragma", "temp_store(MEMORY)")
		// A long read keeps the WAL from starting over, so it grows past
		// walCheckpointFrames; once it starts over, the file is cut back
		// to this size rather than keeping the disk space for good.
		q.Add("_pragma", "journal_size_limit(67108864)")
	}
	return "file:" + path + "?" + q.Encode()
}

// migrate applies the embedded migrations to db, after refusing a
// database made by a build older than the baseline.
func migrate(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
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

// view runs fn, a read, on the read pool and classifies its error: every
// read leaves the store through here, as every write through doRows.
func view[T any](s *Store, fn func(db *sql.DB) (T, error)) (T, error) {
	v, err := fn(s.read)
	return v, classify(err)
}

// Ping implements store.Store: it commits a write through the writer,
// as every write does, so it fails exactly when writes do (EFULL on a
// full disk, whether the database file or the WAL has to grow) and
// succeeds again as soon as they can, without waiting for a client's
// write. A remembered "the last write failed" would keep a replica that
// a load balancer took out of rotation unready forever, since no write
// reaches it to clear the flag; a read would not notice a full disk.
//
// The write sets the header's user_version to what it is (nothing reads
// it; migrations are recorded in a table): a one-page commit, appended
// to the WAL and synced like any other.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		var v int64
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		return nil
	})
}

// Close stops taking writes, commits those already queued, and closes the
// database.
func (s *Store) Close() error {
	if !s.writes.Close() {
		return nil
	}
	s.wal.close()
	var err error
	if s.checkpoints != nil {
		err = s.checkpoints.stop()
	}
	return errors.Join(err, s.closeDBs())
}

func (s *Store) closeDBs() error {
	s.stmts.close()
	s.reads.close()
	if s.conn != nil {
		s.conn.Close()
	}
	return errors.Join(s.write.Close(), s.read.Close())
}

// writeFn is a write the writer runs in its transaction.
type writeFn = func(ctx context.Context, tx *sql.Conn, d *rollup.Deltas) error

// do hands fn to the writer and waits until its transaction has committed
// (or failed), as groupcommit.Queue.Do says.
func (s *Store) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Conn) error) error {
	return s.doRows(ctx, 0, false, func(ctx context.Context, tx *sql.Conn, _ *rollup.Deltas) error { return fn(ctx, tx) })
}

// doRows is do for a write of n feedback rows, which adds what it does to
// derived data to the deltas it is given; failsFirst as in writeOp.
func (s *Store) doRows(ctx context.Context, n int, failsFirst bool, fn writeFn) error {
	return classify(s.writes.Do(ctx, writeOp{fn: fn, rows: n, failsFirst: failsFirst}))
}

// commit is the writer's commit function: it runs a batch in one
// transaction, and returns each op's own outcome: one op's failure never
// fails or undoes another's write.
//
// It first runs every op without savepoints: a savepoint copies each page
// an op first changes into SQLite's sub-journal, which costs more than
// the insert of a row itself under load. Failures are rare (a conflict, a
// feedback not found), so when one happens the whole transaction is rolled
// back and the batch runs again with a savepoint per op, where a failure
// undoes only its own op. Ops must therefore be safe to run twice: they
// only read and write inside the transaction, and set their results anew.
func (s *Store) commit(batch []groupcommit.Op[writeOp]) []error {
	start := time.Now()
	errs, failed, err := s.runBatch(batch, false)
	if failed {
		_, _ = s.stmts.rollback.ExecContext(context.Background())
		errs, _, err = s.runBatch(batch, true)
	}
	// The commit is observed before any write is answered, so that what a
	// client reads after its answer (metrics) already counts it.
	writes, rows := 0, 0
	for i, op := range batch {
		if op.Item.rows > 0 {
			writes++
			if err == nil && errs[i] == nil {
				rows += op.Item.rows
			}
		}
	}
	if writes > 0 {
		s.ObserveCommit(writes, rows, time.Since(start), err)
	}
	if err != nil {
		return slices.Repeat([]error{err}, len(batch))
	}
	return errs
}

// runBatch runs the ops of a batch in one transaction, each under its own
// savepoint when isolated is set, applies what the ops that succeeded do
// to derived data, and commits, unless an op failed without
// isolation: then failed is set and the transaction is left open, for the
// caller to roll back and run the batch isolated. errs holds each op's
// outcome. err is a failure of the transaction itself, which fails every
// op: it is rolled back.
//
// The transaction is driven with plain statements on the write connection
// rather than database/sql's Tx, whose StmtContext prepares a statement
// anew for every transaction: statements prepared once on the connection
// run inside the open transaction as they are.
func (s *Store) runBatch(batch []groupcommit.Op[writeOp], isolated bool) (errs []error, failed bool, err error) {
	ctx := context.Background()
	fail := func(what string, err error) ([]error, bool, error) {
		_, _ = s.stmts.rollback.ExecContext(ctx)
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := s.stmts.begin.ExecContext(ctx); err != nil {
		return fail("begin", err)
	}
	keys, err := modelKeys(ctx, s.conn)
	if err != nil {
		return fail("model keys", err)
	}
	errs = make([]error, len(batch))
	var all rollup.Deltas
	for i, op := range batch {
		d := rollup.Deltas{ModelKeys: keys}
		if isolated && !op.Item.failsFirst {
			errs[i] = s.inSavepoint(ctx, op.Item.fn, &d)
		} else {
			errs[i] = op.Item.fn(ctx, s.conn, &d)
		}
		if errs[i] == nil {
			all.Merge(&d)
		} else if aborts(errs[i]) {
			// SQLite may have rolled the whole transaction back: the ops
			// after this one would each commit on their own.
			return fail("write", errs[i])
		}
		failed = failed || errs[i] != nil
	}
	if failed && !isolated {
		return errs, true, nil
	}
	if err := s.applyDeltas(ctx, &all); err != nil {
		return fail("derived data", err)
	}
	if _, err := s.stmts.commit.ExecContext(ctx); err != nil {
		return fail("commit", err)
	}
	return errs, false, nil
}

// inSavepoint runs fn under a savepoint, so that its failure undoes its
// statements and nothing else of the batch.
func (s *Store) inSavepoint(ctx context.Context, fn writeFn, d *rollup.Deltas) error {
	if _, err := s.stmts.savepoint.ExecContext(ctx); err != nil {
		return err
	}
	err := fn(ctx, s.conn, d)
	if err != nil {
		if _, rerr := s.stmts.rollbackTo.ExecContext(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if _, rerr := s.stmts.release.ExecContext(ctx); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}
