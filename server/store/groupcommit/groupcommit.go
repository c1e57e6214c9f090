// Package groupcommit lets concurrent writes share one commit (group
// commit), the same way on every store: writes wait in a queue while a
// commit runs, one goroutine takes what waits as the next batch and hands
// it to the store's commit function, and each write is answered with its
// own outcome once that commit is over. What a commit costs (an fsync, a
// round trip, the locks it takes) is then shared as load grows, while no
// write returns before its own commit.
package groupcommit

import (
	"context"
	"sync"

	"github.com/feedbackd/feedbackd/server/store"
)

// queueLen is how many writes may wait for a commit; a write that finds
// the queue full waits for room, or for its context to end.
const queueLen = 4096

// Op is one write of a batch: its caller's context and what to write.
type Op[T any] struct {
	Ctx  context.Context
	Item T
	// outcome receives the write's outcome, for Do to return.
	outcome chan error
}

// Config is what a store supplies to its Queue.
type Config[T any] struct {
	// Commit writes a batch of at least one op and returns each op's
	// outcome, in order: one op's failure must not fail another's write.
	// The batch is the store's only during the call.
	Commit func(batch []Op[T]) []error
	// Weight is an op's share of MaxWeight: a batch takes the writes that
	// wait, in order, while what it holds weighs less than MaxWeight, so
	// that one commit never holds the writes queued behind it for long.
	Weight    func(T) int
	MaxWeight int
	// AfterBatch, when set, runs after each batch is answered and before
	// the next is taken: between two commits, when nothing is written.
	AfterBatch func()
}

// Queue is one store's group commit; Start makes one.
type Queue[T any] struct {
	cfg    Config[T]
	ops    chan Op[T]
	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	done   chan struct{}
}

// Start starts committing what is queued, until Close.
func Start[T any](cfg Config[T]) *Queue[T] {
	q := &Queue[T]{cfg: cfg, ops: make(chan Op[T], queueLen), done: make(chan struct{})}
	go q.run()
	return q
}

// Do queues item and returns its outcome once its batch's commit is over.
// It gives up with ctx.Err() when ctx ends before item is queued (while
// the queue is full), and fails with EINTERNAL after Close. Once item is
// queued, its outcome is awaited even when ctx ends: it may commit, and a
// caller must never report a failure for a stored write. A write whose
// context has ended when its batch is taken is not committed: it fails
// with ctx.Err(). (A context that ended before Do may still be queued,
// since select picks at random among ready cases; its batch drops it.)
func (q *Queue[T]) Do(ctx context.Context, item T) error {
	op := Op[T]{Ctx: ctx, Item: item, outcome: make(chan error, 1)}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return store.Errorf(store.EINTERNAL, "store is closed")
	}
	select {
	case q.ops <- op:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()
	return <-op.outcome
}

// Close stops taking writes, commits those already queued, and returns
// once they are answered. It says whether this call closed the queue
// (false when an earlier one did), so that the store closes what else it
// holds once.
func (q *Queue[T]) Close() (first bool) {
	q.mu.Lock()
	if !q.closed {
		q.closed, first = true, true
		close(q.ops)
	}
	q.mu.Unlock()
	<-q.done
	return first
}

// run takes a batch at a time until the queue is closed and empty.
func (q *Queue[T]) run() {
	defer close(q.done)
	var batch []Op[T]
	for op := range q.ops {
		batch = append(batch[:0], op)
		weight := q.cfg.Weight(op.Item)
	gather:
		for weight < q.cfg.MaxWeight {
			select {
			case next, ok := <-q.ops:
				if !ok {
					break gather
				}
				batch, weight = append(batch, next), weight+q.cfg.Weight(next.Item)
			default:
				break gather
			}
		}
		q.commit(batch)
		if q.cfg.AfterBatch != nil {
			q.cfg.AfterBatch()
		}
	}
}

// commit answers the writes of batch whose callers have left with their
// contexts' errors, and the others with the outcomes of their commit.
func (q *Queue[T]) commit(batch []Op[T]) {
	live := batch[:0]
	for _, op := range batch {
		if err := op.Ctx.Err(); err != nil {
			op.outcome <- err
		} else {
			live = append(live, op)
		}
	}
	if len(live) == 0 {
		return
	}
	for i, err := range q.cfg.Commit(live) {
		live[i].outcome <- err
	}
}
