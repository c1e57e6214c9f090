package storetest

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// Call is one call of a store.Store method, for tests that hold every
// method to one property (how it fails, say).
type Call struct {
	Method string
	Do     func(ctx context.Context, s store.Store) error
}

// Reads are a call of each method of store.Store that only reads, in
// workspace ws; both ways MetadataGroups may answer are called.
func Reads(ws string) []Call {
	id := uuid.Must(uuid.NewV7()).String()
	q := store.AnalyticsQuery{From: clock, To: clock.Add(24 * time.Hour), BucketSize: 3600}
	return []Call{
		{"GetFeedback", func(ctx context.Context, s store.Store) error { _, err := s.GetFeedback(ctx, ws, id); return err }},
		{"ListFeedback", func(ctx context.Context, s store.Store) error {
			_, err := s.ListFeedback(ctx, ws, store.Filter{Limit: 10})
			return err
		}},
		{"IdempotentResult", func(ctx context.Context, s store.Store) error { _, err := s.IdempotentResult(ctx, ws, "k"); return err }},
		{"FeedbackCells", func(ctx context.Context, s store.Store) error { _, err := s.FeedbackCells(ctx, ws, q); return err }},
		{"MetadataGroups from slots", func(ctx context.Context, s store.Store) error {
			_, _, err := s.MetadataGroups(ctx, ws, "_environment", q, 0, 10)
			return err
		}},
		{"MetadataGroups from rows", func(ctx context.Context, s store.Store) error {
			_, _, err := s.MetadataGroups(ctx, ws, "model", q, 0, 10)
			return err
		}},
		{"APIKeyByHash", func(ctx context.Context, s store.Store) error { _, err := s.APIKeyByHash(ctx, []byte("h")); return err }},
		{"APIKeyByID", func(ctx context.Context, s store.Store) error { _, err := s.APIKeyByID(ctx, id); return err }},
		{"ListAPIKeys", func(ctx context.Context, s store.Store) error { _, err := s.ListAPIKeys(ctx); return err }},
		{"CountAPIKeys", func(ctx context.Context, s store.Store) error { _, err := s.CountAPIKeys(ctx); return err }},
		{"ListWorkspaces", func(ctx context.Context, s store.Store) error { _, err := s.ListWorkspaces(ctx); return err }},
		{"ExportFeedback", func(ctx context.Context, s store.Store) error {
			_, err := s.ExportFeedback(ctx, ws, store.ExportQuery{Limit: 10})
			return err
		}},
		{"ExistingFeedbackIDs", func(ctx context.Context, s store.Store) error {
			_, err := s.ExistingFeedbackIDs(ctx, []string{id})
			return err
		}},
		{"Webhook", func(ctx context.Context, s store.Store) error { _, err := s.Webhook(ctx, ws, id); return err }},
		{"ListWebhooks", func(ctx context.Context, s store.Store) error { _, err := s.ListWebhooks(ctx, ws); return err }},
		{"NextEvents", func(ctx context.Context, s store.Store) error {
			_, err := s.NextEvents(ctx, &store.Webhook{ID: id, WorkspaceID: ws}, 10)
			return err
		}},
		{"Attempts", func(ctx context.Context, s store.Store) error {
			_, err := s.Attempts(ctx, ws, id, 10, 0, false)
			return err
		}},
		{"WebhookBacklog", func(ctx context.Context, s store.Store) error { _, _, err := s.WebhookBacklog(ctx); return err }},
	}
}

// Writes are a call of each method of store.Store that writes, in
// workspace ws, Ping included.
func Writes(ws string) []Call {
	id := uuid.Must(uuid.NewV7()).String()
	one := func() []*store.Feedback { return []*store.Feedback{feedback(ws, 0, "t", 1, nil)} }
	return []Call{
		{"CreateFeedback one", func(ctx context.Context, s store.Store) error { return s.CreateFeedback(ctx, one(), nil) }},
		{"CreateFeedback many", func(ctx context.Context, s store.Store) error {
			fs := make([]*store.Feedback, 100)
			for i := range fs {
				fs[i] = feedback(ws, i, "t", 1, nil)
			}
			return s.CreateFeedback(ctx, fs, nil)
		}},
		{"UpsertTokenFeedback", func(ctx context.Context, s store.Store) error {
			_, err := s.UpsertTokenFeedback(ctx, "token", one()[0], nil)
			return err
		}},
		{"UpdateFeedback", func(ctx context.Context, s store.Store) error {
			_, err := s.UpdateFeedback(ctx, ws, id, store.Update{Value: 1, UpdatedAt: clock}, nil)
			return err
		}},
		{"DeleteFeedback", func(ctx context.Context, s store.Store) error { return s.DeleteFeedback(ctx, ws, id) }},
		{"PurgeIdempotency", func(ctx context.Context, s store.Store) error { return s.PurgeIdempotency(ctx, clock) }},
		{"EnsureWorkspace", func(ctx context.Context, s store.Store) error { _, err := s.EnsureWorkspace(ctx, "w"); return err }},
		{"CreateAPIKey", func(ctx context.Context, s store.Store) error {
			return s.CreateAPIKey(ctx, &store.APIKey{ID: id, WorkspaceID: ws, Name: "k", Hash: []byte("h"), CreatedAt: clock})
		}},
		{"TouchAPIKey", func(ctx context.Context, s store.Store) error { return s.TouchAPIKey(ctx, id, clock) }},
		{"RevokeAPIKey", func(ctx context.Context, s store.Store) error { return s.RevokeAPIKey(ctx, id, clock) }},
		{"Secret", func(ctx context.Context, s store.Store) error {
			_, err := s.Secret(ctx, "s", func() []byte { return []byte("x") })
			return err
		}},
		{"Ping", func(ctx context.Context, s store.Store) error { return s.Ping(ctx) }},
		{"CreateWebhook", func(ctx context.Context, s store.Store) error {
			return s.CreateWebhook(ctx, &store.Webhook{ID: id, WorkspaceID: ws, URL: "https://receiver.test", Kinds: []store.EventKind{store.Created},
				Secret: []byte("s"), State: store.WebhookActive, CreatedAt: clock, UpdatedAt: clock})
		}},
		{"UpdateWebhook", func(ctx context.Context, s store.Store) error {
			_, err := s.UpdateWebhook(ctx, ws, id, func(*store.Webhook) error { return nil })
			return err
		}},
		{"DeleteWebhook", func(ctx context.Context, s store.Store) error { return s.DeleteWebhook(ctx, ws, id) }},
		{"ClaimWebhooks", func(ctx context.Context, s store.Store) error {
			_, err := s.ClaimWebhooks(ctx, clock, clock.Add(time.Minute), 10)
			return err
		}},
		{"FinishEvents", func(ctx context.Context, s store.Store) error {
			_, err := s.FinishEvents(ctx, &store.Webhook{ID: id, WorkspaceID: ws, Lease: "l"}, nil, nil, time.Time{})
			return err
		}},
		{"Redeliver", func(ctx context.Context, s store.Store) error { return s.Redeliver(ctx, ws, id, id) }},
		{"TrimWebhooks", func(ctx context.Context, s store.Store) error { return s.TrimWebhooks(ctx, clock) }},
	}
}
