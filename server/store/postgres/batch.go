package postgres

import (
	"context"
	"slices"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/groupcommit"
)

// Concurrent small writes share one transaction (group commit): the
// creates queue (groupcommit) takes what has queued, writes it in one
// change (derived.go) and answers each write once that is committed; a
// write that fails in a shared transaction (a taken id or idempotency key)
// has every write of it run again alone, so that it fails alone. Every
// write locks the traces it touches and moves rollup rows that concurrent
// writes of the same slots share, so transactions of one replica mostly
// wait for each other: one queue, whose batch grows with what waits
// meanwhile, keeps up with more clients or a slower database by writing
// larger transactions.
const (
	// batchRows bounds the rows the queue gathers for one transaction.
	batchRows = 256
	// aloneRows: a write of at least this many rows is a batch on its
	// own, and runs at once in its caller's goroutine.
	aloneRows = 64
)

// createOp is one CreateFeedback waiting in the creates queue.
type createOp struct {
	fs   []*store.Feedback
	idem *store.Idempotency
}

// startCreates starts the creates queue; Close closes it.
func (s *Store) startCreates() {
	s.creates = groupcommit.Start(groupcommit.Config[createOp]{
		Commit:    s.createBatch,
		Weight:    func(op createOp) int { return len(op.fs) },
		MaxWeight: batchRows,
	})
}

// createBatch is the creates queue's commit function: it writes the ops
// of a batch and returns each one's outcome. A write alone in its batch,
// or in one whose shared transaction failed, runs alone.
func (s *Store) createBatch(batch []groupcommit.Op[createOp]) []error {
	if len(batch) > 1 {
		// The shared statement must not end because one of its callers
		// left.
		err := s.createTogether(context.Background(), batch)
		if err == nil || store.ErrorCode(err) == store.EUNAVAILABLE {
			// Written, or the database gone: every op has the same
			// outcome, and running each alone would only ask the missing
			// database again once per op.
			return slices.Repeat([]error{err}, len(batch))
		}
	}
	errs := make([]error, len(batch))
	for i, op := range batch {
		errs[i] = s.createNow(op.Ctx, op.Item.fs, op.Item.idem)
	}
	return errs
}

// createTogether writes the rows of every op, and their idempotency keys,
// in one transaction; it fails as a whole when any op would fail alone.
func (s *Store) createTogether(ctx context.Context, ops []groupcommit.Op[createOp]) error {
	var (
		fs    []*store.Feedback
		idems []*store.Idempotency
		ids   [][]string
	)
	for _, op := range ops {
		fs = append(fs, op.Item.fs...)
		idems, ids = append(idems, op.Item.idem), append(ids, feedbackIDs(op.Item.fs))
	}
	return s.createAll(ctx, len(ops), fs, idems, ids)
}

func feedbackIDs(fs []*store.Feedback) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}
