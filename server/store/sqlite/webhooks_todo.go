package sqlite

import (
	"context"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// TEMPORARY (branch wh only): replaced by webhooks.go.

func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error { panic("todo") }
func (s *Store) Webhook(ctx context.Context, workspaceID, id string) (*store.Webhook, error) {
	panic("todo")
}
func (s *Store) ListWebhooks(ctx context.Context, workspaceID string) ([]*store.Webhook, error) {
	panic("todo")
}
func (s *Store) UpdateWebhook(ctx context.Context, workspaceID, id string, change func(*store.Webhook) error) (*store.Webhook, error) {
	panic("todo")
}
func (s *Store) DeleteWebhook(ctx context.Context, workspaceID, id string) error { panic("todo") }
func (s *Store) ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]*store.Webhook, error) {
	panic("todo")
}
func (s *Store) NextEvents(ctx context.Context, w *store.Webhook, limit int) ([]*store.Event, error) {
	panic("todo")
}
func (s *Store) FinishEvents(ctx context.Context, w *store.Webhook, skipped []*store.Event, a *store.Attempt, keepUntil time.Time) (bool, error) {
	panic("todo")
}
func (s *Store) Attempts(ctx context.Context, workspaceID, webhookID string, limit int, before int64) ([]*store.Attempt, error) {
	panic("todo")
}
func (s *Store) Redeliver(ctx context.Context, workspaceID, webhookID, eventID string) error {
	panic("todo")
}
func (s *Store) TrimWebhooks(ctx context.Context, before time.Time) error { panic("todo") }
func (s *Store) WebhookBacklog(ctx context.Context) (int64, time.Time, error) { panic("todo") }
