package store

import (
	"context"
	"encoding/json"
	"math/big"
	"slices"
	"time"
)

// Webhooks are a workspace's subscriptions to the changes of its
// feedback. Every write of feedback records an event per feedback it
// creates, replaces or deletes, in its own transaction, when its
// workspace has a webhook that is not disabled: an acknowledged write
// always has its events, a rolled-back one has none (the outbox). A
// dispatcher then walks each webhook's events in the order their writes
// committed, past a position the webhook keeps, and delivers those the
// webhook asks for, one at a time: at least once, in order.

// EventKind says what a change did to a feedback.
type EventKind int8

// The event kinds. The wire names them (feedback.created, ...); the
// server maps them at its edge.
const (
	Created EventKind = iota + 1
	Updated
	Deleted
)

// Event is one change of one feedback, as recorded for webhooks.
type Event struct {
	// Seq orders the events of one database; the store sets it.
	Seq int64
	// ID names the event: a UUID, the webhook-id of every delivery of it.
	ID   string
	Kind EventKind
	// At is when the change was made.
	At time.Time
	// Feedback is the feedback as the change left it; for Deleted, as it
	// was.
	Feedback *Feedback
}

// WebhookState says whether a webhook's events are delivered.
type WebhookState string

const (
	// WebhookActive: events are recorded and delivered.
	WebhookActive WebhookState = "active"
	// WebhookPaused: events are recorded and wait; they are delivered, in
	// order, once the webhook is active again.
	WebhookPaused WebhookState = "paused"
	// WebhookDisabled: the receiver asked for no more (410 Gone). No
	// events are recorded for it; made active again, it gets those of
	// the writes after that, as a new webhook does.
	WebhookDisabled WebhookState = "disabled"
)

// Webhook is one subscription of a workspace.
type Webhook struct {
	ID, WorkspaceID string
	URL             string
	// Kinds are the event kinds it gets, sorted.
	Kinds []EventKind
	// Filter keeps the events whose feedback it matches (Matches); only
	// TraceIDs, Metadata, ValueMin and ValueMax are used.
	Filter      Filter
	Description string
	// Secret is the signing secret, sealed: the store keeps it as given.
	Secret []byte
	// PreviousSecret, sealed, also signs deliveries until PreviousUntil:
	// a rotation's grace period.
	PreviousSecret []byte
	PreviousUntil  *time.Time
	State          WebhookState
	// StateReason says why a webhook was disabled.
	StateReason string
	// Attempts counts the failed attempts at the webhook's next event,
	// whose next attempt is due at NextAttemptAt (zero: now).
	Attempts      int
	NextAttemptAt time.Time
	// Lease is set by ClaimWebhooks on the webhooks it hands out.
	Lease string
	// CreatedAt and UpdatedAt are in UTC with microsecond precision.
	CreatedAt, UpdatedAt time.Time
}

// Wants says whether the webhook is to get e: its kind is one the
// webhook asks for, and its filter matches e's feedback.
func (w *Webhook) Wants(e *Event) bool {
	return slices.Contains(w.Kinds, e.Kind) && w.Filter.Matches(e.Feedback)
}

// Outcome is how one attempt at a delivery ended.
type Outcome string

const (
	// Delivered: the receiver answered 2xx.
	Delivered Outcome = "delivered"
	// Retrying: the attempt failed; another is due at NextAttemptAt.
	Retrying Outcome = "retrying"
	// GaveUp: the attempt failed and was the last: the webhook moves on.
	GaveUp Outcome = "gave_up"
	// Gone: the receiver answered 410: the webhook is disabled.
	Gone Outcome = "gone"
)

// Attempt is one attempt at delivering an event to a webhook.
type Attempt struct {
	// Seq orders a database's attempts; the store sets it.
	Seq       int64
	WebhookID string
	// EventID and Kind are the event's; EventSeq its position.
	EventID  string
	Kind     EventKind
	EventSeq int64
	// N is the attempt's number for this event, from 1.
	N       int
	At      time.Time
	Outcome Outcome
	// Status is the receiver's HTTP status, 0 when it gave none.
	Status  int
	Latency time.Duration
	// Error says what went wrong, "" when delivered.
	Error string
	// NextAttemptAt is when the next attempt is due (Retrying).
	NextAttemptAt *time.Time
}

// Webhooks stores webhooks, their events and the attempts at delivering
// them.
type Webhooks interface {
	// CreateWebhook stores w (ID, CreatedAt and UpdatedAt set by the
	// caller). It gets the events of the writes that commit after it.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// Webhook returns one webhook of a workspace; ENOTFOUND when the
	// workspace has none with that id.
	Webhook(ctx context.Context, workspaceID, id string) (*Webhook, error)
	// ListWebhooks returns a workspace's webhooks, or every workspace's
	// for "", oldest first.
	ListWebhooks(ctx context.Context, workspaceID string) ([]*Webhook, error)
	// UpdateWebhook reads a webhook, lets change edit it (URL, Kinds,
	// Filter, Description, secrets, State, StateReason, UpdatedAt) and
	// stores the result, in one transaction; ENOTFOUND as Webhook, and
	// change's error as it is.
	UpdateWebhook(ctx context.Context, workspaceID, id string, change func(*Webhook) error) (*Webhook, error)
	// DeleteWebhook removes a webhook and its attempts; ENOTFOUND as
	// Webhook.
	DeleteWebhook(ctx context.Context, workspaceID, id string) error

	// ClaimWebhooks leases, until until, up to limit active webhooks that
	// no unexpired lease holds, whose next attempt is due at now, and
	// that have events to walk; on PostgreSQL, replicas claim with
	// FOR UPDATE SKIP LOCKED, so each webhook is walked by one at a time.
	// Each comes with its Lease set.
	ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]*Webhook, error)
	// NextEvents returns up to limit events of w's workspace past w's
	// position, in the order their writes committed: those recorded
	// after w was created, for w or for every webhook. On PostgreSQL only
	// events no earlier running transaction can precede are returned, so
	// that a position never passes an event yet to commit.
	NextEvents(ctx context.Context, w *Webhook, limit int) ([]*Event, error)
	// FinishEvents records what a walk of w did, if w's lease is still
	// held: it moves w's position past skipped (events w does not want)
	// and, with a, records the attempt at the event after them and moves
	// past that too, unless a.Outcome is Retrying (then w's Attempts and
	// NextAttemptAt are a's; a release that passes nothing keeps them as
	// they were); Gone disables w. It keeps the lease until
	// keepUntil, or ends it when keepUntil is zero. It reports whether
	// the lease was still held; when not, it changed nothing.
	FinishEvents(ctx context.Context, w *Webhook, skipped []*Event, a *Attempt, keepUntil time.Time) (bool, error)
	// Attempts returns a webhook's attempts, newest first (by Seq), up to
	// limit, only those before the Seq before when it is positive, and
	// only those not Delivered when failed; ENOTFOUND as Webhook.
	Attempts(ctx context.Context, workspaceID, webhookID string, limit int, before int64, failed bool) ([]*Attempt, error)
	// Redeliver records an event again for one webhook alone, after the
	// events it has now, with the same id, kind, time and feedback: an
	// event some attempt of the webhook was at. ENOTFOUND when the webhook
	// or such an event is not there (any more).
	Redeliver(ctx context.Context, workspaceID, webhookID, eventID string) error
	// TrimWebhooks forgets the events every webhook of their workspace has
	// walked past, and the attempts, made before a time.
	TrimWebhooks(ctx context.Context, before time.Time) error
	// WebhookBacklog counts, over the webhooks that are not disabled, the
	// events each has yet to walk past (an event two webhooks await counts
	// twice), and returns the oldest one's time (zero when none).
	WebhookBacklog(ctx context.Context) (int64, time.Time, error)
}

// Matches says whether f matches the filter's TraceIDs, Metadata,
// ValueMin and ValueMax, as ListFeedback's filter does: metadata values
// compare by JSON value, numbers by their value.
func (flt *Filter) Matches(f *Feedback) bool {
	if len(flt.TraceIDs) > 0 && !slices.Contains(flt.TraceIDs, f.TraceID) {
		return false
	}
	if (flt.ValueMin != nil && f.Value < *flt.ValueMin) || (flt.ValueMax != nil && f.Value > *flt.ValueMax) {
		return false
	}
	for k, want := range flt.Metadata {
		got, ok := f.Metadata[k]
		if !ok || !sameScalar(got, want) {
			return false
		}
	}
	return true
}

// sameScalar compares two JSON scalars by value: strings and booleans as
// they are, numbers (float64 or json.Number) by their value.
func sameScalar(a, b any) bool {
	x, xNum := number(a)
	y, yNum := number(b)
	if xNum || yNum {
		return xNum && yNum && x.Cmp(y) == 0
	}
	switch a := a.(type) {
	case string, bool:
		return a == b
	}
	return false
}

func number(v any) (*big.Float, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case float64:
		return new(big.Float).SetFloat64(v), true
	case int:
		return new(big.Float).SetInt64(int64(v)), true
	default:
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	return f, err == nil
}
