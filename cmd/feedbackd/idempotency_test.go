package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/feedbackd/feedbackd/client"
)

// postWithKey sends a raw POST with an Idempotency-Key and returns status,
// body and whether the answer was a replay.
func postWithKey(t *testing.T, inst *instance, method, path, key, body string) (int, string, bool) {
	t.Helper()
	req, err := http.NewRequest(method, inst.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-portkey-api-key", inst.key)
	req.Header.Set("Idempotency-Key", key)
	resp, err := validatingDoer{t, http.DefaultClient}.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Idempotent-Replayed") == "true"
}

func testIdempotencyKeys(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)

	body := `[{"trace_id":"idem","value":1},{"trace_id":"idem","value":2}]`
	status, first, replayed := postWithKey(t, inst, "POST", "/v1/feedback", "key-1", body)
	if status != 200 || replayed {
		t.Fatalf("first write: %d %s (replayed %v)", status, first, replayed)
	}
	status, again, replayed := postWithKey(t, inst, "POST", "/v1/feedback", "key-1", body)
	if status != 200 || !replayed || again != first {
		t.Errorf("repeat: %d %s (replayed %v), want the first answer %s", status, again, replayed, first)
	}
	if got := collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("idem")}); len(got) != 2 {
		t.Errorf("after a repeat the store holds %d, want 2", len(got))
	}
	// Same key, other body: 422, nothing stored.
	status, resp, _ := postWithKey(t, inst, "POST", "/v1/feedback", "key-1", `{"trace_id":"idem","value":3}`)
	if status != 422 || !strings.Contains(resp, `"status":"failure"`) {
		t.Errorf("same key, other body: %d %s, want 422", status, resp)
	}
	// A failed request leaves the key free.
	if status, _, _ := postWithKey(t, inst, "POST", "/v1/feedback", "key-2", `{"trace_id":"idem","value":11}`); status != 400 {
		t.Errorf("invalid body: got %d", status)
	}
	if status, _, replayed := postWithKey(t, inst, "POST", "/v1/feedback", "key-2", `{"trace_id":"idem","value":4}`); status != 200 || replayed {
		t.Errorf("key after a failure: %d, replayed %v", status, replayed)
	}
	if got := collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("idem")}); len(got) != 3 {
		t.Errorf("the store holds %d, want 3", len(got))
	}

	// Updates and token submissions take keys too.
	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "idem-u", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		status, resp, replayed := postWithKey(t, inst, "PUT", "/v1/feedback/"+id.String(), "key-u", `{"value":5}`)
		if status != 200 || replayed != (i == 1) || !strings.Contains(resp, id.String()) {
			t.Errorf("update %d: %d %s replayed %v", i, status, resp, replayed)
		}
	}
	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "idem-t"})
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(tok.URL, inst.base)
	_, t1, _ := postWithKey(t, inst, "POST", path, "key-t", `{"value":1}`)
	status, t2, replayed := postWithKey(t, inst, "POST", path, "key-t", `{"value":1}`)
	if status != 200 || !replayed || t1 != t2 {
		t.Errorf("token repeat: %d %s replayed %v, want %s", status, t2, replayed, t1)
	}

	// Keys belong to their workspace: another workspace's same key is
	// another key.
	out, err := runCLI(t, nil, "keys", "create", "--db", inst.db, "--workspace", "other")
	if err != nil {
		t.Fatal(err)
	}
	other := *inst
	other.key = strings.TrimSpace(out)
	if status, _, replayed := postWithKey(t, &other, "POST", "/v1/feedback", "key-1", body); status != 200 || replayed {
		t.Errorf("key-1 in another workspace: %d replayed %v", status, replayed)
	}

	// Keys survive a restart.
	inst.stop()
	again2 := start(t, b, inst.db, nil)
	again2.key = inst.key
	status, after, replayed := postWithKey(t, again2, "POST", "/v1/feedback", "key-1", body)
	if status != 200 || !replayed || after != first {
		t.Errorf("repeat after restart: %d %s replayed %v", status, after, replayed)
	}
}

// flakyTransport loses the answers of the first requests after the server
// has handled them, as a dropped connection would: the client sees an
// error although the write was committed.
type flakyTransport struct {
	lose atomic.Int32
}

func (f *flakyTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if f.lose.Add(-1) >= 0 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset by peer (injected after the server answered)")
	}
	return resp, nil
}

// The Go client retries a write whose answer was lost with the same
// Idempotency-Key, and the feedback is recorded once.
func testClientRetriesWithoutDuplicates(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	flaky := &flakyTransport{}
	c, err := client.New(inst.base+"/v1", client.WithAPIKey(inst.key), client.WithDoer(flaky), client.WithMaxRetries(5))
	if err != nil {
		t.Fatal(err)
	}
	var ids []client.UUID
	for i := range 10 {
		flaky.lose.Store(int32(i % 3)) // lose 0, 1 or 2 answers in a row
		id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: fmt.Sprint("flaky-", i), Value: 1})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	flaky.lose.Store(2)
	bulk, err := c.Feedback.BulkCreate(ctx, []client.FeedbackRequest{{TraceID: "flaky-bulk", Value: 1}, {TraceID: "flaky-bulk", Value: 2}})
	if err != nil {
		t.Fatal(err)
	}
	all := collect(t, inst.client(t, inst.key), client.ListFeedbackParams{})
	if len(all) != 12 {
		t.Errorf("10 creates and a bulk of 2 through a lossy network stored %d feedback, want 12", len(all))
	}
	stored := map[client.UUID]bool{}
	for _, f := range all {
		stored[f.ID] = true
	}
	for _, id := range append(ids, bulk...) {
		if !stored[id] {
			t.Errorf("the client answered %s, which is not stored", id)
		}
	}

	// Concurrent repeats of one key while the first runs: one write.
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, _ := postWithKey(t, inst, "POST", "/v1/feedback", "burst", `{"trace_id":"burst","value":1}`)
			codes <- status
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 && code != 409 {
			t.Errorf("concurrent repeat answered %d, want 200 or 409", code)
		}
	}
	if got := collect(t, inst.client(t, inst.key), client.ListFeedbackParams{TraceID: client.Ptr("burst")}); len(got) != 1 {
		t.Errorf("8 concurrent repeats stored %d, want 1", len(got))
	}
}
