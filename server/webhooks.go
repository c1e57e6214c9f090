package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/webhook"
)

// secretGrace is how long a rotated-out secret keeps signing beside the
// new one, so that a receiver can switch secrets without missing a
// delivery.
const secretGrace = 24 * time.Hour

// eventTypes maps the store's event kinds to the wire's names: the one
// place the two meet.
var eventTypes = map[store.EventKind]gen.WebhookEventType{
	store.Created: gen.FeedbackCreated,
	store.Updated: gen.FeedbackUpdated,
	store.Deleted: gen.FeedbackDeleted,
}

// EventBody is the body of every delivery of e: the spec's WebhookEvent,
// whose data is the feedback exactly as GET /v1/feedback/{id} answers it
// (the same wireFeedback), so a receiver can treat both alike. The
// dispatcher (package webhook) calls it; it is here because the wire
// types are the server's.
func EventBody(e *store.Event) ([]byte, error) {
	t, ok := eventTypes[e.Kind]
	if !ok {
		return nil, store.Errorf(store.EINTERNAL, "event %s has no kind the wire names (%d)", e.ID, e.Kind)
	}
	return json.Marshal(gen.WebhookEvent{Type: t, Timestamp: e.At.UTC(), Data: wireFeedback(e.Feedback)})
}

// EventKindNamed returns the store's kind of a wire event name
// (feedback.created, ...), for callers outside the API (the CLI) that
// take names as the wire spells them.
func EventKindNamed(name string) (store.EventKind, bool) {
	for k, t := range eventTypes {
		if string(t) == name {
			return k, true
		}
	}
	return 0, false
}

// EventName is the wire's name of an event kind.
func EventName(k store.EventKind) string { return string(eventTypes[k]) }

// NewWebhook makes a webhook of a workspace, active from now, with a new
// signing secret, which it returns in the clear (to be shown once) and
// sets on the webhook sealed with keyring. Its URL must pass
// webhook.CheckURL (EINVALID otherwise). The API and the operators' CLI
// both make webhooks with it.
func NewWebhook(workspaceID, url string, kinds []store.EventKind, filter store.Filter, description string,
	keyring *webhook.Keyring, allowLoopback bool, now time.Time) (*store.Webhook, string, error) {
	if err := webhook.CheckURL(url, allowLoopback); err != nil {
		return nil, "", err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, "", err
	}
	kinds = slices.Clone(kinds)
	slices.Sort(kinds)
	secret := webhook.NewSecret()
	now = now.UTC().Truncate(time.Microsecond)
	return &store.Webhook{
		ID: id.String(), WorkspaceID: workspaceID, URL: url, Kinds: slices.Compact(kinds), Filter: filter,
		Description: description, Secret: keyring.Seal(secret), State: store.WebhookActive,
		CreatedAt: now, UpdatedAt: now,
	}, secret, nil
}

// kindsOf maps the wire's event types to the store's kinds, sorted (the
// spec's uniqueItems keeps them distinct).
func kindsOf(events []gen.WebhookEventType) []store.EventKind {
	kinds := make([]store.EventKind, 0, len(events))
	for _, t := range events {
		if k, ok := EventKindNamed(string(t)); ok {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

// webhookFilter maps a wire filter to the store's, refusing metadata
// values that are not scalars (the spec cannot say so of an object's
// values without a union type the generators handle badly).
func webhookFilter(f *gen.WebhookFilter) (store.Filter, error) {
	var out store.Filter
	if f == nil {
		return out, nil
	}
	if f.TraceID != nil {
		out.TraceIDs = []string{*f.TraceID}
	}
	out.ValueMin, out.ValueMax = f.ValueMin, f.ValueMax
	if f.Metadata != nil {
		for k, v := range *f.Metadata {
			switch v.(type) {
			case string, bool, json.Number:
			default:
				return out, &requestError{status: http.StatusBadRequest, message: "request body is invalid",
					fields: []gen.FieldError{{Path: pointer([]string{"filter", "metadata", k}), Message: "must be a string, number or boolean"}}}
			}
		}
		out.Metadata = *f.Metadata
	}
	return out, nil
}

// wireFilter is the store's filter as the wire shows it.
func wireFilter(f store.Filter) gen.WebhookFilter {
	var out gen.WebhookFilter
	if len(f.TraceIDs) > 0 {
		out.TraceID = &f.TraceIDs[0]
	}
	out.ValueMin, out.ValueMax = f.ValueMin, f.ValueMax
	if len(f.Metadata) > 0 {
		m := f.Metadata
		out.Metadata = &m
	}
	return out
}

// wireWebhook is a stored webhook as the wire shows it: never its
// secrets.
func wireWebhook(w *store.Webhook) gen.Webhook {
	events := make([]gen.WebhookEventType, len(w.Kinds))
	for i, k := range w.Kinds {
		events[i] = eventTypes[k]
	}
	out := gen.Webhook{
		ID: uuid.MustParse(w.ID), URL: w.URL, Events: events, Filter: wireFilter(w.Filter),
		Status: gen.WebhookStatus(w.State), CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
	if w.Description != "" {
		d := w.Description
		out.Description = &d
	}
	if w.State == store.WebhookDisabled && w.StateReason != "" {
		reason := w.StateReason
		out.StatusReason = &reason
	}
	return out
}

// checkWebhookURL applies the URL rule (webhook.CheckURL).
func (s *Server) checkWebhookURL(u string) error {
	return urlError(webhook.CheckURL(u, s.allowLoopback))
}

// urlError answers a refused URL as the invalid member it is.
func urlError(err error) error {
	if store.ErrorCode(err) == store.EINVALID {
		return &requestError{status: http.StatusBadRequest, message: "request body is invalid",
			fields: []gen.FieldError{{Path: "/url", Message: store.ErrorMessage(err)}}}
	}
	return err
}

// CreateWebhook subscribes a URL to the workspace's events; the answer
// holds the signing secret, which is stored only sealed.
func (s *Server) CreateWebhook(ctx context.Context, req gen.CreateWebhookRequestObject) (gen.CreateWebhookResponseObject, error) {
	b := req.Body
	filter, err := webhookFilter(b.Filter)
	if err != nil {
		return nil, err
	}
	var description string
	if b.Description != nil {
		description = *b.Description
	}
	w, secret, err := NewWebhook(workspaceOf(ctx), b.URL, kindsOf(b.Events), filter, description, s.keyring, s.allowLoopback, s.now())
	if err != nil {
		return nil, urlError(err)
	}
	if err := s.store.CreateWebhook(ctx, w); err != nil {
		return nil, err
	}
	wire := wireWebhook(w)
	return gen.CreateWebhook201JSONResponse{
		ID: wire.ID, URL: wire.URL, Events: wire.Events, Filter: wire.Filter, Description: wire.Description,
		Status: gen.WebhookCreatedStatus(wire.Status), StatusReason: wire.StatusReason,
		CreatedAt: wire.CreatedAt, UpdatedAt: wire.UpdatedAt, Secret: secret,
	}, nil
}

// ListWebhooks returns the workspace's webhooks, oldest first.
func (s *Server) ListWebhooks(ctx context.Context, _ gen.ListWebhooksRequestObject) (gen.ListWebhooksResponseObject, error) {
	ws, err := s.store.ListWebhooks(ctx, workspaceOf(ctx))
	if err != nil {
		return nil, err
	}
	out := gen.ListWebhooks200JSONResponse{Object: gen.WebhookListObjectList, Data: make([]gen.Webhook, len(ws))}
	for i, w := range ws {
		out.Data[i] = wireWebhook(w)
	}
	return out, nil
}

// GetWebhook returns one webhook of the workspace; another workspace's is
// not found.
func (s *Server) GetWebhook(ctx context.Context, req gen.GetWebhookRequestObject) (gen.GetWebhookResponseObject, error) {
	w, err := s.store.Webhook(ctx, workspaceOf(ctx), req.WebhookID.String())
	if err != nil {
		return nil, err
	}
	return gen.GetWebhook200JSONResponse(wireWebhook(w)), nil
}

// UpdateWebhook changes the members sent, and pauses or resumes.
func (s *Server) UpdateWebhook(ctx context.Context, req gen.UpdateWebhookRequestObject) (gen.UpdateWebhookResponseObject, error) {
	b := req.Body
	if b.URL != nil {
		if err := s.checkWebhookURL(*b.URL); err != nil {
			return nil, err
		}
	}
	var filter store.Filter
	if b.Filter != nil {
		f, err := webhookFilter(b.Filter)
		if err != nil {
			return nil, err
		}
		filter = f
	}
	now := s.clock()
	w, err := s.store.UpdateWebhook(ctx, workspaceOf(ctx), req.WebhookID.String(), func(w *store.Webhook) error {
		if b.URL != nil {
			w.URL = *b.URL
		}
		if b.Events != nil {
			w.Kinds = kindsOf(*b.Events)
		}
		if b.Filter != nil {
			w.Filter = filter
		}
		if b.Description != nil {
			w.Description = *b.Description
		}
		switch {
		case b.Paused == nil:
		case *b.Paused:
			w.State, w.StateReason = store.WebhookPaused, ""
		case w.State != store.WebhookActive:
			w.State, w.StateReason = store.WebhookActive, ""
		}
		w.UpdatedAt = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gen.UpdateWebhook200JSONResponse(wireWebhook(w)), nil
}

// DeleteWebhook removes a webhook and its attempts.
func (s *Server) DeleteWebhook(ctx context.Context, req gen.DeleteWebhookRequestObject) (gen.DeleteWebhookResponseObject, error) {
	if err := s.store.DeleteWebhook(ctx, workspaceOf(ctx), req.WebhookID.String()); err != nil {
		return nil, err
	}
	return gen.DeleteWebhook204Response{}, nil
}

// RotateWebhookSecret gives a webhook a new secret; the one it replaces
// keeps signing beside it for secretGrace.
func (s *Server) RotateWebhookSecret(ctx context.Context, req gen.RotateWebhookSecretRequestObject) (gen.RotateWebhookSecretResponseObject, error) {
	secret := webhook.NewSecret()
	now := s.clock()
	until := now.Add(secretGrace)
	_, err := s.store.UpdateWebhook(ctx, workspaceOf(ctx), req.WebhookID.String(), func(w *store.Webhook) error {
		w.PreviousSecret, w.PreviousUntil = w.Secret, &until
		w.Secret = s.keyring.Seal(secret)
		w.UpdatedAt = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gen.RotateWebhookSecret200JSONResponse{Secret: secret, PreviousSecretExpiresAt: until}, nil
}

// defaultDeliveriesLimit applies when the validated query has no limit;
// the validator fills in the spec's default, so this only guards a
// caller that bypasses it.
const defaultDeliveriesLimit = 20

// ListWebhookDeliveries returns one page of a webhook's attempts, newest
// first. Its cursor is the base64url of the last attempt's sequence
// number: opaque to clients, one spelling per position.
func (s *Server) ListWebhookDeliveries(ctx context.Context, req gen.ListWebhookDeliveriesRequestObject) (gen.ListWebhookDeliveriesResponseObject, error) {
	limit := defaultDeliveriesLimit
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	var before int64
	if req.Params.Cursor != nil {
		seq, err := decodeSeqCursor(*req.Params.Cursor)
		if err != nil {
			return nil, err
		}
		before = seq
	}
	failed := req.Params.Outcome != nil && *req.Params.Outcome == gen.Failed
	as, err := s.store.Attempts(ctx, workspaceOf(ctx), req.WebhookID.String(), limit+1, before, failed)
	if err != nil {
		return nil, err
	}
	out := gen.ListWebhookDeliveries200JSONResponse{Object: gen.WebhookDeliveryListObjectList, Data: []gen.WebhookDelivery{}}
	if len(as) > limit {
		as, out.HasMore = as[:limit], true
		c := encodeSeqCursor(as[limit-1].Seq)
		out.NextCursor = &c
	}
	for _, a := range as {
		out.Data = append(out.Data, wireDelivery(a))
	}
	return out, nil
}

func wireDelivery(a *store.Attempt) gen.WebhookDelivery {
	d := gen.WebhookDelivery{
		EventID: openapi_types.UUID(uuid.MustParse(a.EventID)), Type: eventTypes[a.Kind], Attempt: a.N,
		Outcome: gen.WebhookDeliveryOutcome(a.Outcome), LatencyMs: int(a.Latency.Milliseconds()),
		AttemptedAt: a.At, NextAttemptAt: a.NextAttemptAt,
	}
	if a.Status != 0 {
		status := a.Status
		d.StatusCode = &status
	}
	if a.Error != "" {
		msg := a.Error
		d.Error = &msg
	}
	return d
}

func encodeSeqCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

func decodeSeqCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err == nil {
		if seq, err := strconv.ParseInt(string(b), 10, 64); err == nil && seq > 0 && encodeSeqCursor(seq) == c {
			return seq, nil
		}
	}
	return 0, paramError("cursor", "is not a cursor this server issued")
}

// RedeliverWebhookEvent queues an event again for one webhook.
func (s *Server) RedeliverWebhookEvent(ctx context.Context, req gen.RedeliverWebhookEventRequestObject) (gen.RedeliverWebhookEventResponseObject, error) {
	if err := s.store.Redeliver(ctx, workspaceOf(ctx), req.WebhookID.String(), req.EventID.String()); err != nil {
		return nil, err
	}
	return gen.RedeliverWebhookEvent202Response{}, nil
}
