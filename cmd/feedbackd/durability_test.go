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
