package groupcommit

// QueueLen is how many writes may wait.
const QueueLen = queueLen

// Queued is how many writes wait in q: tests wait for it to know that a
// write is queued.
func (q *Queue[T]) Queued() int { return len(q.ops) }

// Closing says whether Close has begun.
func (q *Queue[T]) Closing() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}
