package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/client"
)

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// collect drains a listing.
func collect(t *testing.T, c *client.Client, p client.ListFeedbackParams) []client.Feedback {
	t.Helper()
	var out []client.Feedback
	for f, err := range c.Feedback.List(context.Background(), p) {
		if err != nil {
			t.Fatalf("List(%+v): %v", p, err)
		}
		out = append(out, f)
	}
	return out
}

func testCreateGetUpdateDelete(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)

	before := time.Now().UTC().Add(-time.Second)
	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{
		TraceID: "trace-1", Value: 7, Weight: client.Ptr(0.25),
		Metadata: &client.Metadata{"_user": "user_1", "score": 0.5, "tags": []any{"a", "b"}},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if id.Version() != 7 {
		t.Errorf("id version: got %d, want 7 (time-ordered)", id.Version())
	}
	f, err := c.Feedback.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if f.ID != id || f.TraceID != "trace-1" || f.Value != 7 || f.Weight != 0.25 {
		t.Errorf("Get: got %+v", f)
	}
	if got, want := jsonOf(t, f.Metadata), `{"_user":"user_1","score":0.5,"tags":["a","b"]}`; got != want {
		t.Errorf("metadata: got %s, want %s", got, want)
	}
	if f.CreatedAt.Before(before) || f.CreatedAt.After(time.Now().Add(time.Second)) || !f.UpdatedAt.Equal(f.CreatedAt) {
		t.Errorf("timestamps: created %v updated %v", f.CreatedAt, f.UpdatedAt)
	}
	if f.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at: got zone %v, want UTC", f.CreatedAt.Location())
	}

	// Defaults: weight 1, empty metadata.
	id2, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "trace-2", Value: -10})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := c.Feedback.Get(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Weight != 1 || len(f2.Metadata) != 0 || f2.Metadata == nil {
		t.Errorf("defaults: got weight %v metadata %#v, want 1 and {}", f2.Weight, f2.Metadata)
	}

	// PUT with value only keeps weight and metadata.
	if err := c.Feedback.Update(ctx, id, client.FeedbackUpdate{Value: -2}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	f, _ = c.Feedback.Get(ctx, id)
	if f.Value != -2 || f.Weight != 0.25 || f.Metadata["_user"] != "user_1" || !f.UpdatedAt.After(f.CreatedAt) {
		t.Errorf("after value-only update: got %+v", f)
	}
	// PUT with every field replaces them; metadata is replaced, not merged.
	if err := c.Feedback.Update(ctx, id, client.FeedbackUpdate{Value: 3, Weight: client.Ptr(0.0), Metadata: &client.Metadata{"reason": "fixed"}}); err != nil {
		t.Fatal(err)
	}
	f, _ = c.Feedback.Get(ctx, id)
	if f.Value != 3 || f.Weight != 0 || jsonOf(t, f.Metadata) != `{"reason":"fixed"}` {
		t.Errorf("after full update: got %+v", f)
	}
	// POST /feedback/{id} is the same update (Portkey's samples use it),
	// and null weight and metadata keep the stored ones.
	status, body := inst.do(t, "POST", "/v1/feedback/"+id.String(),
		map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"},
		`{"value":9,"weight":null,"metadata":null,"feedback_id":"`+id.String()+`"}`)
	if status != 200 || !strings.Contains(body, id.String()) {
		t.Fatalf("POST update: got %d %s", status, body)
	}
	f, _ = c.Feedback.Get(ctx, id)
	if f.Value != 9 || f.Weight != 0 || f.Metadata["reason"] != "fixed" {
		t.Errorf("after POST update: got %+v", f)
	}

	if err := c.Feedback.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Feedback.Get(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if err := c.Feedback.Delete(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	if err := c.Feedback.Update(ctx, id, client.FeedbackUpdate{Value: 1}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Update after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := c.Feedback.Get(ctx, id2); err != nil {
		t.Errorf("the other feedback: %v", err)
	}

	// JSON Schema counts 2.0 as the integer 2: accepted, stored as 2.
	status, body = inst.do(t, "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"},
		`{"trace_id":"fraction","value":2.0,"metadata":{"value":2.50}}`)
	if status != 200 {
		t.Fatalf("value 2.0: got %d %s", status, body)
	}
	var created struct {
		IDs []client.UUID `json:"feedback_ids"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || len(created.IDs) != 1 {
		t.Fatalf("value 2.0: %s", body)
	}
	status, body = inst.do(t, "PUT", "/v1/feedback/"+created.IDs[0].String(), map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}, `{"value":-3e0}`)
	if status != 200 {
		t.Fatalf("update with value -3e0: got %d %s", status, body)
	}
	if f, err := c.Feedback.Get(ctx, created.IDs[0]); err != nil || f.Value != -3 || jsonOf(t, f.Metadata) != `{"value":2.5}` {
		t.Errorf("after 2.0 and -3e0: %+v, %v", f, err)
	}
}

func testBulkCreateKeepsOrderAndIsAtomic(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)

	var items []client.FeedbackRequest
	for i := range 1000 {
		items = append(items, client.FeedbackRequest{TraceID: fmt.Sprint("bulk-", i), Value: i%21 - 10})
	}
	ids, err := c.Feedback.BulkCreate(ctx, items)
	if err != nil {
		t.Fatalf("BulkCreate of 1000: %v", err)
	}
	for _, i := range []int{0, 1, 500, 999} {
		f, err := c.Feedback.Get(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if f.TraceID != items[i].TraceID || f.Value != items[i].Value {
			t.Errorf("id %d points at %s/%d, want %s/%d", i, f.TraceID, f.Value, items[i].TraceID, items[i].Value)
		}
	}

	// One invalid item rejects the whole request and names the item.
	bad := []client.FeedbackRequest{{TraceID: "ok", Value: 1}, {TraceID: "ok", Value: 2}, {TraceID: "bad", Value: 11}}
	_, err = c.Feedback.BulkCreate(ctx, bad)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("bulk with an invalid item: got %v, want a 400 *client.APIError", err)
	}
	if len(apiErr.Fields) != 1 || apiErr.Fields[0].Path != "/2/value" {
		t.Errorf("field errors: got %+v, want one at /2/value", apiErr.Fields)
	}
	if got := collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("ok,bad")}); len(got) != 0 {
		t.Errorf("rejected bulk stored %d items", len(got))
	}
}

func testListFiltersAndPages(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)

	var items []client.FeedbackRequest
	for i := range 30 {
		items = append(items, client.FeedbackRequest{
			TraceID: fmt.Sprint("t", i%3), Value: i%21 - 10,
			Metadata: &client.Metadata{"_user": fmt.Sprint("u", i%2), "n": i % 5, "even": i%2 == 0},
		})
	}
	ids, err := c.Feedback.BulkCreate(ctx, items[:15])
	if err != nil {
		t.Fatal(err)
	}
	mid := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	more, err := c.Feedback.BulkCreate(ctx, items[15:])
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, more...)

	// want lists the indexes of items matching keep, newest first: later
	// requests first, and within one request the order ids were issued,
	// reversed.
	want := func(keep func(i int) bool) []string {
		var out []string
		for i := len(items) - 1; i >= 0; i-- {
			if keep(i) {
				out = append(out, ids[i].String())
			}
		}
		return out
	}
	cases := []struct {
		name   string
		params client.ListFeedbackParams
		keep   func(i int) bool
	}{
		{"all", client.ListFeedbackParams{}, func(int) bool { return true }},
		{"trace_id list", client.ListFeedbackParams{TraceID: client.Ptr("t0,t2")}, func(i int) bool { return i%3 != 1 }},
		{"metadata string", client.ListFeedbackParams{Metadata: client.Ptr(`{"_user":"u1"}`)}, func(i int) bool { return i%2 == 1 }},
		{"metadata number and bool", client.ListFeedbackParams{Metadata: client.Ptr(`{"n":3,"even":false}`)}, func(i int) bool { return i%5 == 3 && i%2 == 1 }},
		{"value range", client.ListFeedbackParams{ValueMin: client.Ptr(-5), ValueMax: client.Ptr(0)}, func(i int) bool { v := i%21 - 10; return v >= -5 && v <= 0 }},
		{"created_after", client.ListFeedbackParams{CreatedAfter: &mid}, func(i int) bool { return i >= 15 }},
		{"created_before", client.ListFeedbackParams{CreatedBefore: &mid}, func(i int) bool { return i < 15 }},
		{"everything", client.ListFeedbackParams{TraceID: client.Ptr("t1"), Metadata: client.Ptr(`{"_user":"u0"}`), ValueMin: client.Ptr(-10), CreatedAfter: &mid},
			func(i int) bool { return i%3 == 1 && i%2 == 0 && i >= 15 }},
	}
	for _, tc := range cases {
		for _, limit := range []int{1, 7, 1000} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				p := tc.params
				p.Limit = client.Ptr(limit)
				var got []string
				for _, f := range collect(t, c, p) {
					got = append(got, f.ID.String())
				}
				if w := want(tc.keep); !slices.Equal(got, w) {
					t.Errorf("got %v\nwant %v", got, w)
				}
			})
		}
	}

	// A page says whether more follow and where they start.
	page, err := c.Feedback.ListPage(ctx, client.ListFeedbackParams{Limit: client.Ptr(29)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 29 || !page.HasMore || page.NextCursor == nil {
		t.Fatalf("first page: %d items, has_more %v, cursor %v", len(page.Data), page.HasMore, page.NextCursor)
	}
	last, err := c.Feedback.ListPage(ctx, client.ListFeedbackParams{Limit: client.Ptr(29), Cursor: page.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Data) != 1 || last.HasMore || last.NextCursor != nil || last.Data[0].ID != ids[0] {
		t.Errorf("last page: got %+v", last)
	}
}

// Pages read while others write neither skip nor repeat what existed when
// the listing began.
func testListPagingUnderConcurrentWrites(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	var items []client.FeedbackRequest
	for i := range 200 {
		items = append(items, client.FeedbackRequest{TraceID: fmt.Sprint("p", i), Value: 1})
	}
	ids, err := c.Feedback.BulkCreate(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writer := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				writer <- nil
				return
			default:
			}
			if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "concurrent", Value: 2}); err != nil {
				writer <- err
				return
			}
		}
	}()
	seen := map[client.UUID]int{}
	for f := range c.Feedback.List(ctx, client.ListFeedbackParams{Limit: client.Ptr(9)}) {
		seen[f.ID]++
	}
	close(stop)
	if err := <-writer; err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times, want 1", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", id, n)
		}
	}
}

func testRestartKeepsData(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "persist", Value: 4, Metadata: &client.Metadata{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	inst.stop()

	again := start(t, b, inst.db, nil)
	if again.key != "" {
		t.Errorf("restart printed a new bootstrap key")
	}
	f, err := again.client(t, inst.key).Feedback.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get after restart with the first key: %v", err)
	}
	if f.TraceID != "persist" || f.Value != 4 || f.Metadata["k"] != "v" {
		t.Errorf("after restart: got %+v", f)
	}
}

// Bad input gets a 4xx JSON error from the contract and stores nothing.
func testBadInputIsRejectedAndStoresNothing(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	id, err := c.Feedback.Create(context.Background(), client.FeedbackRequest{TraceID: "existing", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	var big strings.Builder
	big.WriteString("[")
	for i := range 1001 {
		if i > 0 {
			big.WriteString(",")
		}
		big.WriteString(`{"trace_id":"x","value":1}`)
	}
	big.WriteString("]")

	jsonKey := map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}
	unknown := uuid.Must(uuid.NewV7()).String()
	deep := `"x"`
	for range 9 {
		deep = `{"a":` + deep + `}`
	}
	var wide, huge strings.Builder
	for i := range 65 {
		fmt.Fprintf(&wide, `%s"k%d":1`, map[bool]string{true: "", false: ","}[i == 0], i)
	}
	for i := range 60 {
		fmt.Fprintf(&huge, `%s"k%d":"%s"`, map[bool]string{true: "", false: ","}[i == 0], i, strings.Repeat("x", 600))
	}
	meta := func(m string) string { return `{"trace_id":"a","value":1,"metadata":` + m + `}` }
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
		path0              string // the first field error's path, when one is expected
	}{
		{"malformed JSON", "POST", "/v1/feedback", jsonKey, `{"trace_id":`, 400, ""},
		{"trailing garbage", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1} x`, 400, ""},
		{"not an object or array", "POST", "/v1/feedback", jsonKey, `"hello"`, 400, ""},
		{"value 11", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":11}`, 400, "/value"},
		{"value -11", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":-11}`, 400, "/value"},
		{"value 1.5", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1.5}`, 400, "/value"},
		{"value as string", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":"1"}`, 400, "/value"},
		{"value null", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":null}`, 400, "/value"},
		{"weight 2", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1,"weight":2}`, 400, "/weight"},
		{"weight -0.1", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1,"weight":-0.1}`, 400, "/weight"},
		{"weight as string", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1,"weight":"1"}`, 400, "/weight"},
		{"missing value", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a"}`, 400, "/value"},
		{"missing trace_id", "POST", "/v1/feedback", jsonKey, `{"value":1}`, 400, "/trace_id"},
		{"empty trace_id", "POST", "/v1/feedback", jsonKey, `{"trace_id":"","value":1}`, 400, "/trace_id"},
		{"trace_id too long", "POST", "/v1/feedback", jsonKey, `{"trace_id":"` + strings.Repeat("x", 257) + `","value":1}`, 400, "/trace_id"},
		{"trace_id a number", "POST", "/v1/feedback", jsonKey, `{"trace_id":5,"value":1}`, 400, "/trace_id"},
		{"metadata an array", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1,"metadata":["x"]}`, 400, "/metadata"},
		{"metadata a string", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","value":1,"metadata":"x"}`, 400, "/metadata"},
		{"empty array", "POST", "/v1/feedback", jsonKey, `[]`, 400, ""},
		{"metadata nested 9 deep", "POST", "/v1/feedback", jsonKey, meta(deep), 400, "/metadata/a/a/a/a/a/a/a/a"},
		{"metadata with 65 keys", "POST", "/v1/feedback", jsonKey, meta("{" + wide.String() + "}"), 400, "/metadata"},
		{"metadata over 32 KiB", "POST", "/v1/feedback", jsonKey, meta("{" + huge.String() + "}"), 400, "/metadata"},
		{"metadata key of 257 characters", "POST", "/v1/feedback", jsonKey, meta(`{"` + strings.Repeat("k", 257) + `":1}`), 400, "/metadata/" + strings.Repeat("k", 257)},
		{"metadata string of 8193 characters", "POST", "/v1/feedback", jsonKey, meta(`{"s":"` + strings.Repeat("é", 8193) + `"}`), 400, "/metadata/s"},
		{"bulk item metadata too deep", "POST", "/v1/feedback", jsonKey, `[{"trace_id":"a","value":1},` + meta(deep) + `]`, 400, "/1/metadata/a/a/a/a/a/a/a/a"},
		{"update metadata too deep", "PUT", "/v1/feedback/" + id.String(), jsonKey, `{"value":1,"metadata":` + deep + `}`, 400, "/metadata/a/a/a/a/a/a/a/a"},
		{"1001 items", "POST", "/v1/feedback", jsonKey, big.String(), 400, ""},
		{"bulk item not an object", "POST", "/v1/feedback", jsonKey, `[{"trace_id":"a","value":1},5]`, 400, "/1"},
		{"case variant smuggles no value", "POST", "/v1/feedback", jsonKey, `{"trace_id":"a","VALUE":1}`, 400, "/value"},
		{"index-keyed body with a gap", "POST", "/v1/feedback", jsonKey, `{"0":{"traceID":"a","value":1},"2":{"traceID":"b","value":1}}`, 400, "/2"},
		{"index-keyed body with a non-index key", "POST", "/v1/feedback", jsonKey, `{"0":{"traceID":"a","value":1},"x":{"traceID":"b","value":1}}`, 400, "/x"},
		{"index-keyed item with both trace id spellings", "POST", "/v1/feedback", jsonKey, `{"0":{"traceID":"a","trace_id":"b","value":1}}`, 400, "/0"},
		{"index-keyed item with value 11", "POST", "/v1/feedback", jsonKey, `{"0":{"traceID":"a","value":1},"1":{"traceID":"a","value":11}}`, 400, "/1/value"},
		{"invalid UTF-8", "POST", "/v1/feedback", jsonKey, "{\"trace_id\":\"\xff\",\"value\":1}", 400, ""},
		{"empty body", "POST", "/v1/feedback", jsonKey, ``, 400, ""},
		{"wrong content type", "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "text/plain"}, `{"trace_id":"a","value":1}`, 415, ""},
		{"no content type", "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key}, `{"trace_id":"a","value":1}`, 415, ""},
		{"no key", "POST", "/v1/feedback", map[string]string{"Content-Type": "application/json"}, `{"trace_id":"a","value":1}`, 401, ""},
		{"wrong key", "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": "fbk_wrong", "Content-Type": "application/json"}, `{"trace_id":"a","value":1}`, 401, ""},
		{"wrong bearer", "GET", "/v1/feedback", map[string]string{"Authorization": "Bearer fbk_wrong"}, ``, 401, ""},
		{"key in wrong scheme", "GET", "/v1/feedback", map[string]string{"Authorization": "Basic " + inst.key}, ``, 401, ""},
		{"update value 11", "PUT", "/v1/feedback/" + id.String(), jsonKey, `{"value":11}`, 400, "/value"},
		{"update without value", "PUT", "/v1/feedback/" + id.String(), jsonKey, `{"weight":0.5}`, 400, "/value"},
		{"update metadata an array", "POST", "/v1/feedback/" + id.String(), jsonKey, `{"value":1,"metadata":[1]}`, 400, "/metadata"},
		{"update unknown id", "PUT", "/v1/feedback/" + unknown, jsonKey, `{"value":1}`, 404, ""},
		{"get unknown id", "GET", "/v1/feedback/" + unknown, jsonKey, ``, 404, ""},
		{"delete unknown id", "DELETE", "/v1/feedback/" + unknown, jsonKey, ``, 404, ""},
		{"get non-UUID id", "GET", "/v1/feedback/not-a-uuid", jsonKey, ``, 400, "id"},
		{"delete non-UUID id", "DELETE", "/v1/feedback/123", jsonKey, ``, 400, "id"},
		{"list limit 0", "GET", "/v1/feedback?limit=0", jsonKey, ``, 400, "limit"},
		{"list limit 1001", "GET", "/v1/feedback?limit=1001", jsonKey, ``, 400, "limit"},
		{"list limit not a number", "GET", "/v1/feedback?limit=ten", jsonKey, ``, 400, "limit"},
		{"list value_min 11", "GET", "/v1/feedback?value_min=11", jsonKey, ``, 400, "value_min"},
		{"list bad created_after", "GET", "/v1/feedback?created_after=yesterday", jsonKey, ``, 400, "created_after"},
		{"list metadata not JSON", "GET", "/v1/feedback?metadata=_user", jsonKey, ``, 400, "metadata"},
		{"list metadata an array", "GET", "/v1/feedback?metadata=%5B1%5D", jsonKey, ``, 400, "metadata"},
		{"list metadata nested value", "GET", "/v1/feedback?metadata=%7B%22a%22%3A%7B%7D%7D", jsonKey, ``, 400, "metadata"},
		{"list bad cursor", "GET", "/v1/feedback?cursor=bogus", jsonKey, ``, 400, "cursor"},
		{"list empty trace_id list", "GET", "/v1/feedback?trace_id=,", jsonKey, ``, 400, "trace_id"},
		{"list with a typo for trace_id", "GET", "/v1/feedback?tarce_id=existing", jsonKey, ``, 400, "tarce_id"},
		{"create with an undeclared parameter", "POST", "/v1/feedback?trace_id=b", jsonKey, `{"trace_id":"a","value":1}`, 400, "trace_id"},
		{"delete with an undeclared parameter", "DELETE", "/v1/feedback/" + id.String() + "?force=1", jsonKey, ``, 400, "force"},
		{"analytics with a Portkey log filter", "GET", "/v1/analytics/graphs/feedbacks/scores?time_of_generation_min=2026-01-01T00:00:00Z&time_of_generation_max=2026-01-02T00:00:00Z&cost_min=1", jsonKey, ``, 400, "cost_min"},
		{"query string not URL encoding", "GET", "/v1/feedback?limit=%zz", jsonKey, ``, 400, ""},
		{"unknown route", "GET", "/v1/nope", jsonKey, ``, 404, ""},
		{"wrong method", "PATCH", "/v1/feedback", jsonKey, `{}`, 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := inst.do(t, tc.method, tc.path, tc.header, tc.body)
			if status != tc.status {
				t.Errorf("status: got %d, want %d (%s)", status, tc.status, body)
			}
			var e struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Errors  []struct{ Path, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != "failure" || e.Message == "" {
				t.Fatalf("body is not the Error JSON: %s", body)
			}
			if tc.path0 != "" && (len(e.Errors) == 0 || e.Errors[0].Path != tc.path0) {
				t.Errorf("field errors: got %+v, want the first at %q", e.Errors, tc.path0)
			}
		})
	}

	all := collect(t, c, client.ListFeedbackParams{})
	if len(all) != 1 || all[0].ID != id {
		t.Errorf("after bad requests the store holds %d items, want only the first", len(all))
	}
	f, err := c.Feedback.Get(context.Background(), id)
	if err != nil || f.Value != 1 || f.Weight != 1 {
		t.Errorf("existing feedback changed: %+v, %v", f, err)
	}
}

// A query parameter an operation does not declare is refused, naming it,
// on every operation of the versioned API; Portkey's analytics filters over request logs are
// refused saying that feedbackd has none; workspace_slug, declared, is
// accepted and ignored.
func testUndeclaredQueryParametersAreRefused(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "kept", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "by-token"})
	if err != nil {
		t.Fatal(err)
	}
	jsonKey := map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}
	key := map[string]string{"x-portkey-api-key": inst.key}
	noKey := map[string]string{"Content-Type": "application/json"}
	now := time.Now().UTC()
	rng := "time_of_generation_min=" + now.Add(-time.Hour).Format(time.RFC3339) + "&time_of_generation_max=" + now.Add(time.Hour).Format(time.RFC3339)
	const listTakes = "is not a parameter of this operation, which takes: created_after, created_before, cursor, limit, metadata, trace_id, value_max, value_min"
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
		message            string   // the whole message, when given
		paths              []string // the field errors' paths, in order
	}{
		{"typo on list", "GET", "/v1/feedback?tarce_id=kept", key, ``, 400,
			`unknown query parameter "tarce_id"`, []string{"tarce_id"}},
		{"several, sorted, beside a declared one", "GET", "/v1/feedback?trace_id=kept&tarce_id=x&Limit=2", key, ``, 400,
			`unknown query parameters "Limit", "tarce_id"`, []string{"Limit", "tarce_id"}},
		{"an empty name", "GET", "/v1/feedback?=x", key, ``, 400, `unknown query parameter ""`, []string{""}},
		{"create", "POST", "/v1/feedback?foo=1", jsonKey, `{"trace_id":"a","value":1}`, 400,
			`unknown query parameter "foo"`, []string{"foo"}},
		{"bulk create", "POST", "/v1/feedback?foo=1", jsonKey, `[{"trace_id":"a","value":1}]`, 400, "", []string{"foo"}},
		{"create, index-keyed body (full path)", "POST", "/v1/feedback?foo=1", jsonKey, `{"0":{"traceID":"a","value":1}}`, 400, "", []string{"foo"}},
		{"update named like a body member", "PUT", "/v1/feedback/" + id.String() + "?value=5", jsonKey, `{"value":2}`, 400, "", []string{"value"}},
		{"update by POST", "POST", "/v1/feedback/" + id.String() + "?x=1", jsonKey, `{"value":2}`, 400, "", []string{"x"}},
		{"get", "GET", "/v1/feedback/" + id.String() + "?expand=all", key, ``, 400, "", []string{"expand"}},
		{"delete", "DELETE", "/v1/feedback/" + id.String() + "?force=true", key, ``, 400, "", []string{"force"}},
		{"create a token", "POST", "/v1/feedback/tokens?x=1", jsonKey, `{"trace_id":"t"}`, 400, "", []string{"x"}},
		{"submit with a token", "POST", "/v1/feedback/tokens/" + tok.Token + "?x=1", noKey, `{"value":1}`, 400, "", []string{"x"}},
		{"analytics typo", "GET", "/v1/analytics/graphs/feedbacks?" + rng + "&granularty=day", key, ``, 400,
			`unknown query parameter "granularty"`, []string{"granularty"}},
		{"Portkey log filter", "GET", "/v1/analytics/graphs/feedbacks/scores?" + rng + "&cost_min=0.5", key, ``, 400,
			`unknown query parameter "cost_min": feedbackd has no request logs to filter by cost_min`, []string{"cost_min"}},
		{"Portkey log filters and another", "GET", "/v1/analytics/groups/metadata/_user?" + rng + "&status_code=200&order_by=requests&cache_status=HIT", key, ``, 400,
			`unknown query parameters "cache_status", "order_by", "status_code": feedbackd has no request logs to filter by cache_status, status_code`,
			[]string{"cache_status", "order_by", "status_code"}},
		{"weighted graph with a log filter", "GET", "/v1/analytics/graphs/feedbacks/weighted?" + rng + "&virtual_keys=vk", key, ``, 400, "", []string{"virtual_keys"}},
		{"not URL encoding", "GET", "/v1/feedback?trace_id=%zz", key, ``, 400, `the query string is not valid: invalid URL escape "%zz"`, nil},
		{"workspace_slug is declared and ignored", "GET", "/v1/analytics/graphs/feedbacks/weighted?" + rng + "&workspace_slug=elsewhere", key, ``, 200, "", nil},
		{"declared parameters only", "GET", "/v1/feedback?trace_id=kept&limit=5", key, ``, 200, "", nil},
		{"authentication comes first", "GET", "/v1/feedback?tarce_id=kept", nil, ``, 401, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := inst.do(t, tc.method, tc.path, tc.header, tc.body)
			if status != tc.status {
				t.Fatalf("status: got %d, want %d (%s)", status, tc.status, body)
			}
			if status == 200 {
				return
			}
			var e struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Errors  []struct{ Path, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != "failure" || e.Message == "" {
				t.Fatalf("body is not the Error JSON: %s", body)
			}
			if tc.message != "" && e.Message != tc.message {
				t.Errorf("message: got %q, want %q", e.Message, tc.message)
			}
			var paths []string
			for _, f := range e.Errors {
				paths = append(paths, f.Path)
			}
			if !slices.Equal(paths, tc.paths) {
				t.Errorf("field errors: got %+v, want paths %q", e.Errors, tc.paths)
			}
			if tc.name == "typo on list" && len(e.Errors) > 0 && e.Errors[0].Message != listTakes {
				t.Errorf("field error: got %q, want %q", e.Errors[0].Message, listTakes)
			}
		})
	}

	all := collect(t, c, client.ListFeedbackParams{})
	if len(all) != 1 || all[0].ID != id || all[0].Value != 1 {
		t.Errorf("after refused requests the store holds %+v, want only the first, unchanged", all)
	}
}

// A key differing only in case from a field is an unknown field: the value
// stored is the one validated.
func testCaseVariantKeysAreIgnored(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	status, body := inst.do(t, "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"},
		`{"trace_id":"a","value":1,"VALUE":99,"Value":-99,"WEIGHT":7,"Metadata":[1]}`)
	if status != 200 {
		t.Fatalf("got %d %s", status, body)
	}
	var resp struct {
		FeedbackIDs []client.UUID `json:"feedback_ids"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.FeedbackIDs) != 1 {
		t.Fatalf("response %s: %v", body, err)
	}
	f, err := c.Feedback.Get(context.Background(), resp.FeedbackIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if f.Value != 1 || f.Weight != 1 || len(f.Metadata) != 0 {
		t.Errorf("stored %+v, want value 1, weight 1, no metadata", f)
	}
}

// The probes answer under the API's server URL, where the spec declares
// them and so where generated clients call them, and at the root, where
// process supervisors look; without a key either way.
func testProbes(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	for _, path := range []string{"/v1/healthz", "/v1/readyz"} {
		status, body := inst.do(t, "GET", path, nil, "")
		if status != 200 || body != `{"status":"ok"}`+"\n" {
			t.Errorf("%s: got %d %q", path, status, body)
		}
	}
	// The root aliases are outside the spec (as /metrics is), so there is
	// no operation to check their answers against.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(inst.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{"status":"ok"}`+"\n" {
			t.Errorf("%s: got %d %q", path, resp.StatusCode, body)
		}
	}
	raw, err := client.NewClientWithResponses(inst.base+"/v1", client.WithHTTPClient(validatingDoer{t, http.DefaultClient}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	health, err := raw.GetHealthWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if health.JSON200 == nil || health.JSON200.Status != client.Ok {
		t.Errorf("GetHealth: got %d %s, want 200 ok", health.StatusCode(), health.Body)
	}
	ready, err := raw.GetReadinessWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ready.JSON200 == nil || ready.JSON200.Status != client.Ok {
		t.Errorf("GetReadiness: got %d %s, want 200 ok", ready.StatusCode(), ready.Body)
	}
}

func testBearerKeyAndPortkeyHeaderBothWork(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	for _, h := range []map[string]string{{"x-portkey-api-key": inst.key}, {"Authorization": "Bearer " + inst.key}} {
		if status, body := inst.do(t, "GET", "/v1/feedback", h, ""); status != 200 {
			t.Errorf("%v: got %d %s", h, status, body)
		}
	}
}

// Stopping the server (what SIGINT and SIGTERM do through run's context)
// lets requests in flight finish; every feedback acknowledged with 200 is
// there after a restart.
func testShutdownLosesNothingAcknowledged(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	acked := make(chan client.UUID, 10000)
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: fmt.Sprint("w", w, "-", i), Value: 1})
				if err != nil {
					return // the server is gone
				}
				acked <- id
			}
		}()
	}
	// Stop once writes are acknowledged, with more in flight.
	waitFor(t, "100 writes acknowledged", func() bool { return len(acked) >= 100 })
	inst.stop()
	for range 8 {
		<-done
	}
	close(acked)

	again := start(t, b, inst.db, nil)
	c2 := again.client(t, inst.key)
	n := 0
	for id := range acked {
		n++
		if _, err := c2.Feedback.Get(ctx, id); err != nil {
			t.Errorf("acknowledged %s lost: %v", id, err)
		}
	}
	if n == 0 {
		t.Fatal("no write was acknowledged before shutdown")
	}
	t.Logf("%d acknowledged writes survived the shutdown", n)
}

func testClientReadsKeyFromPortkeyEnvironmentVariable(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	t.Setenv("PORTKEY_API_KEY", inst.key)
	c, err := client.New(inst.base+"/v1", client.WithDoer(validatingDoer{t, http.DefaultClient}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Feedback.Create(context.Background(), client.FeedbackRequest{TraceID: "env", Value: 1}); err != nil {
		t.Errorf("Create with the key from PORTKEY_API_KEY: %v", err)
	}
}
