package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// RunWebhooks runs the outbox part of the contract: what store.Webhooks
// says of webhooks, the events every write records, and walking them.
func RunWebhooks(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"WebhooksAreKeptPerWorkspace", testWebhookCRUD},
		{"EveryWriteRecordsItsEvents", testEventsOfEveryWrite},
		{"AFailedWriteRecordsNoEvent", testFailedWritesRecordNothing},
		{"ConcurrentWritesRecordEachEventOnceInOrder", testConcurrentEvents},
		{"EventsWaitForAPausedWebhookAndNotForADisabledOne", testPausedAndDisabled},
		{"AWebhookGetsTheEventsOfWritesAfterIt", testWebhookStartsNow},
		{"ImportWithoutWebhooksRecordsNothing", testRecordEventsOff},
		{"ClaimsLeaseAndFinishMovesOn", testClaimAndFinish},
		{"RedeliverQueuesTheEventAgainForOneWebhook", testRedeliver},
		{"TrimForgetsWhatEveryWebhookPassed", testTrimWebhooks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

var allKinds = []store.EventKind{store.Created, store.Updated, store.Deleted}

// newWebhook stores an active webhook of ws for kinds (all when none).
func newWebhook(t *testing.T, s store.Store, ws string, kinds ...store.EventKind) *store.Webhook {
	t.Helper()
	if len(kinds) == 0 {
		kinds = allKinds
	}
	w := &store.Webhook{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, URL: "https://receiver.test/hook",
		Kinds: kinds, Description: "d", Secret: []byte("sealed"), State: store.WebhookActive,
		CreatedAt: clock, UpdatedAt: clock}
	if err := s.CreateWebhook(context.Background(), w); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	return w
}

// walk plays the dispatcher for w: it claims w, takes every event w has
// yet to walk past, passes them all (as skipped), and returns them.
func walk(t *testing.T, s store.Store, w *store.Webhook) []*store.Event {
	t.Helper()
	ctx := context.Background()
	var out []*store.Event
	for {
		claimed := claim(t, s, w, time.Now())
		if claimed == nil {
			return out
		}
		events, err := s.NextEvents(ctx, claimed, 7)
		if err != nil {
			t.Fatalf("NextEvents: %v", err)
		}
		if held, err := s.FinishEvents(ctx, claimed, events, nil, time.Time{}); err != nil || !held {
			t.Fatalf("FinishEvents = %v, %v; want the lease held", held, err)
		}
		if len(events) == 0 {
			t.Fatalf("ClaimWebhooks handed out %s with no event to walk", w.ID)
		}
		out = append(out, events...)
	}
}

// claim claims webhooks at now and returns w among them, or nil; it
// releases the others.
func claim(t *testing.T, s store.Store, w *store.Webhook, now time.Time) *store.Webhook {
	t.Helper()
	ctx := context.Background()
	claimed, err := s.ClaimWebhooks(ctx, now, now.Add(time.Minute), 100)
	if err != nil {
		t.Fatalf("ClaimWebhooks: %v", err)
	}
	var found *store.Webhook
	for _, c := range claimed {
		if c.Lease == "" {
			t.Errorf("ClaimWebhooks handed out %s without a lease", c.ID)
		}
		if c.ID == w.ID {
			found = c
			continue
		}
		if _, err := s.FinishEvents(ctx, c, nil, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	return found
}

type eventSummary struct {
	kind store.EventKind
	id   string
}

func summarize(events []*store.Event) []eventSummary {
	out := make([]eventSummary, len(events))
	for i, e := range events {
		out[i] = eventSummary{e.Kind, e.Feedback.ID}
	}
	return out
}

func testWebhookCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	until := clock.Add(time.Hour)
	w := &store.Webhook{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: a, URL: "https://receiver.test/a",
		Kinds: []store.EventKind{store.Created, store.Deleted}, Description: "tickets",
		Filter: store.Filter{TraceIDs: []string{"t1"}, Metadata: map[string]any{"_user": "u", "n": 1.5, "ok": true},
			ValueMin: ptr(-10), ValueMax: ptr(-5)},
		Secret: []byte("sealed-1"), PreviousSecret: []byte("sealed-0"), PreviousUntil: &until,
		State: store.WebhookActive, CreatedAt: clock, UpdatedAt: clock}
	if err := s.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	other := newWebhook(t, s, b)
	got, err := s.Webhook(ctx, a, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertWebhook(t, got, w)

	for _, c := range []struct {
		name string
		err  error
	}{
		{"Webhook", func() error { _, err := s.Webhook(ctx, b, w.ID); return err }()},
		{"UpdateWebhook", func() error {
			_, err := s.UpdateWebhook(ctx, b, w.ID, func(*store.Webhook) error { return nil })
			return err
		}()},
		{"DeleteWebhook", s.DeleteWebhook(ctx, b, w.ID)},
		{"Attempts", func() error { _, err := s.Attempts(ctx, b, w.ID, 10, 0, false); return err }()},
		{"Redeliver", s.Redeliver(ctx, b, w.ID, uuid.NewString())},
	} {
		if store.ErrorCode(c.err) != store.ENOTFOUND {
			t.Errorf("%s of another workspace's webhook: %v, want ENOTFOUND", c.name, c.err)
		}
	}

	list, err := s.ListWebhooks(ctx, a)
	if err != nil || len(list) != 1 || list[0].ID != w.ID {
		t.Errorf("ListWebhooks(a) = %v, %v; want only %s", list, err, w.ID)
	}
	all, err := s.ListWebhooks(ctx, "")
	if err != nil || len(all) != 2 || all[0].ID != w.ID || all[1].ID != other.ID {
		t.Errorf("ListWebhooks(\"\") = %v, %v; want both, oldest first", all, err)
	}

	later := clock.Add(time.Minute)
	updated, err := s.UpdateWebhook(ctx, a, w.ID, func(x *store.Webhook) error {
		x.URL, x.Kinds, x.Filter, x.Description = "https://receiver.test/b", allKinds, store.Filter{}, ""
		x.State, x.StateReason, x.PreviousSecret, x.PreviousUntil, x.UpdatedAt = store.WebhookPaused, "", nil, nil, later
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := *w
	want.URL, want.Kinds, want.Filter, want.Description = "https://receiver.test/b", allKinds, store.Filter{}, ""
	want.State, want.PreviousSecret, want.PreviousUntil, want.UpdatedAt = store.WebhookPaused, nil, nil, later
	assertWebhook(t, updated, &want)
	got, _ = s.Webhook(ctx, a, w.ID)
	assertWebhook(t, got, &want)

	refused := store.Errorf(store.EINVALID, "no")
	if _, err := s.UpdateWebhook(ctx, a, w.ID, func(x *store.Webhook) error { x.URL = "changed"; return refused }); err == nil {
		t.Error("UpdateWebhook stored a change whose function failed")
	}
	if got, _ := s.Webhook(ctx, a, w.ID); got.URL != want.URL {
		t.Errorf("after a failed change the URL is %q, want %q", got.URL, want.URL)
	}

	if err := s.DeleteWebhook(ctx, a, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Webhook(ctx, a, w.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Webhook after DeleteWebhook: %v, want ENOTFOUND", err)
	}
	if err := s.DeleteWebhook(ctx, a, w.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("DeleteWebhook twice: %v, want ENOTFOUND", err)
	}
}

func ptr(v int) *int { return &v }

func assertWebhook(t *testing.T, got, want *store.Webhook) {
	t.Helper()
	same := got.ID == want.ID && got.WorkspaceID == want.WorkspaceID && got.URL == want.URL &&
		slices.Equal(got.Kinds, want.Kinds) && got.Description == want.Description &&
		string(got.Secret) == string(want.Secret) && string(got.PreviousSecret) == string(want.PreviousSecret) &&
		(got.PreviousUntil == nil) == (want.PreviousUntil == nil) &&
		(got.PreviousUntil == nil || got.PreviousUntil.Equal(*want.PreviousUntil)) &&
		got.State == want.State && got.StateReason == want.StateReason &&
		got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt) &&
		slices.Equal(got.Filter.TraceIDs, want.Filter.TraceIDs) && optEqual(got.Filter.ValueMin, want.Filter.ValueMin) &&
		optEqual(got.Filter.ValueMax, want.Filter.ValueMax)
	if !same {
		t.Errorf("webhook:\n got %+v\nwant %+v", got, want)
	}
	if len(got.Filter.Metadata) > 0 || len(want.Filter.Metadata) > 0 {
		if g, w := normalize(t, got.Filter.Metadata), normalize(t, want.Filter.Metadata); g != w {
			t.Errorf("filter metadata: got %s, want %s", g, w)
		}
	}
	// The filter must also mean the same.
	f := &store.Feedback{TraceID: "t1", Value: -7, Metadata: map[string]any{"_user": "u", "n": 1.5, "ok": true}}
	if got.Filter.Matches(f) != want.Filter.Matches(f) {
		t.Errorf("the stored filter matches %+v: %v, want %v", f, got.Filter.Matches(f), want.Filter.Matches(f))
	}
}

func optEqual(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// testEventsOfEveryWrite: each write of feedback records one event per
// feedback it creates, replaces or deletes, in order, with the feedback
// as the write left it (as it was, for a deletion); a workspace's events
// are its own.
func testEventsOfEveryWrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	w, wb := newWebhook(t, s, a), newWebhook(t, s, b)

	one := feedback(a, 0, "t1", 1, map[string]any{"_user": "u1"})
	bulk := []*store.Feedback{feedback(a, 1, "t2", 2, nil), feedback(a, 2, "t1", 3, map[string]any{"_user": "u2"})}
	if err := s.CreateFeedback(ctx, []*store.Feedback{one}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, bulk, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(b, 0, "t1", 1, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	chosen := feedback(a, 3, "t3", 4, nil)
	put(t, s, 0, chosen)
	replaced := replacement(chosen, 4, "t4", 5, map[string]any{"k": "v"})
	put(t, s, 1, replaced)
	weight := 0.25
	updated, err := s.UpdateFeedback(ctx, a, one.ID, store.Update{Value: -1, Weight: &weight, UpdatedAt: clock.Add(5 * time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vote := feedback(a, 6, "t5", 10, nil)
	firstVote, err := s.UpsertTokenFeedback(ctx, "tok", vote, nil)
	if err != nil {
		t.Fatal(err)
	}
	revote := feedback(a, 7, "t5", -10, map[string]any{"again": true})
	secondVote, err := s.UpsertTokenFeedback(ctx, "tok", revote, nil)
	if err != nil {
		t.Fatal(err)
	}
	beforeDelete := get(t, s, a, bulk[0].ID)
	if err := s.DeleteFeedback(ctx, a, bulk[0].ID); err != nil {
		t.Fatal(err)
	}
	var erasedRows []*store.Feedback // in the listing's order, as an erase removes them
	for _, id := range listAll(t, s, a, store.Filter{TraceIDs: []string{"t1"}, Limit: 1000}) {
		erasedRows = append(erasedRows, get(t, s, a, id))
	}
	start := time.Now()
	if n, err := s.EraseFeedback(ctx, a, store.Filter{TraceIDs: []string{"t1"}}, store.Erase{Max: 100}, nil); err != nil || n != 2 {
		t.Fatalf("EraseFeedback = %d, %v; want 2", n, err)
	}

	events := walk(t, s, w)
	type expect struct {
		kind store.EventKind
		f    *store.Feedback
	}
	want := []expect{
		{store.Created, one}, {store.Created, bulk[0]}, {store.Created, bulk[1]},
		{store.Created, chosen}, {store.Updated, stored(replaced, chosen.CreatedAt)},
		{store.Updated, updated}, {store.Created, firstVote}, {store.Updated, secondVote},
		{store.Deleted, beforeDelete},
	}
	for _, r := range erasedRows {
		want = append(want, expect{store.Deleted, r})
	}
	if len(events) != len(want) {
		t.Fatalf("walked %d events %v, want %d", len(events), summarize(events), len(want))
	}
	ids := map[string]bool{}
	for i, e := range events {
		if e.Kind != want[i].kind {
			t.Errorf("event %d is of kind %d, want %d", i, e.Kind, want[i].kind)
		}
		assertSame(t, e.Feedback, want[i].f)
		if _, err := uuid.Parse(e.ID); err != nil || ids[e.ID] {
			t.Errorf("event %d's id %q is not a new UUID", i, e.ID)
		}
		ids[e.ID] = true
		if i > 0 && e.Seq <= events[i-1].Seq {
			t.Errorf("event %d's seq %d does not follow %d", i, e.Seq, events[i-1].Seq)
		}
		switch {
		case e.Kind != store.Deleted && !e.At.Equal(e.Feedback.UpdatedAt):
			t.Errorf("event %d at %v, want its feedback's updated_at %v", i, e.At, e.Feedback.UpdatedAt)
		case e.Kind == store.Deleted && (e.At.Before(start.Add(-time.Minute)) || e.At.After(time.Now().Add(time.Minute))):
			t.Errorf("deletion %d at %v, want about now (%v)", i, e.At, start)
		}
	}
	if got := walk(t, s, wb); len(got) != 1 || got[0].Feedback.WorkspaceID != b {
		t.Errorf("workspace b's webhook walked %v, want its one feedback", summarize(got))
	}
}

// testFailedWritesRecordNothing: a write that fails records no event,
// also when it shared its commit with writes that succeeded, whose
// events are all there.
func testFailedWritesRecordNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w := newWebhook(t, s, ws)
	taken := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{taken}, nil); err != nil {
		t.Fatal(err)
	}
	want := []eventSummary{{store.Created, taken.ID}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs := []*store.Feedback{feedback(ws, i+1, fmt.Sprint("t", i), 1, nil)}
			if i%4 == 0 {
				dup := *taken
				fs = append(fs, &dup)
			}
			err := s.CreateFeedback(ctx, fs, nil)
			if (err != nil) != (i%4 == 0) {
				t.Errorf("write %d: %v", i, err)
			}
			if err == nil {
				mu.Lock()
				want = append(want, eventSummary{store.Created, fs[0].ID})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if _, err := s.UpdateFeedback(ctx, ws, uuid.NewString(), store.Update{Value: 1, UpdatedAt: clock}, nil); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("UpdateFeedback of no feedback: %v", err)
	}
	if _, err := s.EraseFeedback(ctx, ws, store.Filter{TraceIDs: []string{"t"}}, store.Erase{Max: 0}, nil); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("a refused erase: %v, want ECONFLICT", err)
	}
	got := summarize(walk(t, s, w))
	sortSummaries(got)
	sortSummaries(want)
	if !slices.Equal(got, want) {
		t.Errorf("walked %d events, want the %d of the writes that succeeded:\n got %v\nwant %v", len(got), len(want), got, want)
	}
}

func sortSummaries(s []eventSummary) {
	slices.SortFunc(s, func(a, b eventSummary) int {
		if a.id != b.id {
			if a.id < b.id {
				return -1
			}
			return 1
		}
		return int(a.kind) - int(b.kind)
	})
}

// testConcurrentEvents: writers create, update and delete feedback at
// once; every acknowledged write's event is walked exactly once, and the
// events of one feedback come in the order of its writes.
func testConcurrentEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w := newWebhook(t, s, ws)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		deleted = map[string]bool{}
		done    = make(chan struct{})
	)
	const writers, each = 8, 12
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				f := feedback(ws, g*100+i, fmt.Sprint("t", i%3), 1, map[string]any{"_user": fmt.Sprint("u", g)})
				if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.UpdateFeedback(ctx, ws, f.ID, store.Update{Value: 2, UpdatedAt: f.CreatedAt.Add(time.Second)}, nil); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := s.DeleteFeedback(ctx, ws, f.ID); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					deleted[f.ID] = true
					mu.Unlock()
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	// The webhook is walked meanwhile, as a dispatcher does, and once more
	// after the last write.
	var walked []*store.Event
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		walked = append(walked, walk(t, s, w)...)
	}
	perFeedback := map[string][]store.EventKind{}
	for _, e := range walked {
		perFeedback[e.Feedback.ID] = append(perFeedback[e.Feedback.ID], e.Kind)
	}
	if len(perFeedback) != writers*each {
		t.Errorf("events of %d feedback, want %d", len(perFeedback), writers*each)
	}
	for id, kinds := range perFeedback {
		want := []store.EventKind{store.Created, store.Updated}
		if deleted[id] {
			want = append(want, store.Deleted)
		}
		if !slices.Equal(kinds, want) {
			t.Errorf("feedback %s: events %v, want %v", id, kinds, want)
		}
	}
}

// testPausedAndDisabled: a paused webhook's events are recorded and wait
// for it; a disabled webhook gets none, and once active again gets those
// of later writes.
func testPausedAndDisabled(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w := newWebhook(t, s, ws)
	// Another webhook keeps events recorded while w is disabled.
	newWebhook(t, s, ws)
	setState := func(state store.WebhookState) {
		t.Helper()
		if _, err := s.UpdateWebhook(ctx, ws, w.ID, func(x *store.Webhook) error { x.State = state; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	write := func(n int) *store.Feedback {
		t.Helper()
		f := feedback(ws, n, "t", 1, nil)
		if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
			t.Fatal(err)
		}
		return f
	}
	setState(store.WebhookPaused)
	held := write(0)
	if claim(t, s, w, time.Now()) != nil {
		t.Error("a paused webhook was claimed")
	}
	setState(store.WebhookActive)
	if got := summarize(walk(t, s, w)); !slices.Equal(got, []eventSummary{{store.Created, held.ID}}) {
		t.Errorf("resumed webhook walked %v, want the event of the write made while paused", got)
	}
	setState(store.WebhookDisabled)
	write(1)
	if claim(t, s, w, time.Now()) != nil {
		t.Error("a disabled webhook was claimed")
	}
	setState(store.WebhookActive)
	after := write(2)
	if got := summarize(walk(t, s, w)); !slices.Equal(got, []eventSummary{{store.Created, after.ID}}) {
		t.Errorf("re-enabled webhook walked %v, want only the write after it was active again", got)
	}
}

// testWebhookStartsNow: a new webhook gets the events of writes after
// it, not those another webhook of its workspace was recorded for.
func testWebhookStartsNow(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	first := newWebhook(t, s, ws)
	before := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{before}, nil); err != nil {
		t.Fatal(err)
	}
	second := newWebhook(t, s, ws, store.Deleted)
	if err := s.DeleteFeedback(ctx, ws, before.ID); err != nil {
		t.Fatal(err)
	}
	if got := summarize(walk(t, s, first)); !slices.Equal(got, []eventSummary{{store.Created, before.ID}, {store.Deleted, before.ID}}) {
		t.Errorf("first webhook walked %v", got)
	}
	if got := summarize(walk(t, s, second)); !slices.Equal(got, []eventSummary{{store.Deleted, before.ID}}) {
		t.Errorf("second webhook walked %v, want only the deletion after it", got)
	}
}

// testRecordEventsOff: a store told not to record events (an import with
// --no-webhooks) records none; told again, it does.
func testRecordEventsOff(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w := newWebhook(t, s, ws)
	s.SetRecordEvents(false)
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws, 0, "t", 1, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	s.SetRecordEvents(true)
	f := feedback(ws, 1, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	if got := summarize(walk(t, s, w)); !slices.Equal(got, []eventSummary{{store.Created, f.ID}}) {
		t.Errorf("walked %v, want only the write made with events on", got)
	}
}

// testClaimAndFinish follows one webhook through a dispatcher's steps: a
// lease keeps other claims away until it ends or expires; a stale lease
// changes nothing; a retry holds the position until it is due; giving up
// moves on; a 410 disables; the attempts are listed newest first.
func testClaimAndFinish(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w := newWebhook(t, s, ws, store.Created)
	var fs []*store.Feedback
	for i := range 4 {
		fs = append(fs, feedback(ws, i, "t", 1, nil))
		if err := s.CreateFeedback(ctx, fs[i:], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteFeedback(ctx, ws, fs[3].ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := claim(t, s, w, now)
	if c == nil {
		t.Fatal("the webhook with events was not claimed")
	}
	if claim(t, s, w, now.Add(30*time.Second)) != nil {
		t.Error("a leased webhook was claimed again before its lease ended")
	}
	stolen := claim(t, s, w, now.Add(2*time.Minute))
	if stolen == nil || stolen.Lease == c.Lease {
		t.Fatalf("after its lease expired the webhook was claimed as %v, want a new lease", stolen)
	}
	events, err := s.NextEvents(ctx, stolen, 100)
	if err != nil || len(events) != 5 {
		t.Fatalf("NextEvents = %d events, %v; want 5", len(events), err)
	}
	if held, err := s.FinishEvents(ctx, c, events, nil, time.Time{}); err != nil || held {
		t.Errorf("FinishEvents with an expired lease another holds = %v, %v; want false", held, err)
	}

	attempt := func(e *store.Event, n int, outcome store.Outcome, next *time.Time) *store.Attempt {
		return &store.Attempt{WebhookID: w.ID, EventID: e.ID, Kind: e.Kind, EventSeq: e.Seq, N: n, At: now,
			Outcome: outcome, Status: 500, Latency: 1500 * time.Microsecond, Error: "HTTP 500", NextAttemptAt: next}
	}
	due := now.Add(10 * time.Minute)
	if held, err := s.FinishEvents(ctx, stolen, nil, attempt(events[0], 1, store.Retrying, &due), time.Time{}); err != nil || !held {
		t.Fatalf("FinishEvents(retrying) = %v, %v", held, err)
	}
	if claim(t, s, w, now.Add(3*time.Minute)) != nil {
		t.Error("a webhook whose retry is not due was claimed")
	}
	c = claim(t, s, w, due)
	if c == nil || c.Attempts != 1 || !c.NextAttemptAt.Equal(due) {
		t.Fatalf("claimed when due: %+v; want Attempts 1, NextAttemptAt %v", c, due)
	}
	// A release that passes nothing (a dispatcher stopping) keeps the
	// count of failed attempts.
	if held, err := s.FinishEvents(ctx, c, nil, nil, time.Time{}); err != nil || !held {
		t.Fatal(held, err)
	}
	c = claim(t, s, w, due)
	if c == nil || c.Attempts != 1 || !c.NextAttemptAt.Equal(due) {
		t.Fatalf("claimed again after a release: %+v; want Attempts 1, NextAttemptAt %v", c, due)
	}
	if again, _ := s.NextEvents(ctx, c, 1); len(again) != 1 || again[0].ID != events[0].ID {
		t.Fatalf("after a retry the next event is %v, want the one retried", again)
	}
	// Gave up on the first, delivered the second, lease kept.
	if held, err := s.FinishEvents(ctx, c, nil, attempt(events[0], 2, store.GaveUp, nil), due.Add(time.Minute)); err != nil || !held {
		t.Fatal(held, err)
	}
	delivered := attempt(events[1], 1, store.Delivered, nil)
	delivered.Status, delivered.Error = 204, ""
	if held, err := s.FinishEvents(ctx, c, nil, delivered, due.Add(time.Minute)); err != nil || !held {
		t.Fatal(held, err)
	}
	if claim(t, s, w, due.Add(30*time.Second)) != nil {
		t.Error("a kept lease did not keep other claims away")
	}
	rest, _ := s.NextEvents(ctx, c, 100)
	if len(rest) != 3 || rest[0].ID != events[2].ID {
		t.Fatalf("after two attempts the next events are %v, want the last three", summarize(rest))
	}
	// The deletion is skipped (the webhook wants creations only), the
	// third creation is answered 410.
	gone := attempt(rest[0], 1, store.Gone, nil)
	gone.Status, gone.Error = 410, "the receiver answered 410 Gone"
	if held, err := s.FinishEvents(ctx, c, nil, gone, time.Time{}); err != nil || !held {
		t.Fatal(held, err)
	}
	got, _ := s.Webhook(ctx, ws, w.ID)
	if got.State != store.WebhookDisabled || got.StateReason == "" {
		t.Errorf("after a 410 the webhook is %q (%q), want disabled with a reason", got.State, got.StateReason)
	}
	if claim(t, s, w, due.Add(time.Hour)) != nil {
		t.Error("a disabled webhook was claimed")
	}

	list, err := s.Attempts(ctx, ws, w.ID, 2, 0, false)
	if err != nil || len(list) != 2 {
		t.Fatalf("Attempts = %v, %v", list, err)
	}
	older, err := s.Attempts(ctx, ws, w.ID, 10, list[1].Seq, false)
	if err != nil || len(older) != 2 {
		t.Fatalf("Attempts before %d = %v, %v", list[1].Seq, older, err)
	}
	all := append(list, older...)
	wantOutcomes := []store.Outcome{store.Gone, store.Delivered, store.GaveUp, store.Retrying}
	for i, a := range all {
		if a.Outcome != wantOutcomes[i] || a.WebhookID != w.ID {
			t.Errorf("attempt %d: %+v, want outcome %s", i, a, wantOutcomes[i])
		}
	}
	// The failed ones alone: all but the delivery, also across pages.
	failed, err := s.Attempts(ctx, ws, w.ID, 2, 0, true)
	if err != nil || len(failed) != 2 || failed[0].Outcome != store.Gone || failed[1].Outcome != store.GaveUp {
		t.Fatalf("Attempts(failed) = %v, %v; want the 410 and the given up", failed, err)
	}
	if rest, err := s.Attempts(ctx, ws, w.ID, 10, failed[1].Seq, true); err != nil || len(rest) != 1 || rest[0].Outcome != store.Retrying {
		t.Errorf("Attempts(failed) before %d = %v, %v; want the retried one", failed[1].Seq, rest, err)
	}
	if r := all[3]; r.EventID != events[0].ID || r.Kind != store.Created || r.EventSeq != events[0].Seq || r.N != 1 ||
		r.Status != 500 || r.Latency != 1500*time.Microsecond || r.Error != "HTTP 500" ||
		!r.At.Equal(now) || r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(due) {
		t.Errorf("the retried attempt reads back as %+v", r)
	}
}

// testRedeliver: an event some attempt was at is recorded again for that
// webhook alone, with its id, after what the webhook has; an event the
// webhook never tried is not found.
func testRedeliver(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w, other := newWebhook(t, s, ws), newWebhook(t, s, ws)
	f := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	walk(t, s, other)
	c := claim(t, s, w, time.Now())
	events, _ := s.NextEvents(ctx, c, 10)
	if len(events) != 1 {
		t.Fatalf("events %v", summarize(events))
	}
	if err := s.Redeliver(ctx, ws, w.ID, events[0].ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Redeliver of an event never attempted: %v, want ENOTFOUND", err)
	}
	a := &store.Attempt{WebhookID: w.ID, EventID: events[0].ID, Kind: events[0].Kind, EventSeq: events[0].Seq, N: 1,
		At: time.Now(), Outcome: store.Delivered, Status: 200}
	if _, err := s.FinishEvents(ctx, c, nil, a, time.Time{}); err != nil {
		t.Fatal(err)
	}
	later := feedback(ws, 1, "t", 2, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{later}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Redeliver(ctx, ws, w.ID, events[0].ID); err != nil {
		t.Fatal(err)
	}
	again := walk(t, s, w)
	if got := summarize(again); !slices.Equal(got, []eventSummary{{store.Created, later.ID}, {store.Created, f.ID}}) {
		t.Fatalf("after a redelivery the webhook walked %v, want the later write, then the event again", got)
	}
	if again[1].ID != events[0].ID || !again[1].At.Equal(events[0].At) {
		t.Errorf("the redelivered event is %s at %v, want %s at %v", again[1].ID, again[1].At, events[0].ID, events[0].At)
	}
	assertSame(t, again[1].Feedback, f)
	if got := summarize(walk(t, s, other)); !slices.Equal(got, []eventSummary{{store.Created, later.ID}}) {
		t.Errorf("the other webhook walked %v, want only the later write", got)
	}
}

// testTrimWebhooks: events every webhook passed and attempts made before
// the time are forgotten; an event a webhook (a paused one too) still
// awaits is kept.
func testTrimWebhooks(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	w, paused := newWebhook(t, s, ws), newWebhook(t, s, ws)
	f := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	c := claim(t, s, w, time.Now())
	events, _ := s.NextEvents(ctx, c, 10)
	a := &store.Attempt{WebhookID: w.ID, EventID: events[0].ID, Kind: events[0].Kind, EventSeq: events[0].Seq, N: 1,
		At: time.Now(), Outcome: store.Delivered, Status: 200}
	if _, err := s.FinishEvents(ctx, c, nil, a, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateWebhook(ctx, ws, paused.ID, func(x *store.Webhook) error { x.State = store.WebhookPaused; return nil }); err != nil {
		t.Fatal(err)
	}
	n, oldest, err := s.WebhookBacklog(ctx)
	if err != nil || n != 1 || !oldest.Equal(events[0].At) {
		t.Errorf("WebhookBacklog = %d, %v, %v; want the 1 event the paused webhook awaits, at %v", n, oldest, err, events[0].At)
	}
	if err := s.TrimWebhooks(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Attempts(ctx, ws, w.ID, 10, 0, false); len(list) != 0 {
		t.Errorf("after the trim %d attempts are left", len(list))
	}
	if _, err := s.UpdateWebhook(ctx, ws, paused.ID, func(x *store.Webhook) error { x.State = store.WebhookActive; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := summarize(walk(t, s, paused)); !slices.Equal(got, []eventSummary{{store.Created, f.ID}}) {
		t.Errorf("the paused webhook's event was trimmed: it walked %v", got)
	}
	if err := s.TrimWebhooks(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, oldest, err := s.WebhookBacklog(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Errorf("WebhookBacklog after both walked = %d, %v, %v; want none", n, oldest, err)
	}
	// Forgotten: a redelivery finds no attempt, and a new webhook, nothing.
	if err := s.Redeliver(ctx, ws, w.ID, events[0].ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Redeliver after the trim: %v, want ENOTFOUND", err)
	}
}
