package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/client"
)

// testClientChosenIDs: an item with an id is created or replaces the
// workspace's feedback with that id, through the Go client and over raw
// HTTP, with an Idempotency-Key replaying the count; a duplicate id is 400
// naming the item, another workspace's id 409 saying nothing else.
func testClientChosenIDs(t *testing.T, b backend) {
	ctx := context.Background()
	db := b.newDB(t)
	inst := start(t, b, db, nil)
	c := inst.client(t, inst.key)

	// The thumbs toggle: up, down, up again leaves one vote.
	vote := uuid.New()
	for i, v := range []int{1, -1, 1} {
		ids, replaced, err := c.Feedback.Put(ctx, []client.FeedbackRequest{{ID: &vote, TraceID: "chat-1", Value: v,
			Metadata: &client.Metadata{"_user": "u1"}}})
		if err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
		if len(ids) != 1 || ids[0] != vote || replaced != min(i, 1) {
			t.Errorf("vote %d: ids %v, replaced %d; want [%s], %d", i, ids, replaced, vote, min(i, 1))
		}
	}
	first, err := c.Feedback.Get(ctx, vote)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("chat-1")}); len(got) != 1 || got[0].Value != 1 {
		t.Errorf("after the toggle the trace holds %+v, want one vote of 1", got)
	}

	// A bulk mixing a stored id (moved to another trace), a new one and
	// one without an id.
	fresh := uuid.New()
	body := `[{"id":"` + vote.String() + `","trace_id":"chat-2","value":-1},{"id":"` + fresh.String() + `","trace_id":"chat-2","value":2},{"trace_id":"chat-2","value":3}]`
	status, answer, replayed := postWithKey(t, inst, "POST", "/v1/feedback", "put-1", body)
	if status != 200 || replayed || !strings.Contains(answer, `"replaced":1`) ||
		!strings.Contains(answer, `"feedback_ids":["`+vote.String()+`","`+fresh.String()+`","`) {
		t.Fatalf("bulk put: %d %s", status, answer)
	}
	status, again, replayed := postWithKey(t, inst, "POST", "/v1/feedback", "put-1", body)
	if status != 200 || !replayed || again != answer {
		t.Errorf("replay: %d %s (replayed %v), want %s", status, again, replayed, answer)
	}
	moved, err := c.Feedback.Get(ctx, vote)
	if err != nil {
		t.Fatal(err)
	}
	if moved.TraceID != "chat-2" || moved.Value != -1 || !moved.CreatedAt.Equal(first.CreatedAt) || !moved.UpdatedAt.After(first.UpdatedAt) {
		t.Errorf("replaced: %+v; want trace chat-2, value -1, created_at %v kept, updated_at after %v", moved, first.CreatedAt, first.UpdatedAt)
	}
	if got := collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("chat-2")}); len(got) != 3 {
		t.Errorf("chat-2 holds %d, want 3", len(got))
	}

	// The same id twice: 400 naming the second item, nothing stored.
	dup := uuid.New().String()
	status, answer = inst.do(t, "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"},
		`[{"id":"`+dup+`","trace_id":"d","value":1},{"id":"`+dup+`","trace_id":"d","value":2}]`)
	if status != 400 || !strings.Contains(answer, `"path":"/1/id"`) {
		t.Errorf("duplicate id: %d %s, want 400 at /1/id", status, answer)
	}
	status, answer = inst.do(t, "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"},
		`{"id":"not-a-uuid","trace_id":"d","value":1}`)
	if status != 400 || !strings.Contains(answer, `"path":"/id"`) {
		t.Errorf("malformed id: %d %s, want 400 at /id", status, answer)
	}

	// Another workspace's id: 409, saying only that it is taken.
	out, err := runCLI(t, nil, "keys", "create", "--db", db, "--workspace", "other")
	if err != nil {
		t.Fatal(err)
	}
	other := inst.client(t, strings.TrimSpace(out))
	_, _, err = other.Feedback.Put(ctx, []client.FeedbackRequest{{ID: &vote, TraceID: "theirs", Value: 9}})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Message != "this feedback id is taken" {
		t.Errorf("another workspace's id: got %v, want 409 saying the id is taken", err)
	}
	if got, err := c.Feedback.Get(ctx, vote); err != nil || got.Value != -1 || got.TraceID != "chat-2" {
		t.Errorf("after the 409: %+v, %v", got, err)
	}
	if got := collect(t, other, client.ListFeedbackParams{}); len(got) != 0 {
		t.Errorf("the other workspace holds %d", len(got))
	}
}
