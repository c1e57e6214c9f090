package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/groupcommit"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// One batch, as the creates queue would gather it: writes that can all be
// stored share one transaction, the commit observer sees it once; a batch
// holding a write that fails (a taken id, a used idempotency key) has each
// write run alone, so that exactly that write fails and stores nothing.
func TestBatchesShareAStatementAndFailAlone(t *testing.T) {
	ctx := context.Background()
	s, ws := openWithWorkspace(t, Options{MaxConns: 4})
	var mu sync.Mutex
	var commits [][2]int // writes, rows of each observed statement
	s.SetCommitObserver(func(writes, rows int, _ time.Duration, _ error) {
		mu.Lock()
		defer mu.Unlock()
		commits = append(commits, [2]int{writes, rows})
	})
	now := time.Now().UTC().Truncate(time.Microsecond)
	item := func(trace string) *store.Feedback {
		return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: trace, Value: 1, Weight: 1,
			Metadata: map[string]any{"_user": "u-" + trace}, CreatedAt: now, UpdatedAt: now}
	}
	idem := func(key string) *store.Idempotency {
		return &store.Idempotency{Scope: ws.ID, Key: key, Fingerprint: []byte(key), Message: "m", At: now}
	}
	op := func(idem *store.Idempotency, fs ...*store.Feedback) groupcommit.Op[createOp] {
		return groupcommit.Op[createOp]{Ctx: ctx, Item: createOp{fs: fs, idem: idem}}
	}
	stored := func(f *store.Feedback) bool {
		_, err := s.GetFeedback(ctx, ws.ID, f.ID)
		if err != nil && store.ErrorCode(err) != store.ENOTFOUND {
			t.Fatal(err)
		}
		return err == nil
	}

	good := []groupcommit.Op[createOp]{op(nil, item("a")), op(idem("k-b"), item("b"), item("b2")), op(nil, item("c"))}
	for i, err := range s.createBatch(good) {
		if fs := good[i].Item.fs; err != nil || !stored(fs[0]) || !stored(fs[len(fs)-1]) {
			t.Errorf("write %d of a good batch: %v, stored %v", i, err, stored(fs[0]))
		}
	}
	if r, err := s.IdempotentResult(ctx, ws.ID, "k-b"); err != nil || fmt.Sprint(r.IDs) != fmt.Sprint(feedbackIDs(good[1].Item.fs)) {
		t.Errorf("key of a write in a shared statement: %+v, %v", r, err)
	}
	mu.Lock()
	if fmt.Sprint(commits) != "[[3 4]]" {
		t.Errorf("good batch: commits (writes, rows) %v, want one shared statement [[3 4]]", commits)
	}
	commits = nil
	mu.Unlock()

	dup := *good[0].Item.fs[0]
	dup.TraceID = "dup"
	ok := func(err error) bool { return err == nil }
	for _, batch := range []struct {
		name string
		ops  []groupcommit.Op[createOp]
		want []func(error) bool
	}{
		{"a taken id", []groupcommit.Op[createOp]{op(nil, item("d")), op(nil, item("e"), &dup), op(idem("k-h"), item("h"))},
			[]func(error) bool{ok, func(err error) bool { return store.ErrorCode(err) == store.ECONFLICT }, ok}},
		{"a used key", []groupcommit.Op[createOp]{op(nil, item("i")), op(idem("k-b"), item("j")), op(idem("k-k"), item("k"))},
			[]func(error) bool{ok, func(err error) bool { return errors.Is(err, store.ErrIdempotencyKeyUsed) }, ok}},
	} {
		for i, err := range s.createBatch(batch.ops) {
			first := batch.ops[i].Item.fs[0]
			if !batch.want[i](err) {
				t.Errorf("%s, write %d: got %v", batch.name, i, err)
			}
			if stored(first) != (err == nil) {
				t.Errorf("%s, write %d (%v): stored %v", batch.name, i, err, stored(first))
			}
		}
		mu.Lock()
		// The shared statement failed; then each write ran alone.
		if n := len(batch.ops); len(commits) != n+1 || commits[0] != [2]int{n, 0} {
			t.Errorf("%s: commits (writes, rows) %v, want the failed shared one, then each write alone", batch.name, commits)
		}
		commits = nil
		mu.Unlock()
	}
}

// openWithWorkspace opens a store with opts on a new database, closed
// after t, with the workspace "a".
func openWithWorkspace(t *testing.T, opts Options) (*Store, *store.Workspace) {
	t.Helper()
	s, err := Open(context.Background(), pgtest.NewDatabase(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ws, err := s.EnsureWorkspace(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	return s, ws
}

// Two stores on one database (two replicas) writing the first feedback of
// the same traces at once: each trace's first feedback with a value is
// flagged once, whichever replica wrote it, and the derived data is
// exactly what the rows give.
func TestReplicasWritingOneTraceCountItOnce(t *testing.T) {
	ctx := context.Background()
	url, stores := replicas(t)
	ws, err := stores[0].EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				at := time.Now().UTC().Truncate(time.Microsecond)
				f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: fmt.Sprint("t", i), Value: w, Weight: 1,
					Metadata: map[string]any{"_prompt": fmt.Sprint("p", (i+w)%2)}, CreatedAt: at, UpdatedAt: at}
				if err := stores[w%2].CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range stores {
		s.Close()
	}
	CheckDerived(t, url)
}

// A write of a trace waits for another replica's write of the same trace
// to commit, and then sees its rows: neither takes the trace's first
// feedback for its own without seeing the other's.
func TestWritesOfOneTraceTakeTurnsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, url, Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	ws, err := stores[0].EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	item := func() []*store.Feedback {
		at := time.Now().UTC().Truncate(time.Microsecond)
		return []*store.Feedback{{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: "t", Value: 1, Weight: 1,
			Metadata: map[string]any{"_prompt": "p"}, CreatedAt: at, UpdatedAt: at}}
	}
	found, release, done := make(chan int, 2), make(chan struct{}), make(chan error, 2)
	go func() {
		done <- stores[0].write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) error {
			return rollup.Create(ctx, hookedTx{w, func(n int) { found <- n; <-release }}, item(), d)
		}, nil, nil)
	}()
	if n := <-found; n != 0 {
		t.Fatalf("the first write found %d entries of the new trace", n)
	}
	go func() {
		done <- stores[1].write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) error {
			return rollup.Create(ctx, hookedTx{w, func(n int) { found <- n }}, item(), d)
		}, nil, nil)
	}()
	// The second write waits on the trace's advisory lock, and has read
	// nothing of the trace, until the first commits.
	waitFor(t, url, `SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' AND datname = current_database()`, 1)
	select {
	case n := <-found:
		t.Errorf("the second write read the trace (%d entries) while the first one held it", n)
	default:
	}
	close(release)
	if n := <-found; n != 1 {
		t.Errorf("the second write found %d entries of the trace, want the first's", n)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	CheckDerived(t, url)
}

// hookedTx is a writeTx that tells seen how many entries its lookups found.
type hookedTx struct {
	*writeTx
	seen func(n int)
}

func (h hookedTx) Earliest(ctx context.Context, probes []rollup.Probe) ([][]rollup.TraceEntry, error) {
	found, err := h.writeTx.Earliest(ctx, probes)
	n := 0
	for _, f := range found {
		n += len(f)
	}
	h.seen(n)
	return found, err
}

// waitFor polls query on a connection of its own until it answers want.
func waitFor(t *testing.T, url, query string, want int) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for range 1000 {
		var got int
		if err := conn.QueryRow(context.Background(), query).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d", query, want)
}

// Erases on one replica while another writes the same traces (new rows
// of the erased user among them) leave every derived row and flag exact:
// an erase locks the traces of what it matched and reads them again.
func TestEraseAndWritesAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url, stores := replicas(t)
	ws, err := stores[0].EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	item := func(i int) *store.Feedback {
		at := base.Add(time.Duration(i%500) * time.Second)
		return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: fmt.Sprint("t", i%40), Value: 1, Weight: 1,
			Metadata: map[string]any{"_user": fmt.Sprint("u", i%3), "_prompt": fmt.Sprint("p", i%2)}, CreatedAt: at, UpdatedAt: at}
	}
	var seed []*store.Feedback
	for i := range 600 {
		seed = append(seed, item(i))
	}
	if err := stores[0].CreateFeedback(ctx, seed, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := stores[0].EraseFeedback(ctx, ws.ID, store.Filter{Metadata: map[string]any{"_user": "u1"}}, store.Erase{Max: 1000}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 60 {
			if err := stores[1].CreateFeedback(ctx, []*store.Feedback{item(1000 + i), item(2000 + 7*i)}, nil); err != nil {
				t.Error(err)
				return
			}
			if err := stores[1].DeleteFeedback(ctx, ws.ID, seed[3*i].ID); err != nil && store.ErrorCode(err) != store.ENOTFOUND {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	CheckDerived(t, url)
}

// Erases on one replica while another replaces feedback by id (moving it
// between traces, in and out of the erased user) leave every derived row
// and flag exact.
func TestEraseAndPutsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url, stores := replicas(t)
	ws, err := stores[0].EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	item := func(id string, i int) *store.Feedback {
		at := base.Add(time.Duration(i%300) * time.Second)
		return &store.Feedback{ID: id, WorkspaceID: ws.ID, TraceID: fmt.Sprint("t", i%30), Value: 1, Weight: 1,
			Metadata: map[string]any{"_user": fmt.Sprint("u", i%3), "_prompt": fmt.Sprint("p", i%2)}, CreatedAt: at, UpdatedAt: at}
	}
	ids := make([]string, 300)
	var seed []*store.Feedback
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		seed = append(seed, item(ids[i], i))
	}
	if err := stores[0].CreateFeedback(ctx, seed, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := stores[0].EraseFeedback(ctx, ws.ID, store.Filter{Metadata: map[string]any{"_user": "u1"}}, store.Erase{Max: 1000}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 100 {
			// Another trace and user for a stored (or erased) id.
			if _, err := stores[1].PutFeedback(ctx, []*store.Feedback{item(ids[(7*i)%300], i+1)}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	CheckDerived(t, url)
}

// A replica that still has the model keys another replica replaced
// redoes its writes with the new ones: its rows count in the model
// rollups under the keys the database has, whether a write began before
// the rebuild or after it.
func TestWritesFollowModelKeysAnotherReplicaSet(t *testing.T) {
	ctx := context.Background()
	url, stores := replicas(t)
	ws, err := stores[0].EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Every other write has an idempotency key, which a write run again
	// records once.
	write := func(s *Store, n int) {
		at := time.Now().UTC().Truncate(time.Microsecond)
		f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: fmt.Sprint("t", n), Value: 1, Weight: 1,
			Metadata: map[string]any{"ai_model": "a", "model": "b"}, CreatedAt: at, UpdatedAt: at}
		var idem *store.Idempotency
		if n%2 == 0 {
			idem = &store.Idempotency{Scope: ws.ID, Key: fmt.Sprint("k", n), Fingerprint: []byte{1}, Message: "recorded", At: at}
		}
		if err := s.CreateFeedback(ctx, []*store.Feedback{f}, idem); err != nil {
			t.Error(err)
		}
	}
	write(stores[1], 0)
	// Writes of the second replica go on while the first changes the keys.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			write(stores[1], i+1)
		}
	})
	if _, err := stores[0].SetModelKeys(ctx, []string{"model"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	write(stores[1], 1000)
	models, err := stores[1].FeedbackModels(ctx, ws.ID, store.AnalyticsQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), BucketSize: 3600})
	if err != nil || len(models) != 1 || models[0].Model != "b" || models[0].Count != 202 {
		t.Errorf("models: %+v, %v; want all 202 feedback under b", models, err)
	}
	for _, s := range stores {
		s.Close()
	}
	CheckDerived(t, url)
}

// replicas opens two stores on one new database, as two replicas of
// feedbackd would; they are closed when the test ends, if not before.
func replicas(t *testing.T) (url string, stores [2]*Store) {
	t.Helper()
	url = pgtest.NewDatabase(t)
	for i := range stores {
		s, err := Open(context.Background(), url, Options{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return url, stores
}
