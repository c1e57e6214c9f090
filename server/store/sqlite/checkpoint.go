package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
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
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
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
			_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

func (c *checkpointer) stop() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
