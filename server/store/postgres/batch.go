package postgres

import (
	"context"

	"github.com/feedbackd/feedbackd/server/store"
)

// Concurrent small writes share one transaction (group commit): a
// batcher takes what has queued, writes it in one change (derived.go) and
// answers each write once that is committed; a write that fails in a
// shared transaction (a taken id or idempotency key) has every write of it
// run again alone, so that it fails alone. Every write locks the traces it
// touches and moves rollup rows that concurrent writes of the same slots
// share, so transactions of one replica mostly wait for each other: one
// batcher, whose batch grows with what waits meanwhile, keeps up with more
// clients or a slower database by writing larger transactions.
const (
	// batchers is how many shared transactions run at once.
	batchers = 1
	// batchRows bounds the rows a batcher gathers for one transaction.
	batchRows = 256
	// aloneRows: a write of at least this many rows is a batch on its
	// own, and runs at once in its caller's goroutine.
	aloneRows = 64
)

// createOp is one CreateFeedback waiting for a batcher.
type createOp struct {
	ctx  context.Context
	fs   []*store.Feedback
	idem *store.Idempotency
	err  chan error
}

// startBatchers starts the batchers; Close stops them (stopBatchers).
func (s *Store) startBatchers() {
	s.creates = make(chan *createOp, 4096)
	for range batchers {
		s.batchersDone.Add(1)
		go s.batcher()
	}
}

// stopBatchers stops taking writes, lets the batchers write what is
// queued, and waits for them.
func (s *Store) stopBatchers() {
	s.closeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.creates)
	}
	s.closeMu.Unlock()
	s.batchersDone.Wait()
}

// enqueue hands op to the batchers and waits for its outcome. Once queued,
// the write may commit even when ctx ends meanwhile, so its outcome is
// awaited: a caller must never report a failure for a stored row.
func (s *Store) enqueue(op *createOp) error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return store.Errorf(store.EINTERNAL, "store is closed")
	}
	select {
	case s.creates <- op:
	case <-op.ctx.Done():
		s.closeMu.RUnlock()
		return op.ctx.Err()
	}
	s.closeMu.RUnlock()
	return <-op.err
}

// batcher writes what has queued, a batch at a time, until the queue is
// closed.
func (s *Store) batcher() {
	defer s.batchersDone.Done()
	for op := range s.creates {
		batch, rows := []*createOp{op}, len(op.fs)
	gather:
		for rows < batchRows {
			select {
			case next, ok := <-s.creates:
				if !ok {
					break gather
				}
				batch, rows = append(batch, next), rows+len(next.fs)
			default:
				break gather
			}
		}
		s.createBatch(batch)
	}
}

// createBatch writes the ops of a batch and answers each. An op whose
// caller has left before it ran is not written.
func (s *Store) createBatch(batch []*createOp) {
	live := make([]*createOp, 0, len(batch))
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.err <- err
			continue
		}
		live = append(live, op)
	}
	if len(live) == 1 {
		live[0].err <- s.createNow(live[0].ctx, live[0].fs, live[0].idem)
		return
	}
	if len(live) == 0 {
		return
	}
	// The shared statement must not end because one of its callers left.
	err := s.createTogether(context.Background(), live)
	if err == nil || store.ErrorCode(err) == store.EUNAVAILABLE {
		// Written, or the database gone: every op has the same outcome,
		// and running each alone would only ask the missing database
		// again once per op.
		for _, op := range live {
			op.err <- err
		}
		return
	}
	for _, op := range live {
		op.err <- s.createNow(op.ctx, op.fs, op.idem)
	}
}

// createTogether writes the rows of every op, and their idempotency keys,
// in one transaction; it fails as a whole when any op would fail alone.
func (s *Store) createTogether(ctx context.Context, ops []*createOp) error {
	var (
		fs    []*store.Feedback
		idems []*store.Idempotency
		ids   [][]string
	)
	for _, op := range ops {
		fs = append(fs, op.fs...)
		idems, ids = append(idems, op.idem), append(ids, feedbackIDs(op.fs))
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
