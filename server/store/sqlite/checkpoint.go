package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/feedbackd/feedbackd/server/store"
)

// checkpointEvery is how often the checkpointer copies what the WAL holds
// into the database: often enough that each round is a few hundred
// pages, so that its writes never hold up a commit's for long.
const checkpointEvery = 100 * time.Millisecond

// checkpointer copies committed pages from the WAL into the database on a
// connection of its own, with PASSIVE checkpoints, which wait for no
// reader or writer. A checkpoint run by the writer itself holds up every
// commit queued behind it for as long as it writes; here commits go on
// meanwhile. Under steady commits a round never catches up with the last
// commit, so it never lets the WAL start over by itself: the writer does
// that between two commits (walKeeper), and since the rounds have copied
// nearly everything by then, it mostly only has to wait for readers.
// Durability is the commits' own: each is in the WAL, synced, before it is
// acknowledged.
//
// It also keeps the disk reserve: see reserveSize.
type checkpointer struct {
	db      *sql.DB
	cancel  context.CancelFunc
	done    chan struct{}
	reserve string
}

// reserveSize is the space the store keeps in a file beside the database
// (its path with -reserve), for checkpoints to use once the disk is full.
// A checkpoint copies the WAL's pages into the database, which grows by
// the pages new since the last one; when the WAL itself filled the disk
// (it grows while a long read holds it), no checkpoint can finish, the WAL
// can never start over, and writes would fail until someone frees space.
// So when a checkpoint fails for a full disk the reserve is deleted, the
// checkpoint finishes, and the writer starts the WAL over: writes succeed
// again as soon as the read has ended. The reserve is made again once the
// disk has room for twice its size. Deleting the file by hand is harmless.
const reserveSize = 4 << 20

func startCheckpointer(path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{}), reserve: path + "-reserve"}
	c.keepReserve()
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A round that fails (the database busy, say) is the next
			// round's to finish; the writer's restarts bound the WAL.
			_, err := c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			switch {
			case store.ErrorCode(classify(err)) == store.EFULL:
				_ = os.Remove(c.reserve)
			case err == nil:
				c.keepReserve()
			}
		}
	}
}

func (c *checkpointer) stop() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}

// keepReserve makes the reserve file when it is missing and the disk has
// room for twice its size, so that making it never fills the disk itself.
func (c *checkpointer) keepReserve() {
	if fi, err := os.Stat(c.reserve); err == nil && fi.Size() >= reserveSize || err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
	if free, ok := freeBytes(c.reserve); !ok || free < 2*reserveSize {
		return
	}
	// Written, not truncated to size: a sparse file reserves nothing.
	if err := os.WriteFile(c.reserve, make([]byte, reserveSize), 0o600); err != nil {
		_ = os.Remove(c.reserve)
	}
}

// walCheckpointFrames is how many frames (pages: 16 MiB at 4 KiB) the WAL
// may hold before the writer starts it over. It bounds the WAL file under
// steady writes (a restart reuses the file from its start), and so the
// disk the WAL keeps and what SQLite reads to rebuild the wal-index after
// a crash. Each restart costs the writer a short wait for readers and the
// copy and fsync of what the checkpointer has not copied yet: once per
// 16 MiB written that is next to nothing, and a smaller WAL would pay it
// more often for little.
const walCheckpointFrames = 4096

// walCheckEvery is how often, at most, the writer reads the WAL's size
// between commits. A read takes microseconds, nothing next to a commit's
// fsync, and the WAL grows past walCheckpointFrames by no more than this
// long's commits before the writer notices.
const walCheckEvery = 20 * time.Millisecond

// walRestartTimeout is how long, in milliseconds, the writer's RESTART
// waits for readers still using the WAL: long enough for a short read
// (a GET, a page of a listing) to end, short enough that the commits
// queued behind the writer barely notice. A longer read (analytics over
// millions of rows, an export, a backup) would hold the writer for its
// whole length; the writer gives up and tries again after a later batch.
const walRestartTimeout = 2

// walRetryMax bounds the wait before the writer tries a RESTART again
// after one that did not finish: the wait doubles from 2*walCheckEvery
// with each such RESTART in a row, so a long read costs the writer a
// RESTART's timeout a few times a second at most, and the WAL starts over
// within this long of the read's end.
const walRetryMax = 16 * walCheckEvery

// Checkpoint outcomes, as SetWALObserver reports them.
const (
	// CheckpointDone is a RESTART that copied every frame with no reader
	// left using the WAL: the next commit starts it over.
	CheckpointDone = "done"
	// CheckpointBusy is a RESTART that a reader still using the WAL, or a
	// round of the checkpointer, held up: it is tried again later.
	CheckpointBusy = "busy"
	// CheckpointError is a RESTART that failed otherwise (a full disk:
	// the checkpointer frees the reserve for it), or a failure to read the
	// WAL's size before one.
	CheckpointError = "error"
)

// walKeeper is the writer's part in checkpointing: between two commits,
// on the writer's own connection, it starts the WAL over once it has
// passed walCheckpointFrames, with PRAGMA wal_checkpoint(RESTART). The
// WAL only starts over when a write begins after a checkpoint has copied
// every frame and no reader uses the WAL; only the writer can make the
// checkpoint and its next write follow each other with no commit between
// them. A RESTART that readers hold up is tried again after a later batch.
//
// The WAL's size is read with PRAGMA wal_checkpoint(NOOP), which copies
// nothing and takes no lock: it reads the wal-index header.
//
// Only the writer goroutine uses it, between transactions: its statements
// are prepared there, on the first use, never while a transaction is open
// on the connection (that would wait forever).
type walKeeper struct {
	conn *sql.Conn
	// noop reads the WAL's size; restart starts it over.
	noop, restart *sql.Stmt
	// readAt is when the WAL's size may be read next, restartAt when a
	// RESTART may run next.
	readAt, restartAt time.Time
	// frames is the WAL's size as last read.
	frames int
	// held counts the RESTARTs in a row that did not finish.
	held int
}

// afterCommit is run by the writer after each batch: it reports the frames
// the batch's commit wrote to the WAL, the WAL's size as last read, and
// the outcome of the RESTART it ran, if any (else "").
func (w *walKeeper) afterCommit(now time.Time) (commitFrames, walFrames int, checkpoint string) {
	commitFrames = w.commitFrames()
	if now.Before(w.readAt) {
		return commitFrames, w.frames, ""
	}
	w.readAt = now.Add(walCheckEvery)
	if err := w.prepare(); err != nil {
		return commitFrames, w.frames, CheckpointError
	}
	var busy, frames, copied int
	if err := w.noop.QueryRowContext(context.Background()).Scan(&busy, &frames, &copied); err != nil {
		return commitFrames, w.frames, CheckpointError
	}
	w.frames = frames
	if frames < walCheckpointFrames || now.Before(w.restartAt) {
		return commitFrames, frames, ""
	}
	checkpoint = w.restartWAL()
	if checkpoint == CheckpointDone {
		w.held = 0
	} else {
		w.held = min(w.held+1, 8) // past walRetryMax, and far from overflowing
		w.restartAt = now.Add(min(walCheckEvery<<w.held, walRetryMax))
	}
	return commitFrames, frames, checkpoint
}

// commitFrames is how many pages the connection wrote to the WAL since it
// was last asked: after a commit, the frames that commit added.
func (w *walKeeper) commitFrames() int {
	n := 0
	_ = w.conn.Raw(func(dc any) error {
		if st, ok := dc.(sqlite3.DBStatus); ok {
			n, _, _ = st.Status(sqlite3.DBStatusCacheWrite, true)
		}
		return nil
	})
	return n
}

// restartWAL runs the RESTART with the short busy timeout and restores the
// connection's own after it. PRAGMA busy_timeout takes effect when the
// statement is compiled, not when it runs, so it is not prepared: each is
// compiled anew (between transactions, where that cannot block).
func (w *walKeeper) restartWAL() string {
	ctx := context.Background()
	if _, err := w.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", walRestartTimeout)); err != nil {
		return CheckpointError
	}
	var busy, frames, copied int
	err := w.restart.QueryRowContext(ctx).Scan(&busy, &frames, &copied)
	if _, werr := w.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout)); werr != nil {
		err = errors.Join(err, werr)
	}
	switch {
	case err != nil:
		return CheckpointError
	case busy != 0:
		return CheckpointBusy
	}
	return CheckpointDone
}

func (w *walKeeper) prepare() error {
	if w.noop != nil {
		return nil
	}
	ctx := context.Background()
	texts := []string{"PRAGMA wal_checkpoint(NOOP)", "PRAGMA wal_checkpoint(RESTART)"}
	stmts := make([]*sql.Stmt, len(texts))
	for i, text := range texts {
		var err error
		if stmts[i], err = w.conn.PrepareContext(ctx, text); err != nil {
			for _, st := range stmts[:i] {
				st.Close()
			}
			return fmt.Errorf("prepare %s: %w", text, err)
		}
	}
	w.noop, w.restart = stmts[0], stmts[1]
	return nil
}

func (w *walKeeper) close() {
	for _, st := range []*sql.Stmt{w.noop, w.restart} {
		if st != nil {
			st.Close()
		}
	}
}

// SetWALObserver has o told, after every commit of the writer, how many
// frames (pages) the commit wrote to the WAL, how many frames the WAL
// holds since it last started over (as last read: at most walCheckEvery
// old while commits arrive), and the outcome of the checkpoint the writer
// ran to start the WAL over (CheckpointDone, CheckpointBusy,
// CheckpointError), or "" when it ran none. o is called from the writer
// once the commit's writes are answered, so it must be quick; nil stops
// it. It may be called at any time. Metrics use it: a store that has it
// has a WAL to report on.
func (s *Store) SetWALObserver(o func(commitFrames, walFrames int, checkpoint string)) {
	s.walObserver.Store(&o)
}

func (s *Store) observeWAL(commitFrames, walFrames int, checkpoint string) {
	if o := s.walObserver.Load(); o != nil && *o != nil {
		(*o)(commitFrames, walFrames, checkpoint)
	}
}

// walObserver holds the WAL observer; a separate type keeps the Store's
// field declaration one line.
type walObserver = atomic.Pointer[func(commitFrames, walFrames int, checkpoint string)]
