package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Two replicas, with two dispatchers each, claim and walk the webhooks of
// one database at once, while both write: no webhook is ever held by two
// dispatchers, and every webhook gets every event exactly once, each
// feedback's events in the order they were made.
func TestReplicasDeliverEachEventOnce(t *testing.T) {
	ctx := context.Background()
	_, stores := replicas(t)
	ws, err := stores[0].EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var hooks []*store.Webhook
	for range 8 {
		hooks = append(hooks, createWebhook(t, stores[0], ws.ID))
	}

	const perWriter = 40
	var writers sync.WaitGroup
	for r := range stores {
		writers.Go(func() {
			for i := range perWriter {
				f := feedback(ws.ID, fmt.Sprint("t", r, "-", i))
				if err := stores[r].CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
					t.Error(err)
					return
				}
				at := time.Now().UTC().Truncate(time.Microsecond)
				if _, err := stores[r].UpdateFeedback(ctx, ws.ID, f.ID, store.Update{Value: -1, UpdatedAt: at}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wrote := make(chan struct{})
	go func() { writers.Wait(); close(wrote) }()

	var (
		mu        sync.Mutex
		holder    = map[string]int{}            // webhook id: the replica holding it
		delivered = map[string][]*store.Event{} // webhook id: what it got, in order
	)
	hold := func(r int, w *store.Webhook) {
		mu.Lock()
		defer mu.Unlock()
		if other, held := holder[w.ID]; held {
			t.Errorf("replica %d claimed webhook %s, which replica %d holds", r, w.ID, other)
		}
		holder[w.ID] = r
	}
	release := func(w *store.Webhook) {
		mu.Lock()
		defer mu.Unlock()
		delete(holder, w.ID)
	}
	deliver := func(w *store.Webhook, e *store.Event) {
		mu.Lock()
		defer mu.Unlock()
		delivered[w.ID] = append(delivered[w.ID], e)
	}
	var dispatchers sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	// Two dispatchers a replica, as a dispatcher's concurrent walks.
	for d := range 2 * len(stores) {
		r, s := d%len(stores), stores[d%len(stores)]
		dispatchers.Go(func() {
			for time.Now().Before(deadline) {
				now := time.Now()
				claimed, err := s.ClaimWebhooks(ctx, now, now.Add(time.Minute), 1)
				if err != nil {
					t.Error(err)
					return
				}
				for _, w := range claimed {
					hold(r, w)
					if err := walk(ctx, s, w, func(e *store.Event) { deliver(w, e) }, func() { release(w) }); err != nil {
						t.Error(err)
						return
					}
				}
				if len(claimed) > 0 {
					continue
				}
				select {
				case <-wrote:
					if n, _, err := s.WebhookBacklog(ctx); err != nil || n == 0 {
						if err != nil {
							t.Error(err)
						}
						return
					}
				default:
				}
				time.Sleep(time.Millisecond) // nothing to claim yet: poll again
			}
			t.Error("the webhooks still have events to walk after a minute")
		})
	}
	dispatchers.Wait()

	const events = 2 * 2 * perWriter // each feedback is created, then updated
	for _, w := range hooks {
		got := delivered[w.ID]
		if len(got) != events {
			t.Errorf("webhook %s got %d events, want %d", w.ID, len(got), events)
		}
		seen, kinds := map[string]bool{}, map[string][]store.EventKind{}
		for _, e := range got {
			if seen[e.ID] {
				t.Errorf("webhook %s got event %s twice", w.ID, e.ID)
			}
			seen[e.ID] = true
			kinds[e.Feedback.ID] = append(kinds[e.Feedback.ID], e.Kind)
		}
		for id, k := range kinds {
			if want := []store.EventKind{store.Created, store.Updated}; !slices.Equal(k, want) {
				t.Errorf("webhook %s got the events of feedback %s in the order %v, want %v", w.ID, id, k, want)
			}
		}
	}
}

// A write still running when a later write's event is read holds the
// walk back: a webhook neither passes its event (which took a smaller
// seq, and will commit after the other's) nor gets the later one before
// it; once it commits, both come, the earlier first.
func TestWalkWaitsForAWriteStillRunning(t *testing.T) {
	ctx := context.Background()
	s, ws := openWithWorkspace(t, Options{MaxConns: 4})
	w := createWebhook(t, s, ws.ID)

	// The two writes share no lock: other traces (of other lock buckets),
	// and other rollup rows.
	first, second := feedback(ws.ID, "t0"), feedback(ws.ID, "")
	lock := func(trace string) int32 {
		return traceLocks([]rollup.TraceRef{{WorkspaceID: ws.ID, TraceID: trace}})[0]
	}
	for i := 1; second.TraceID == "" || lock(second.TraceID) == lock(first.TraceID); i++ {
		second.TraceID = fmt.Sprint("t", i)
	}
	second.Value = 2
	recorded, commit, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	// A failing test lets the write end before the store closes.
	release := sync.OnceFunc(func() { close(commit) })
	t.Cleanup(release)
	go func() {
		// The write's last round trip has recorded its event; it commits
		// once told to.
		done <- s.write(ctx, 1, 1, func(w *writeTx, d *rollup.Deltas) error {
			return rollup.Create(ctx, w, []*store.Feedback{first}, d)
		}, func(*pgx.Batch) {}, func(pgx.BatchResults) error {
			close(recorded)
			<-commit
			return nil
		})
	}()
	<-recorded
	if err := s.CreateFeedback(ctx, []*store.Feedback{second}, nil); err != nil {
		t.Fatal(err)
	}

	var got []*store.Event
	claimAndWalk := func() {
		t.Helper()
		now := time.Now()
		claimed, err := s.ClaimWebhooks(ctx, now, now.Add(time.Minute), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range claimed {
			if err := walk(ctx, s, c, func(e *store.Event) { got = append(got, e) }, func() {}); err != nil {
				t.Fatal(err)
			}
		}
	}
	claimAndWalk()
	if next, err := s.NextEvents(ctx, w, 10); err != nil || len(got)+len(next) != 0 {
		t.Fatalf("while the first write runs: walked %s, next %s (%v); want nothing", feedbackIDsOf(got), feedbackIDsOf(next), err)
	}

	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Other databases' transactions on the same server hold the walk back
	// too, for as long as they run.
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		claimAndWalk()
		if len(got) < 2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got, want := feedbackIDsOf(got), []string{first.ID, second.ID}; !slices.Equal(got, want) {
		t.Errorf("walked %v, want the first write's event, then the second's: %v", got, want)
	}
}

// A write that rolls back after recording its events (its idempotency key
// turned out taken, which is checked last) leaves none of them.
func TestARolledBackWriteRecordsNoEvent(t *testing.T) {
	ctx := context.Background()
	s, ws := openWithWorkspace(t, Options{MaxConns: 4})
	w := createWebhook(t, s, ws.ID)
	idem := func() *store.Idempotency {
		return &store.Idempotency{Scope: ws.ID, Key: "k", Fingerprint: []byte{1}, Message: "m", At: time.Now()}
	}
	kept := feedback(ws.ID, "t")
	if err := s.CreateFeedback(ctx, []*store.Feedback{kept}, idem()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws.ID, "t"), feedback(ws.ID, "u")}, idem()); !errors.Is(err, store.ErrIdempotencyKeyUsed) {
		t.Fatalf("a write under a used key: got %v, want %v", err, store.ErrIdempotencyKeyUsed)
	}
	var got []*store.Event
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if got, err = s.NextEvents(ctx, w, 10); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := feedbackIDsOf(got), []string{kept.ID}; !slices.Equal(got, want) {
		t.Errorf("events %v, want the committed write's alone: %v", got, want)
	}
	if n, _, err := s.WebhookBacklog(ctx); err != nil || n != 1 {
		t.Errorf("backlog %d (%v), want 1", n, err)
	}
}

// walk walks w's events as a dispatcher does, while it holds w's lease:
// it delivers each event, then records the delivery, keeping the lease
// for the next one; done is called before the last record, which ends the
// lease.
func walk(ctx context.Context, s *Store, w *store.Webhook, deliver func(*store.Event), done func()) error {
	for {
		events, err := s.NextEvents(ctx, w, 5)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			done()
			_, err := s.FinishEvents(ctx, w, nil, nil, time.Time{})
			return err
		}
		for _, e := range events {
			deliver(e)
			a := &store.Attempt{WebhookID: w.ID, EventID: e.ID, Kind: e.Kind, EventSeq: e.Seq, N: 1, At: time.Now(), Outcome: store.Delivered, Status: 204}
			held, err := s.FinishEvents(ctx, w, nil, a, time.Now().Add(time.Minute))
			if err != nil {
				return err
			}
			if !held {
				return fmt.Errorf("webhook %s: lost its lease", w.ID)
			}
		}
	}
}

// createWebhook stores an active webhook of the workspace, for every kind
// of event.
func createWebhook(t *testing.T, s *Store, workspaceID string) *store.Webhook {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := &store.Webhook{ID: uuid.NewString(), WorkspaceID: workspaceID, URL: "https://receiver.example/hook",
		Kinds: []store.EventKind{store.Created, store.Updated, store.Deleted}, Secret: []byte("sealed"),
		State: store.WebhookActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

func feedback(workspaceID, trace string) *store.Feedback {
	at := time.Now().UTC().Truncate(time.Microsecond)
	return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: workspaceID, TraceID: trace, Value: 1, Weight: 1,
		Metadata: map[string]any{}, CreatedAt: at, UpdatedAt: at}
}

func feedbackIDsOf(events []*store.Event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.Feedback.ID
	}
	return ids
}

// What a webhook has walked past, or what was there before it, is never
// read again: in a workspace of 20,000 events that one webhook walked
// past and a second one was made after, a claim that finds nothing to
// walk, either webhook's walk and the backlog read no event at all. The
// statements are the ones the store sends, recorded with their arguments,
// and run again under EXPLAIN ANALYZE, rolled back.
func TestWalksSeekPastTheirPosition(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	full, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	ws, err := full.EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	walked := createWebhook(t, full, ws.ID)
	const events = 20000
	for range events / 1000 {
		var fs []*store.Feedback
		for i := range 1000 {
			fs = append(fs, feedback(ws.ID, fmt.Sprint("t", i)))
		}
		if err := full.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
	}
	passed := 0
	for deadline := time.Now().Add(30 * time.Second); passed < events && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		claimed, err := full.ClaimWebhooks(ctx, time.Now(), time.Now().Add(time.Minute), 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range claimed {
			next, err := full.NextEvents(ctx, c, events)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := full.FinishEvents(ctx, c, next, nil, time.Time{}); err != nil {
				t.Fatal(err)
			}
			passed += len(next)
		}
	}
	if passed != events {
		t.Fatalf("walked past %d events, want %d", passed, events)
	}
	after := createWebhook(t, full, ws.ID)
	if _, err := full.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	// A store whose every statement is recorded.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := &Store{pool: pool}
	if claimed, err := s.ClaimWebhooks(ctx, time.Now(), time.Now().Add(time.Minute), 10); err != nil || len(claimed) != 0 {
		t.Fatalf("claimed %d webhooks (%v), want none: none has an event to walk", len(claimed), err)
	}
	for _, w := range []*store.Webhook{walked, after} {
		if next, err := s.NextEvents(ctx, w, 10); err != nil || len(next) != 0 {
			t.Fatalf("%d events to walk (%v), want none", len(next), err)
		}
	}
	if n, _, err := s.WebhookBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog %d (%v), want 0", n, err)
	}

	explained := 0
	for _, q := range rec.queries {
		if !strings.Contains(q.sql, "webhook_events") {
			continue
		}
		explained++
		var plan []map[string]any
		err := pgx.BeginFunc(ctx, full.pool, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q.sql, q.args...).Scan(&plan)
		})
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q.sql, err)
		}
		if read := eventsRead(plan[0]["Plan"].(map[string]any)); read > 0 {
			text, _ := json.MarshalIndent(plan, "", "  ")
			t.Errorf("%s\nreads %d events:\n%s", q.sql, read, text)
		}
	}
	if explained != 4 {
		t.Errorf("%d statements read events, want 4: the claim, two walks and the backlog", explained)
	}
}

// eventsRead counts the rows of webhook_events a plan node and those
// under it read: those they returned and those their filters removed.
func eventsRead(node map[string]any) int {
	n := 0
	if node["Relation Name"] == "webhook_events" {
		num := func(k string) int { v, _ := node[k].(float64); return int(v) }
		n += (num("Actual Rows") + num("Rows Removed by Filter") + num("Rows Removed by Index Recheck")) * max(num("Actual Loops"), 1)
	}
	plans, _ := node["Plans"].([]any)
	for _, p := range plans {
		n += eventsRead(p.(map[string]any))
	}
	return n
}
