package groupcommit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/groupcommit"
)

// A batch takes the writes that waited while the previous commit ran, in
// order, while it weighs less than the bound (so its first write always),
// and each write gets its own outcome.
func TestABatchIsWhatWaitedWhileTheLastCommitted(t *testing.T) {
	h := start(t, 5, nil)
	a := h.do(t.Context(), item{"a", 1})
	h.began(t, "a")
	b := h.do(t.Context(), item{"b", 2})
	h.waitQueued(1)
	c := h.do(t.Context(), item{"c", 2})
	h.waitQueued(2)
	d := h.do(t.Context(), item{"bad d", 1})
	h.waitQueued(3)
	e := h.do(t.Context(), item{"e", 9})
	h.waitQueued(4)
	h.finish <- nil
	h.outcome(t, a, nil)

	h.began(t, "b", "c", "bad d")
	h.finish <- nil
	h.outcome(t, b, nil)
	h.outcome(t, c, nil)
	if err := <-d; err == nil || err.Error() != "bad d" {
		t.Errorf("the failing write of a batch: got %v, want its own failure", err)
	}
	h.began(t, "e")
	h.finish <- nil
	h.outcome(t, e, nil)
}

// A write whose caller has left before it is queued, or while it waits
// for its batch, is never committed: it fails with its context's error.
func TestAWriteWhoseCallerLeftIsNeverCommitted(t *testing.T) {
	h := start(t, 10, nil)
	a := h.do(t.Context(), item{"a", 1})
	h.began(t, "a")
	leaving, leave := context.WithCancel(t.Context())
	left := h.do(leaving, item{"left", 1})
	h.waitQueued(1)
	stays := h.do(t.Context(), item{"stays", 1})
	h.waitQueued(2)
	leave()
	gone := h.do(leaving, item{"gone", 1})
	h.finish <- nil
	h.outcome(t, a, nil)
	h.began(t, "stays")
	h.finish <- nil
	h.outcome(t, stays, nil)
	h.outcome(t, left, context.Canceled)
	h.outcome(t, gone, context.Canceled)
}

// A write that finds the queue full waits for room, or gives up when its
// caller leaves first: a caller is never held by a queue it is not in.
func TestAWriteGivesUpWhileTheQueueIsFull(t *testing.T) {
	h := start(t, groupcommit.QueueLen+1, nil)
	a := h.do(t.Context(), item{"a", 1})
	h.began(t, "a")
	var waiting []<-chan error
	for range groupcommit.QueueLen {
		waiting = append(waiting, h.do(t.Context(), item{"waits", 1}))
	}
	h.waitQueued(groupcommit.QueueLen)
	leaving, leave := context.WithCancel(t.Context())
	late := h.do(leaving, item{"late", 1})
	leave()
	h.outcome(t, late, context.Canceled)

	h.finish <- nil
	h.outcome(t, a, nil)
	if got := <-h.batches; len(got) != groupcommit.QueueLen || slices.Contains(got, "late") {
		t.Errorf("the next batch holds %d writes (late among them: %v), want the %d that waited", len(got), slices.Contains(got, "late"), groupcommit.QueueLen)
	}
	h.finish <- nil
	for _, w := range waiting {
		h.outcome(t, w, nil)
	}
}

// Once its batch is taken, a write's caller waits for the commit's
// outcome even when its context ends: the write may be stored, and must
// then not be reported as failed.
func TestAQueuedWriteAwaitsItsCommit(t *testing.T) {
	h := start(t, 10, nil)
	leaving, leave := context.WithCancel(t.Context())
	a := h.do(leaving, item{"a", 1})
	h.began(t, "a")
	leave()
	select {
	case err := <-a:
		t.Fatalf("the write returned %v before its commit was over", err)
	default:
	}
	h.finish <- nil
	h.outcome(t, a, nil)
}

// Close commits the writes already queued, returns once they are
// answered, and later writes fail.
func TestCloseCommitsWhatIsQueuedThenRefusesWrites(t *testing.T) {
	h := start(t, 1, nil)
	a := h.do(t.Context(), item{"a", 1})
	h.began(t, "a")
	b := h.do(t.Context(), item{"b", 1})
	h.waitQueued(1)
	closed := make(chan int)
	go func() {
		if !h.q.Close() {
			t.Error("the first Close says it was not the first")
		}
		closed <- h.committed
	}()
	for !h.q.Closing() {
		time.Sleep(time.Millisecond)
	}
	h.finish <- nil
	h.outcome(t, a, nil)
	h.began(t, "b")
	h.finish <- nil
	h.outcome(t, b, nil)
	if n := <-closed; n != 2 {
		t.Errorf("Close returned after %d commits, want 2: the queued write's too", n)
	}
	if err := h.q.Do(t.Context(), item{"late", 1}); store.ErrorCode(err) != store.EINTERNAL {
		t.Errorf("a write after Close: got %v, want %s", err, store.EINTERNAL)
	}
	if h.q.Close() {
		t.Error("a second Close says it was the first")
	}
	if h.committed != 2 {
		t.Errorf("%d commits, want 2: the write after Close is not committed", h.committed)
	}
}

// AfterBatch runs after each batch, once its writes are answered, and
// before the next batch is taken.
func TestAfterBatchRunsBetweenTwoBatches(t *testing.T) {
	ran, resume := make(chan struct{}), make(chan struct{})
	h := start(t, 10, func() {
		ran <- struct{}{}
		<-resume
	})
	a := h.do(t.Context(), item{"a", 1})
	h.began(t, "a")
	h.finish <- nil
	<-ran
	// The hook holds the queue, but a is answered.
	h.outcome(t, a, nil)
	b := h.do(t.Context(), item{"b", 1})
	h.waitQueued(1)
	resume <- struct{}{}
	h.began(t, "b")
	h.finish <- nil
	h.outcome(t, b, nil)
	<-ran
	resume <- struct{}{}
}

// item is a write as the tests' store sees it: a name, and its weight.
type item struct {
	name   string
	weight int
}

// harness is a Queue whose commit function tells the test each batch it
// begins (batches) and waits for the test to finish it with an outcome
// for its every write (finish); a write named "bad ..." fails alone, with
// its name as error. Once the test is over (stop), batches fail at once.
type harness struct {
	q       *groupcommit.Queue[item]
	batches chan []string
	finish  chan error
	stop    chan struct{}
	// committed counts the batches finished; only the commit function
	// writes it.
	committed int
}

func start(t *testing.T, maxWeight int, after func()) *harness {
	h := &harness{batches: make(chan []string), finish: make(chan error), stop: make(chan struct{})}
	h.q = groupcommit.Start(groupcommit.Config[item]{
		Commit: func(batch []groupcommit.Op[item]) []error {
			names := make([]string, len(batch))
			for i, op := range batch {
				names[i] = op.Item.name
			}
			err := errors.New("the test is over")
			select {
			case h.batches <- names:
				select {
				case err = <-h.finish:
					h.committed++
				case <-h.stop:
				}
			case <-h.stop:
			}
			errs := make([]error, len(batch))
			for i, name := range names {
				errs[i] = err
				if strings.HasPrefix(name, "bad ") {
					errs[i] = errors.New(name)
				}
			}
			return errs
		},
		Weight:     func(it item) int { return it.weight },
		MaxWeight:  maxWeight,
		AfterBatch: after,
	})
	t.Cleanup(func() {
		close(h.stop)
		h.q.Close()
	})
	return h
}

// do runs it through the queue in a goroutine of its own, and returns
// where its outcome will be.
func (h *harness) do(ctx context.Context, it item) <-chan error {
	out := make(chan error, 1)
	go func() { out <- h.q.Do(ctx, it) }()
	return out
}

// began waits for the next batch's commit to begin, and checks its writes.
func (h *harness) began(t *testing.T, want ...string) {
	t.Helper()
	if got := <-h.batches; !slices.Equal(got, want) {
		t.Fatalf("batch %v, want %v", got, want)
	}
}

// outcome waits for a write's outcome and checks it.
func (h *harness) outcome(t *testing.T, got <-chan error, want error) {
	t.Helper()
	if err := <-got; !errors.Is(err, want) {
		t.Errorf("outcome %v, want %v", err, want)
	}
}

// waitQueued waits until n writes wait in the queue.
func (h *harness) waitQueued(n int) {
	for h.q.Queued() != n {
		time.Sleep(time.Millisecond)
	}
}
