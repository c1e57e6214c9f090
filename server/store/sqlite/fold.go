package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Rollups are folded rather than kept in each write's transaction
// (migration 00006): an insert writes only its row, and the writer adds the
// rows inserted since the last fold to feedback_rollup and
// feedback_rollup_coarse in bulk, where many rows share a cell. rollup_fold
// records the largest rowid folded; readers add the rows above it (a short
// rowid range) to what the rollups say, in the same snapshot, so answers
// are exact at every moment.

// Options tune the SQLite store. The zero value is the default.
type Options struct {
	// FoldRows is how many unfolded rows make the writer fold as soon as
	// no write is waiting. Default 4096.
	FoldRows int
	// FoldAfter is how long rows may stay unfolded while the writer is
	// idle. Default 1 s; negative never folds on time (tests).
	FoldAfter time.Duration
	// groupChunk and groupLag: see groups.go; tests make them small.
	groupChunk, groupLag int64
}

func (o Options) withDefaults() Options {
	if o.FoldRows <= 0 {
		o.FoldRows = 4096
	}
	if o.FoldAfter == 0 {
		o.FoldAfter = time.Second
	}
	if o.groupChunk <= 0 {
		o.groupChunk = groupChunk
	}
	if o.groupLag <= 0 {
		o.groupLag = groupLag
	}
	return o
}

// foldBacklog bounds the unfolded rows: past it, the writer folds inside
// the next batch's transaction even when writes keep arriving, so that
// readers never scan more than about this many rows besides the rollups.
func (o Options) foldBacklog() int64 { return int64(o.FoldRows) * 2 }

// The fold runs three statements over the rows with rowid in (?1, ?2]:
// one pass over the rows sums them into fold_cells (a temporary table of
// the write connection) per 15-minute cell of each of the rollups'
// dimensions, all feedback (”) and each string value of _organisation
// (bit 2 of m_strings), _prompt (4) and _environment (8); then one upsert
// per 15-minute cell, and one per hour and day cell summed from those.
const (
	foldTable = `CREATE TEMP TABLE IF NOT EXISTS fold_cells (
    workspace_id TEXT NOT NULL, dim TEXT NOT NULL, dim_value TEXT NOT NULL,
    slot INTEGER NOT NULL, value INTEGER NOT NULL, n INTEGER NOT NULL, sum_weighted REAL NOT NULL)`
	foldSum = `INSERT INTO temp.fold_cells (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
SELECT f.workspace_id,
    CASE d.bit WHEN 0 THEN '' WHEN 2 THEN '_organisation' WHEN 4 THEN '_prompt' ELSE '_environment' END,
    CASE d.bit WHEN 0 THEN '' WHEN 2 THEN f.m_organisation WHEN 4 THEN f.m_prompt ELSE f.m_environment END,
    f.created_at / 900000000, f.value, count(*), sum(f.value * f.weight)
FROM feedback AS f JOIN (SELECT 0 AS bit UNION ALL SELECT 2 UNION ALL SELECT 4 UNION ALL SELECT 8) AS d
    ON d.bit = 0 OR f.m_strings & d.bit
WHERE f.rowid > ?1 AND f.rowid <= ?2
GROUP BY 1, 2, 3, 4, 5`
	foldFine = `INSERT INTO feedback_rollup (workspace_id, dim, dim_value, slot, value, n, sum_weighted)
SELECT workspace_id, dim, dim_value, slot, value, n, sum_weighted FROM temp.fold_cells WHERE true
ON CONFLICT (workspace_id, dim, dim_value, slot, value) DO UPDATE SET
    n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted`
	foldCoarse = `INSERT INTO feedback_rollup_coarse (workspace_id, dim, dim_value, span, slot, value, n, sum_weighted)
SELECT workspace_id, dim, dim_value, s.span, slot / (s.span / 900), value, sum(n), sum(sum_weighted)
FROM temp.fold_cells, (SELECT 3600 AS span UNION ALL SELECT 86400) AS s
WHERE true GROUP BY workspace_id, dim, dim_value, s.span, slot / (s.span / 900), value
ON CONFLICT (workspace_id, dim, dim_value, span, slot, value) DO UPDATE SET
    n = n + excluded.n, sum_weighted = sum_weighted + excluded.sum_weighted`
	foldClear = `DELETE FROM temp.fold_cells`
)

// beginBatch reads, inside the batch's write transaction, where the next
// rowid goes: above the largest rowid and above the fold mark, so that a
// new row is never taken for a folded one, even after the newest rows
// were deleted (SQLite would reuse their rowids) or another process wrote.
func (s *Store) beginBatch(ctx context.Context) error {
	var top, folded int64
	if err := s.stmts.rowidState.QueryRowContext(ctx).Scan(&top, &folded); err != nil {
		return err
	}
	s.nextRowid = max(top, folded) + 1
	s.folded = folded
	return s.groups.mark.QueryRowContext(ctx).Scan(&s.gfolded)
}

// allocRowid returns the rowid of the next inserted row. Only the writer
// goroutine calls it, inside a batch.
func (s *Store) allocRowid() int64 {
	id := s.nextRowid
	s.nextRowid++
	return id
}

// unfolded is about how many rows the rollups do not hold yet (rowids
// lost to rolled-back writes count too).
func (s *Store) unfolded() int64 { return s.nextRowid - 1 - s.folded }

// foldInBatch adds every unfolded row to the rollups, and the next rows
// to the group cells, inside the current write transaction.
func (s *Store) foldInBatch(ctx context.Context) error {
	hi := s.nextRowid - 1
	if hi > s.folded {
		if _, err := s.stmts.fold[0].ExecContext(ctx, s.folded, hi); err != nil {
			return fmt.Errorf("fold: %w", err)
		}
		for _, stmt := range s.stmts.fold[1:] {
			if _, err := stmt.ExecContext(ctx); err != nil {
				return fmt.Errorf("fold: %w", err)
			}
		}
		if _, err := s.stmts.setFolded.ExecContext(ctx, hi); err != nil {
			return fmt.Errorf("fold: %w", err)
		}
		s.folded = hi
	}
	if err := s.foldGroups(ctx, hi); err != nil {
		return err
	}
	s.lastFold = time.Now()
	return nil
}

// fold runs a fold in a transaction of its own, when the writer has
// nothing else to do.
func (s *Store) fold(ctx context.Context) error {
	if _, err := s.stmts.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("fold: begin: %w", err)
	}
	err := s.beginBatch(ctx)
	if err == nil {
		err = s.foldInBatch(ctx)
	}
	if err == nil {
		_, err = s.stmts.commit.ExecContext(ctx)
	}
	if err != nil {
		_, _ = s.stmts.rollback.ExecContext(ctx)
		return fmt.Errorf("fold: %w", err)
	}
	return nil
}

// Fold adds every row not yet in the rollups and the group cells to them
// now, and returns when that is committed. The writer does it by itself;
// tools and tests call it to reach a known state. A database migrated
// with rows in it files them in the group cells a chunk per transaction.
func (s *Store) Fold(ctx context.Context) error {
	for {
		var done bool
		if err := s.do(ctx, func(ctx context.Context, _ *sql.Conn) error {
			err := s.foldInBatch(ctx)
			done = s.gfolded >= s.folded
			return err
		}); err != nil || done {
			return err
		}
	}
}
