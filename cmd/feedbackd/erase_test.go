package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/feedbackd/feedbackd/client"
)

// testEraseByFilter erases a user's feedback through the API (dry run,
// the guard, the confirmed erase, its replay) and through the CLI, and
// leaves everything else, another workspace's feedback of the same user
// too, where it was.
func testEraseByFilter(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", map[string]string{"FEEDBACKD_ERASE_MAX": "5"})
	c := inst.client(t, inst.key)
	otherKey := newKey(t, inst, "other")
	other := inst.client(t, otherKey)
	var items []client.FeedbackRequest
	for i := range 12 {
		user := "user_123"
		if i%3 == 0 {
			user = "user_456"
		}
		items = append(items, client.FeedbackRequest{TraceID: fmt.Sprint("chat-", i%4), Value: i - 6, Metadata: &client.Metadata{"_user": user}})
	}
	for _, cl := range []*client.Client{c, other} {
		if _, err := cl.Feedback.BulkCreate(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	user := client.EraseRequest{Metadata: &map[string]any{"_user": "user_123"}}

	for _, body := range []string{`{}`, `{"dry_run":true}`, `{"metadata":{"_user":{"id":1}}}`, `{"metadata":{"_user":"user_123"},"trace_ids":"chat-1"}`} {
		if status, resp := inst.do(t, "POST", "/v1/feedback/erase", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}, body); status != 400 {
			t.Errorf("%s: %d %s, want 400", body, status, resp)
		}
	}
	dry := user
	dry.DryRun = client.Ptr(true)
	if got, err := c.Feedback.Erase(ctx, dry); err != nil || got.Erased != 8 || !got.DryRun {
		t.Fatalf("dry run: %+v, %v; want 8 counted", got, err)
	}
	_, err := c.Feedback.Erase(ctx, user)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Count == nil || *apiErr.Count != 8 {
		t.Fatalf("over the guard: %v, want 409 with count 8", err)
	}
	wrong := user
	wrong.ConfirmCount = client.Ptr(int64(7))
	if _, err := c.Feedback.Erase(ctx, wrong); !errors.As(err, &apiErr) || apiErr.StatusCode != 409 {
		t.Fatalf("a wrong confirmation: %v, want 409", err)
	}
	if got := collect(t, c, client.ListFeedbackParams{}); len(got) != 12 {
		t.Fatalf("refused erases left %d of 12", len(got))
	}
	confirmed := `{"metadata":{"_user":"user_123"},"confirm_count":8}`
	status, first, replayed := postWithKey(t, inst, "POST", "/v1/feedback/erase", "erase-1", confirmed)
	if status != 200 || replayed || !strings.Contains(first, `"erased":8`) {
		t.Fatalf("confirmed erase: %d %s", status, first)
	}
	if status, again, replayed := postWithKey(t, inst, "POST", "/v1/feedback/erase", "erase-1", confirmed); status != 200 || !replayed || again != first {
		t.Errorf("repeat: %d %s (replayed %v), want %s", status, again, replayed, first)
	}
	for _, f := range collect(t, c, client.ListFeedbackParams{}) {
		if f.Metadata["_user"] == "user_123" {
			t.Errorf("feedback %s of user_123 survived", f.ID)
		}
	}
	if got := collect(t, other, client.ListFeedbackParams{Metadata: client.Ptr(`{"_user":"user_123"}`)}); len(got) != 8 {
		t.Errorf("another workspace keeps %d of user_123's 8", len(got))
	}

	out, err := runCLI(t, nil, "erase", "--db", inst.db, "--workspace", "other", "--user", "user_123", "--dry-run")
	if err != nil || !strings.Contains(out, "8 feedback match") {
		t.Fatalf("erase --dry-run: %q, %v", out, err)
	}
	if out, err := runCLI(t, nil, "erase", "--db", inst.db, "--workspace", "other", "--user", "user_123", "--value-min", "0"); err != nil || out != "erased 4 feedback\n" {
		t.Fatalf("erase: %q, %v", out, err)
	}
	if _, err := runCLI(t, nil, "erase", "--db", inst.db, "--workspace", "other"); err == nil {
		t.Error("erase without a filter ran")
	}
	if got := collect(t, other, client.ListFeedbackParams{}); len(got) != 8 {
		t.Errorf("the CLI left %d feedback, want 8", len(got))
	}
}
