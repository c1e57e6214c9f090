package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// write is one acknowledged write of the load: the ids it was answered
// with and what each should hold.
type write struct {
	ids   []client.UUID
	items []client.FeedbackRequest
	// at is when the answer arrived.
	at time.Time
}

// loadUntilStopped drives single and bulk writes from several writers
// until they fail (the server is gone) and returns the acknowledged ones
// and the bulks sent. Each acknowledgment's time is handed to whoever
// waits on acks at that moment (ackAfter), if anyone.
func loadUntilStopped(t *testing.T, c *client.Client, acks chan<- time.Time) (acked []write, bulks [][]client.FeedbackRequest) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				items := []client.FeedbackRequest{{TraceID: fmt.Sprintf("w%d-%d", w, i), Value: i%21 - 10, Weight: client.Ptr(float64(i%5) / 4),
					Metadata: &client.Metadata{"writer": w, "i": i, "_prompt": fmt.Sprint("p", i%4)}}}
				if i%3 == 0 {
					for j := 1; j < 10; j++ {
						// A trace with several feedback: only the first counts
						// it in a group.
						items = append(items, client.FeedbackRequest{TraceID: fmt.Sprintf("w%d-%d-%d", w, i, j%3), Value: j,
							Metadata: &client.Metadata{"_prompt": fmt.Sprint("p", j%4)}})
					}
					mu.Lock()
					bulks = append(bulks, items)
					mu.Unlock()
				}
				ids, err := c.Feedback.BulkCreate(context.Background(), items)
				if err != nil {
					return
				}
				at := time.Now()
				mu.Lock()
				acked = append(acked, write{ids: ids, items: items, at: at})
				mu.Unlock()
				select {
				case acks <- at:
				default:
				}
			}
		}()
	}
	wg.Wait()
	return acked, bulks
}

// ackAfter waits for a write of loadUntilStopped acknowledged after since.
func ackAfter(t *testing.T, acks <-chan time.Time, since time.Time) {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		select {
		case at := <-acks:
			if at.After(since) {
				return
			}
		case <-guard:
			t.Fatalf("no write was acknowledged after %s in %v", since.Format(time.RFC3339Nano), hangGuard)
		}
	}
}

// checkAcknowledged reads every acknowledged write back, and checks that
// no bulk was stored in part.
func checkAcknowledged(t *testing.T, c *client.Client, acked []write, bulks [][]client.FeedbackRequest) {
	t.Helper()
	ctx := context.Background()
	for _, w := range acked {
		for k, id := range w.ids {
			f, err := c.Feedback.Get(ctx, id)
			if err != nil {
				t.Errorf("acknowledged %s lost: %v", id, err)
				continue
			}
			want := w.items[k]
			if f.TraceID != want.TraceID || f.Value != want.Value {
				t.Errorf("%s holds %s/%d, want %s/%d", id, f.TraceID, f.Value, want.TraceID, want.Value)
			}
		}
	}
	for _, b := range bulks {
		traces := ""
		for k, it := range b {
			if k > 0 {
				traces += ","
			}
			traces += it.TraceID
		}
		got := collect(t, c, client.ListFeedbackParams{TraceID: &traces})
		if len(got) != 0 && len(got) != len(b) {
			t.Errorf("bulk %s... stored in part: %d of %d items", b[0].TraceID, len(got), len(b))
		}
	}
}

// A crash (SIGKILL) under load loses nothing that was acknowledged, leaves
// no bulk half stored and no analytics out of step with the rows; a
// graceful stop (SIGTERM) the same, and lets the requests it already had
// finish.
func testStopsLoseNothingAcknowledged(t *testing.T, b backend) {
	const key = "fbk_durability_test_key_0123456789"
	env := map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": key, "FEEDBACKD_LOG_LEVEL": "warn"}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			db := b.newDB(t)
			p := startProcess(t, db, env)
			c, err := client.New(p.base+"/v1", client.WithAPIKey(key), client.WithMaxRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			acks := make(chan time.Time)
			result := make(chan [2]any, 1)
			go func() {
				acked, bulks := loadUntilStopped(t, c, acks)
				result <- [2]any{acked, bulks}
			}()
			ackAfter(t, acks, time.Time{})
			time.Sleep(500 * time.Millisecond)
			p.signal(t, sig)
			r := <-result
			acked, bulks := r[0].([]write), r[1].([][]client.FeedbackRequest)
			if sig == syscall.SIGTERM && p.cmd.ProcessState.ExitCode() != 0 {
				t.Errorf("SIGTERM: exit code %d, want 0\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
			}

			again := startProcess(t, db, env)
			checkAcknowledged(t, again.client(t, key), acked, bulks)
			// What was stored is in the analytics, all of it and once.
			checkAnalytics(t, again.client(t, key), "_prompt")
			t.Logf("%d acknowledged writes checked after %v", len(acked), sig)
		})
	}
}

// A crash (SIGKILL) in the middle of a large erase leaves all of it or
// nothing: after a restart the erased user's feedback is all there or
// all gone, and the analytics of what is left (another user's feedback
// on the same traces, which the erase promotes to first) are exact. The
// kill comes half as long after the erase began as an erase of as many
// rows just took, so that it lands while the erase works.
func testEraseIsAllOrNothingOnSIGKILL(t *testing.T, b backend) {
	const key = "fbk_durability_test_key_0123456789"
	env := map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": key, "FEEDBACKD_LOG_LEVEL": "warn", "FEEDBACKD_ERASE_MAX": "1000000"}
	db := b.newDB(t)
	p := startProcess(t, db, env)
	c, err := client.New(p.base+"/v1", client.WithAPIKey(key), client.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const each = 10_000
	for bulk := range 2 * each / 1000 {
		var items []client.FeedbackRequest
		for i := range 1000 {
			items = append(items, client.FeedbackRequest{TraceID: fmt.Sprint("t", i%500), Value: i%21 - 10,
				Metadata: &client.Metadata{"_user": fmt.Sprint("user-", bulk%2), "_prompt": fmt.Sprint("p", (bulk+i)%3)}})
		}
		if _, err := c.Feedback.BulkCreate(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	var kept []client.FeedbackRequest
	for i := range 500 {
		kept = append(kept, client.FeedbackRequest{TraceID: fmt.Sprint("t", i), Value: 1, Metadata: &client.Metadata{"_user": "stays", "_prompt": fmt.Sprint("p", i%3)}})
	}
	if _, err := c.Feedback.BulkCreate(ctx, kept); err != nil {
		t.Fatal(err)
	}
	erase := func(c *client.Client, user string) (*client.EraseResponse, error) {
		return c.Feedback.Erase(ctx, client.EraseRequest{Metadata: &map[string]any{"_user": user}})
	}
	start := time.Now()
	if got, err := erase(c, "user-0"); err != nil || got.Erased != each {
		t.Fatalf("erase of user-0: %+v, %v", got, err)
	}
	took := time.Since(start)
	answered := make(chan error, 1)
	go func() {
		_, err := erase(c, "user-1")
		answered <- err
	}()
	time.Sleep(took / 2)
	p.signal(t, syscall.SIGKILL)
	done := <-answered == nil

	again := startProcess(t, db, env)
	ac := again.client(t, key)
	left := len(collect(t, ac, client.ListFeedbackParams{Metadata: client.Ptr(`{"_user":"user-1"}`), Limit: client.Ptr(1000)}))
	switch {
	case left != 0 && left != each:
		t.Fatalf("after a crash during the erase %d of %d remain", left, each)
	case done && left != 0:
		t.Fatalf("an acknowledged erase left %d", left)
	}
	t.Logf("the first erase took %v; the second was acknowledged before the crash: %v, and %d of %d remain", took, done, left, each)
	checkAnalytics(t, ac, "_prompt")
}
