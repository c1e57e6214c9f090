package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
)

// Two feedbackd processes on one PostgreSQL database behave as one
// service: writes through either are read through both, analytics count
// what both wrote exactly, cursors work across them, bulk requests stay
// atomic, and concurrent updates to one feedback end in exactly one of the
// writes, whole.
func TestTwoReplicasOnOnePostgres(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": "fbk_replica_test_key_0123456789", "FEEDBACKD_LOG_LEVEL": "warn"}

	// Both start at once on the empty database: one migrates and
	// bootstraps, the other waits for the lock and finds it done.
	var replicas [2]*process
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replicas[i] = startProcess(t, db, env)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	clients := []*client.Client{replicas[0].client(t, env["FEEDBACKD_BOOTSTRAP_KEY"]), replicas[1].client(t, env["FEEDBACKD_BOOTSTRAP_KEY"])}
	ctx := contextWithTimeout(t, 2*time.Minute)

	// Concurrent writes through both, single and bulk.
	var (
		mu    sync.Mutex
		acked = map[client.UUID]client.FeedbackRequest{}
	)
	errs := make(chan error, 100)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%2]
			for i := range 15 {
				items := []client.FeedbackRequest{{TraceID: fmt.Sprintf("r%d-%d", w, i), Value: i%21 - 10, Metadata: &client.Metadata{"_user": fmt.Sprint("u", w)}}}
				if i%5 == 0 {
					for j := range 9 {
						items = append(items, client.FeedbackRequest{TraceID: fmt.Sprintf("r%d-%d-%d", w, i, j), Value: j, Weight: client.Ptr(0.5)})
					}
				}
				ids, err := c.Feedback.BulkCreate(ctx, items)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for k, id := range ids {
					acked[id] = items[k]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write: %v", err)
	}

	// Feedback on the same traces through both replicas at once: each
	// trace is counted once per value in groups, for its first feedback,
	// which neither replica may claim for a row the other wrote first.
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%2]
			for i := range 12 {
				items := []client.FeedbackRequest{{TraceID: fmt.Sprint("shared-", i), Value: w, Metadata: &client.Metadata{"_prompt": fmt.Sprint("p", i%3)}}}
				if i%4 == 0 {
					items = append(items, client.FeedbackRequest{TraceID: fmt.Sprint("shared-", i+1), Value: -w, Metadata: &client.Metadata{"_prompt": fmt.Sprint("p", w%3)}})
				}
				ids, err := c.Feedback.BulkCreate(ctx, items)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for k, id := range ids {
					acked[id] = items[k]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range clients {
		checkAnalytics(t, c, "_prompt")
		checkAnalytics(t, c, "_user")
	}

	// A bulk with one bad item, through either replica, stores nothing.
	for _, c := range clients {
		_, err := c.Feedback.BulkCreate(ctx, []client.FeedbackRequest{{TraceID: "atomic", Value: 1}, {TraceID: "atomic", Value: 99}})
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Errorf("bulk with a bad item: got %v, want 400", err)
		}
	}

	// Every acknowledged row reads back through each replica, by id and by
	// listing, and listing pages alternate between replicas.
	want := slices.Sorted(func(yield func(string) bool) {
		for id := range acked {
			if !yield(id.String()) {
				return
			}
		}
	})
	for r, c := range clients {
		var got []string
		for f, err := range c.Feedback.List(ctx, client.ListFeedbackParams{Limit: client.Ptr(37)}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, f.ID.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("replica %d lists %d rows, want the %d acknowledged", r, len(got), len(want))
		}
		for id, sent := range acked {
			f, err := c.Feedback.Get(ctx, id)
			if err != nil {
				t.Fatalf("replica %d, Get %s: %v", r, id, err)
			}
			if f.TraceID != sent.TraceID || f.Value != sent.Value {
				t.Errorf("replica %d, %s: got %s/%d, want %s/%d", r, id, f.TraceID, f.Value, sent.TraceID, sent.Value)
			}
		}
	}
	seen := map[string]int{}
	var cursor *string
	for page := 0; ; page++ {
		p, err := clients[page%2].Feedback.ListPage(ctx, client.ListFeedbackParams{Limit: client.Ptr(23), Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Data {
			seen[f.ID.String()]++
		}
		if !p.HasMore {
			break
		}
		cursor = p.NextCursor
	}
	if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, want) {
		t.Errorf("alternating pages gave %d rows, want %d", len(got), len(want))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times across replicas", id, n)
		}
	}

	// One Idempotency-Key sent through both replicas at once, many times:
	// one write, and every answer has its ids.
	answers := make(chan []client.UUID, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kctx := client.WithIdempotencyKey(ctx, "across-replicas")
			ids, err := clients[i%2].Feedback.BulkCreate(kctx, []client.FeedbackRequest{{TraceID: "across", Value: 1}, {TraceID: "across", Value: 2}})
			var apiErr *client.APIError
			if errors.As(err, &apiErr) && apiErr.StatusCode == 409 {
				return // still in progress on that replica: a client would retry
			}
			if err != nil {
				t.Error(err)
				return
			}
			answers <- ids
		}()
	}
	wg.Wait()
	close(answers)
	var firstIDs []client.UUID
	for ids := range answers {
		if firstIDs == nil {
			firstIDs = ids
		}
		if fmt.Sprint(ids) != fmt.Sprint(firstIDs) {
			t.Errorf("one key answered %v and %v", firstIDs, ids)
		}
	}
	if got := collect(t, clients[0], client.ListFeedbackParams{TraceID: client.Ptr("across")}); len(got) != 2 {
		t.Errorf("one key through two replicas stored %d feedback, want 2", len(got))
	}

	// Concurrent updates of one feedback through both replicas: the row
	// ends as exactly one of the updates sent, with all of its fields.
	target := slices.Collect(maps.Keys(acked))[0]
	type update struct {
		value  int
		weight float64
		writer string
	}
	var sent []update
	for w := range 10 {
		sent = append(sent, update{value: w - 5, weight: float64(w) / 10, writer: fmt.Sprint("writer-", w)})
	}
	for w, u := range sent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := clients[w%2].Feedback.Update(ctx, target, client.FeedbackUpdate{Value: u.value, Weight: client.Ptr(u.weight), Metadata: &client.Metadata{"writer": u.writer, "value": u.value}})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for r, c := range clients {
		f, err := c.Feedback.Get(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		writer, _ := f.Metadata["writer"].(string)
		var match *update
		for i := range sent {
			if sent[i].writer == writer {
				match = &sent[i]
			}
		}
		if match == nil || f.Value != match.value || f.Weight != match.weight || len(f.Metadata) != 2 {
			t.Errorf("replica %d reads a row that no single update wrote: %+v", r, f)
		}
	}
}

// Two replicas on one PostgreSQL database, each with its dispatcher,
// deliver every event of a webhook once, in normal operation: feedback
// written through both, created and then updated, reaches the receiver
// (which verifies each signature) exactly once per event, each
// feedback's events in order, whichever replica delivered them.
func TestTwoReplicasDeliverEachWebhookEventOnce(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": "fbk_replica_webhook_test_0123456789", "FEEDBACKD_LOG_LEVEL": "warn",
		"FEEDBACKD_WEBHOOKS_ALLOW_LOOPBACK": "true"}
	replicas := [2]*process{startProcess(t, db, env), startProcess(t, db, env)}
	clients := []*client.Client{replicas[0].client(t, env["FEEDBACKD_BOOTSTRAP_KEY"]), replicas[1].client(t, env["FEEDBACKD_BOOTSTRAP_KEY"])}
	ctx := contextWithTimeout(t, 2*time.Minute)
	r := newReceiver(t)
	// Answers that take a while keep each walk long enough for the other
	// replica's dispatcher to try to claim the webhook meanwhile.
	r.delay = 20 * time.Millisecond
	subscribe(t, clients[0], r, client.WebhookRequest{})

	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c := clients[w%2]
			for i := range each {
				id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: fmt.Sprintf("r%d-%d", w, i), Value: i % 10})
				if err != nil {
					t.Error(err)
					return
				}
				// The update goes through the other replica.
				if err := clients[(w+1)%2].Feedback.Update(ctx, id, client.FeedbackUpdate{Value: -1}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want := 2 * writers * each
	r.waitFor(t, want)
	// Time for a second delivery of any event to arrive, if one were made.
	time.Sleep(time.Second)
	got := r.deliveries()
	if len(got) != want {
		t.Errorf("the receiver got %d deliveries, want %d: one per event", len(got), want)
	}
	ids := map[string]bool{}
	kinds := map[string][]client.WebhookEventType{}
	for _, d := range got {
		if ids[d.id] {
			t.Errorf("event %s was delivered twice", d.id)
		}
		ids[d.id] = true
		id := d.event.Data.ID.String()
		kinds[id] = append(kinds[id], d.event.Type)
	}
	for id, ks := range kinds {
		if !slices.Equal(ks, []client.WebhookEventType{client.FeedbackCreated, client.FeedbackUpdated}) {
			t.Errorf("feedback %s: events %v, want created then updated", id, ks)
		}
	}
}
