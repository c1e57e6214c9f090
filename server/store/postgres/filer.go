package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
)

// The filer keeps the group cells (store.GroupCells) off the write path.
// Writes only queue, through the triggers of migration 00010, the versions
// of rows with a rollup key that they end (sign -1) and begin (sign 1).
// A round of the filer takes a transaction lock that one filer holds at a
// time across replicas, then reads, in one statement and so one snapshot,
// the oldest queued versions with every other queued version of their
// traces and those traces' rows as they are. The rows as the cells hold
// them are the rows as they are minus the versions queued with sign 1 plus
// those queued with sign -1 (filedRows); the round moves the cells by the
// difference between the two and deletes the versions it read, and
// commits. A write that commits meanwhile leaves its versions queued for
// the next round, which is what keeps the equation true.
//
// Each Store runs a filer in the background, woken by its own writes and
// by a ticker (for the writes of other replicas). Groups read the chains
// of the traces still queued whole (groupsFromCells), so their answers
// never wait for it.

const (
	// fileBatch is how many of the oldest queued versions a round picks
	// (it files every other queued version of their traces with them).
	fileBatch = 4096
	// queueBacklog is how many queued versions of a workspace groups
	// read beside the cells; beyond it they read rows, as without cells.
	queueBacklog = 16384
	// filerLockKey is the advisory lock a round holds, away from the key
	// the migrations take.
	filerLockKey = 0x6664_0001
	// fileEvery is how often an idle filer looks for other replicas' work.
	fileEvery = time.Second
	// queueBloatPages: see vacuumQueue.
	queueBloatPages = 1024
)

// queued is one queued version of a row.
type queued struct {
	seq  int64
	sign int
	row  store.ChainRow
}

// startFiler runs the background filer until Close.
func (s *Store) startFiler(every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	s.kick = make(chan struct{}, 1)
	s.stopFiler = cancel
	s.filerDone = make(chan struct{})
	go func() {
		defer close(s.filerDone)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-s.kick:
			}
			for {
				n, err := s.fileRound(ctx, false)
				if err == nil && n == 0 {
					err = s.vacuumQueue(ctx)
				}
				if err != nil {
					if ctx.Err() == nil {
						s.logger.Warn("filing group cells", slog.Any("error", err))
					}
					break
				}
				if n == 0 {
					break
				}
			}
		}
	}()
}

// kickFiler wakes the background filer, if there is one, without waiting.
func (s *Store) kickFiler() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// FileGroups files every queued version, waiting for the filer lock when
// another filer holds it, and returns when the queue is empty (as of its
// last round). Tests and benchmarks use it to reach a known state.
func (s *Store) FileGroups(ctx context.Context) error {
	for {
		n, err := s.fileRound(ctx, true)
		if err != nil {
			return err
		}
		if n == 0 {
			return s.vacuumQueue(ctx)
		}
	}
}

// vacuumQueue vacuums the queue once this store has filed (and deleted)
// more than queueBacklog versions (vacuumAfter) since it last did. Every read of groups
// looks at the queue, and after a backlog (a bulk load, an upgrade) its
// index holds the deleted versions until a vacuum: 300,000 of them made
// groups 25 times slower here (240 ms against 10 ms). Autovacuum comes
// too (migration 00010 sets the queue's thresholds), but up to a minute
// later.
//
// A backlog filed in parts, with a vacuum between them, can still leave
// the queue's table many pages long and all but empty, and a read that
// scans it reads every page (3 million versions filed after a load: 177
// MiB, 52 ms for each groups query). So the filer, finding the queue
// empty, also vacuums it when its table has more than queueBloatPages
// pages (VACUUM then cuts the empty pages off and the statistics say it
// is empty), looking at most once a second, and not again at the same
// size (the cut needs a moment with no other lock on the queue; without
// it, the next vacuum comes with the next growth, or autovacuum's). A
// vacuum during a load, when the queue was briefly empty, must not keep
// the one after it from coming: a minute between looks did (groups by
// _prompt at 3M rows then read the long queue: 121-158 ms).
func (s *Store) vacuumQueue(ctx context.Context) error {
	if s.filedSinceVacuum.Load() <= s.vacuumAfter {
		now, last := time.Now().UnixNano(), s.lastBloatCheck.Load()
		if now-last < int64(time.Second) || !s.lastBloatCheck.CompareAndSwap(last, now) {
			return nil
		}
		var pages int64
		if err := s.pool.QueryRow(ctx, `SELECT pg_relation_size('feedback_group_queue') / current_setting('block_size')::bigint`).Scan(&pages); err != nil {
			return fmt.Errorf("group filer: %w", err)
		}
		if pages <= s.bloatPages || pages == s.bloatVacuumed.Load() {
			return nil
		}
		s.bloatVacuumed.Store(pages)
	}
	s.filedSinceVacuum.Store(0)
	if _, err := s.pool.Exec(ctx, `VACUUM (ANALYZE) feedback_group_queue`); err != nil {
		return fmt.Errorf("group filer: %w", err)
	}
	return nil
}

// fileRound runs one round of the filer and returns how many queued
// versions it filed: 0 when the queue is empty, or when another filer
// holds the lock and wait is false.
func (s *Store) fileRound(ctx context.Context, wait bool) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	// Read committed: the read below starts after the lock is held, so it
	// sees what the previous holder committed.
	if wait {
		_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, filerLockKey)
	} else {
		var got bool
		if err = tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, filerLockKey).Scan(&got); err == nil && !got {
			return 0, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("group filer: %w", err)
	}
	current, versions, err := scanQueued(tx.Query(ctx, `
		WITH picked AS MATERIALIZED (
			SELECT DISTINCT workspace_id, trace_id FROM (
				SELECT workspace_id, trace_id FROM feedback_group_queue ORDER BY seq LIMIT $1) p)
		SELECT seq, sign, workspace_id::text, id::text, trace_id, t, m_organisation, m_prompt, m_environment, weighted
		FROM feedback_group_queue WHERE (workspace_id, trace_id) IN (SELECT * FROM picked)
		UNION ALL
		SELECT 0, 0, `+chainColumns+` FROM feedback
		WHERE (workspace_id, trace_id) IN (SELECT * FROM picked)
		  AND coalesce(m_organisation, m_prompt, m_environment) IS NOT NULL`, s.fileBatch))
	if err != nil || len(versions) == 0 {
		return 0, err
	}
	filed, err := filedRows(current, versions)
	if err != nil {
		return 0, err
	}
	cells := store.GroupCells{}
	cells.AddChains(filed, -1)
	cells.AddChains(current, 1)
	b := &pgx.Batch{}
	queueGroupCells(b, cells)
	seqs := make([]int64, len(versions))
	for i, v := range versions {
		seqs[i] = v.seq
	}
	b.Queue(`DELETE FROM feedback_group_queue WHERE seq = ANY($1)`, seqs)
	if _, err := sendBatch(ctx, tx, b); err != nil {
		return 0, fmt.Errorf("group filer: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("group filer: %w", err)
	}
	s.filedSinceVacuum.Add(int64(len(versions)))
	return len(versions), nil
}

// scanQueued reads rows of (seq, sign, chain columns): queued versions,
// and with seq 0 rows as they are.
func scanQueued(rows pgx.Rows, err error) (current []store.ChainRow, versions []queued, _ error) {
	if err != nil {
		return nil, nil, fmt.Errorf("group queue: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q queued
		r := &q.row
		if err := rows.Scan(&q.seq, &q.sign, &r.WorkspaceID, &r.ID, &r.Trace, &r.CreatedAt, &r.Values[0], &r.Values[1], &r.Values[2], &r.Weighted); err != nil {
			return nil, nil, fmt.Errorf("group queue: %w", err)
		}
		if q.seq == 0 {
			current = append(current, q.row)
		} else {
			versions = append(versions, q)
		}
	}
	return current, versions, rows.Err()
}

// version is a row version as group cells see it, comparable.
type version struct {
	workspaceID, id, trace string
	createdAt              int64
	values                 [3]string
	present                [3]bool
	weighted               float64
}

func versionOf(r store.ChainRow) version {
	v := version{workspaceID: r.WorkspaceID, id: r.ID, trace: r.Trace, createdAt: r.CreatedAt, weighted: r.Weighted}
	for d, p := range r.Values {
		if p != nil {
			v.values[d], v.present[d] = *p, true
		}
	}
	return v
}

// filedRows returns the rows of some traces as the group cells hold them:
// their rows as they are (current), minus the versions queued with sign 1,
// plus those queued with sign -1. versions must hold every queued version
// of those traces, and current and versions must be read in one snapshot.
func filedRows(current []store.ChainRow, versions []queued) ([]store.ChainRow, error) {
	count := make(map[version]int, len(current)+len(versions))
	rows := make(map[version]store.ChainRow, len(current)+len(versions))
	for _, r := range current {
		v := versionOf(r)
		count[v]++
		rows[v] = r
	}
	for _, q := range versions {
		v := versionOf(q.row)
		count[v] -= q.sign
		rows[v] = q.row
	}
	var out []store.ChainRow
	for v, n := range count {
		if n < 0 {
			return nil, fmt.Errorf("group queue: row %s of trace %q is queued as ended more often than it exists", v.id, v.trace)
		}
		for range n {
			out = append(out, rows[v])
		}
	}
	return out, nil
}
