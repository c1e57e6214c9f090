package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// checkpointEvery is how often the checkpointer copies what the WAL holds
// into the database: often enough that each round is a few hundred
// pages, so that its writes never hold up a commit's for long.
const checkpointEvery = 100 * time.Millisecond

// checkpointer copies committed pages from the WAL into the database on a
// connection of its own, with PASSIVE checkpoints, which wait for no
// reader or writer. A checkpoint run by the writer itself (SQLite's
// default, when the WAL passes a size) holds up every commit queued
// behind it for as long as it writes; here commits go on meanwhile, and
// once a round has copied everything the writer starts the WAL over at
// its next commit. Durability is the commits' own: each is in the WAL,
// synced, before it is acknowledged.
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
			// round's to finish; the writer's backstop bounds the WAL.
			_, err := c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			switch {
			case store.ErrorCode(translate(err)) == store.EFULL:
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
