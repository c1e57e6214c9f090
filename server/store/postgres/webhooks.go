package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/outbox"
)

// Sequence values are taken before commit, so a webhook cannot walk its
// events in seq order: a write that took a smaller seq may commit after a
// larger one was read, and a position past the larger would skip it. It
// walks them in (xid, seq) order instead, and only the events of
// transactions below the oldest one still running (pg_snapshot_xmin):
// those have all committed (or rolled back), and every transaction yet to
// write has a larger xid, so no event can appear before a position once
// it is passed. The events of one transaction share its xid and keep the
// order of their seq. The oldest running transaction is the server's, of
// any database, that has written: a long one (a large erase, a change of
// the model keys) holds every walk back until it ends; reads do not.

// webhookColumns are the columns scanWebhook reads, of webhooks w. A time
// of -infinity (never) is read as NULL.
const webhookColumns = `w.id::text, w.workspace_id::text, w.url, w.kinds, w.filter, w.description, w.secret, w.previous_secret,
	w.previous_until, w.state, w.state_reason, w.attempts, nullif(w.next_attempt_at, '-infinity'), w.lease, w.created_at, w.updated_at`

// visibleXid is the xid every event of a committed transaction that a walk
// may take is below: the oldest transaction still running.
const visibleXid = `pg_snapshot_xmin(pg_current_snapshot())::text::bigint`

// pastPosition selects the events of webhook w's workspace it has yet to
// walk past, as store.Webhooks' NextEvents says, whether their
// transactions have ended or not. The statements read them in a subquery
// with a LIMIT or an aggregate of its own, which the planner cannot merge
// into one join of every webhook with every event: it runs it for each
// webhook, with its position, as a seek of webhook_events_walk past it,
// never a read of the events it has passed (or that were there before
// it). The condition on start_seq is written so that it filters
// what the seek finds: as seq > start_seq, the planner, which cannot tell
// how many events either condition leaves, may take the primary key
// instead, and read every event of a webhook that started at 0.
const pastPosition = `e.workspace_id = w.workspace_id AND (e.xid, e.seq) > (w.position_xid, w.position_seq)
	AND e.seq - w.start_seq > 0 AND (e.webhook_id IS NULL OR e.webhook_id = w.id)`

// CreateWebhook implements store.Store. The webhook starts after the
// largest seq its statement sees, and at the oldest transaction running
// then: every transaction below it has ended, so its events are visible,
// and none has a larger seq; every event the webhook is to get is of that
// transaction or a later one. Its walks, and the claims that look for an
// event to walk, then seek past the workspace's earlier events rather
// than read them all to find none.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	kinds, filter, err := outbox.Encode(w)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO webhooks (id, workspace_id, url, kinds, filter, description, secret,
				previous_secret, previous_until, state, state_reason, start_seq, position_xid, position_seq, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, (SELECT coalesce(max(seq), 0) FROM webhook_events), `+visibleXid+`, 0,
				$12, $13)`,
			w.ID, w.WorkspaceID, w.URL, kinds, filter, w.Description, w.Secret, w.PreviousSecret, w.PreviousUntil,
			string(w.State), w.StateReason, w.CreatedAt, w.UpdatedAt)
		return err
	})
}

// Webhook implements store.Store.
func (s *Store) Webhook(ctx context.Context, workspaceID, id string) (*store.Webhook, error) {
	return view(s, func(pool *pgxpool.Pool) (*store.Webhook, error) {
		return scanWebhook(pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.workspace_id = $1 AND w.id = $2`,
			workspaceID, id))
	})
}

// ListWebhooks implements store.Store.
func (s *Store) ListWebhooks(ctx context.Context, workspaceID string) ([]*store.Webhook, error) {
	return view(s, func(pool *pgxpool.Pool) ([]*store.Webhook, error) {
		return scanWebhooks(pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks w
			WHERE $1 = '' OR w.workspace_id = nullif($1, '')::uuid ORDER BY w.created_at, w.id`, workspaceID))
	})
}

// UpdateWebhook implements store.Store. The webhook's row stays locked
// from the read to the write, so concurrent changes apply one after the
// other.
func (s *Store) UpdateWebhook(ctx context.Context, workspaceID, id string, change func(*store.Webhook) error) (*store.Webhook, error) {
	var out *store.Webhook
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		w, err := scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.workspace_id = $1 AND w.id = $2
			FOR UPDATE`, workspaceID, id))
		if err != nil {
			return err
		}
		was := w.State
		if err := change(w); err != nil {
			return err
		}
		kinds, filter, err := outbox.Encode(w)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE webhooks SET url = $1, kinds = $2, filter = $3, description = $4, secret = $5,
				previous_secret = $6, previous_until = $7, state = $8, state_reason = $9, updated_at = $10 WHERE id = $11`,
			w.URL, kinds, filter, w.Description, w.Secret, w.PreviousSecret, w.PreviousUntil,
			string(w.State), w.StateReason, w.UpdatedAt, w.ID)
		if err == nil && was == store.WebhookDisabled && w.State != store.WebhookDisabled {
			// Made active again: it starts over as a new webhook does, so
			// that what other webhooks had recorded meanwhile is not its.
			_, err = tx.Exec(ctx, `UPDATE webhooks SET start_seq = (SELECT coalesce(max(seq), 0) FROM webhook_events),
					position_xid = `+visibleXid+`, position_seq = 0, attempts = 0, next_attempt_at = '-infinity' WHERE id = $1`, w.ID)
		}
		out = w
		return err
	})
	return out, err
}

// DeleteWebhook implements store.Store. Its redeliveries go with it.
func (s *Store) DeleteWebhook(ctx context.Context, workspaceID, id string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2`, workspaceID, id)
		if err := affectedOne(tag, err, "webhook not found"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_attempts WHERE webhook_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM webhook_events WHERE webhook_id = $1`, id)
		return err
	})
}

// ClaimWebhooks implements store.Store. The webhooks it leases are locked
// FOR UPDATE SKIP LOCKED: a replica's claim passes over the webhooks
// another is claiming at the same moment, and, once that one committed,
// finds them leased.
func (s *Store) ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]*store.Webhook, error) {
	lease := uuid.NewString()
	var out []*store.Webhook
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanWebhooks(tx.Query(ctx, `UPDATE webhooks AS w SET lease = $1, lease_until = $2 WHERE w.id IN (
				SELECT w.id FROM webhooks w WHERE w.state = 'active' AND w.lease_until <= $3 AND w.next_attempt_at <= $3
					AND EXISTS (SELECT FROM (SELECT 1 FROM webhook_events e WHERE `+pastPosition+` AND e.xid < `+visibleXid+`
						ORDER BY e.xid, e.seq LIMIT 1) AS next)
				ORDER BY w.next_attempt_at, w.id LIMIT $4 FOR UPDATE SKIP LOCKED)
			RETURNING `+webhookColumns, lease, until, now, limit))
		return err
	})
	return out, err
}

// NextEvents implements store.Store.
func (s *Store) NextEvents(ctx context.Context, w *store.Webhook, limit int) ([]*store.Event, error) {
	return view(s, func(pool *pgxpool.Pool) ([]*store.Event, error) {
		rows, err := pool.Query(ctx, `SELECT e.feedback_id::text, e.workspace_id::text, e.trace_id, e.value, e.weight, e.metadata,
				e.created_at, e.updated_at, e.seq, e.id::text, e.kind, e.at
			FROM webhooks w CROSS JOIN LATERAL (SELECT * FROM webhook_events e WHERE `+pastPosition+` AND e.xid < `+visibleXid+`
				ORDER BY e.xid, e.seq LIMIT $2) AS e
			WHERE w.id = $1 ORDER BY e.xid, e.seq`, w.ID, limit)
		if err != nil {
			return nil, fmt.Errorf("next events: %w", err)
		}
		defer rows.Close()
		var out []*store.Event
		for rows.Next() {
			var (
				e    store.Event
				kind int16
			)
			if e.Feedback, err = scanFeedbackWith(rows, &e.Seq, &e.ID, &kind, &e.At); err != nil {
				return nil, err
			}
			e.Kind, e.At = store.EventKind(kind), e.At.UTC()
			out = append(out, &e)
		}
		return out, rows.Err()
	})
}

// FinishEvents implements store.Store. It locks the webhook's row and
// checks the lease under the lock, so a claim that took the webhook over
// (the lease had expired) and this never both move its position.
func (s *Store) FinishEvents(ctx context.Context, w *store.Webhook, skipped []*store.Event, a *store.Attempt, keepUntil time.Time) (bool, error) {
	var held bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		held = false
		err := tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1 AND lease = $2 AND lease <> '' FOR UPDATE`, w.ID, w.Lease).Scan(new(int))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		held = true
		f := outbox.FinishOf(w, skipped, a, keepUntil)
		if a != nil {
			if err := tx.QueryRow(ctx, `INSERT INTO webhook_attempts (webhook_id, event_id, event_seq, kind, n, at, outcome,
					status, latency_us, error, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
				w.ID, a.EventID, a.EventSeq, int16(a.Kind), a.N, a.At, string(a.Outcome), a.Status,
				a.Latency.Microseconds(), a.Error, a.NextAttemptAt).Scan(&a.Seq); err != nil {
				return err
			}
		}
		// The position is the passed event's (xid, seq): in walk order, a
		// later event may have the smaller seq.
		_, err = tx.Exec(ctx, `UPDATE webhooks AS w SET
				position_xid = coalesce(e.xid, w.position_xid), position_seq = coalesce(e.seq, w.position_seq),
				attempts = CASE WHEN $2 THEN $3 ELSE w.attempts END,
				next_attempt_at = CASE WHEN $2 THEN coalesce($4, '-infinity'::timestamptz) ELSE w.next_attempt_at END,
				state = CASE WHEN $5 THEN $6 ELSE w.state END,
				state_reason = CASE WHEN $5 THEN $7 ELSE w.state_reason END,
				lease = $8, lease_until = coalesce($9, '-infinity'::timestamptz)
			FROM (SELECT 1) AS one LEFT JOIN webhook_events AS e ON e.seq = $1
			WHERE w.id = $10`, f.Past, f.Counts, f.Attempts, orNil(f.NextAttemptAt), f.Disable, string(store.WebhookDisabled),
			f.Reason, f.Lease, orNil(f.LeaseUntil), w.ID)
		return err
	})
	return held, err
}

// attemptColumns are the columns scanAttempt reads.
const attemptColumns = `seq, webhook_id::text, event_id::text, kind, event_seq, n, at, outcome, status, latency_us, error, next_attempt_at`

// Attempts implements store.Store.
func (s *Store) Attempts(ctx context.Context, workspaceID, webhookID string, limit int, before int64, failed bool) ([]*store.Attempt, error) {
	var out []*store.Attempt
	err := s.inSnapshot(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE workspace_id = $1 AND id = $2`, workspaceID, webhookID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.Errorf(store.ENOTFOUND, "webhook not found")
		}
		rows, err := tx.Query(ctx, `SELECT `+attemptColumns+` FROM webhook_attempts
			WHERE webhook_id = $1 AND ($2 <= 0 OR seq < $2)`+outbox.FailedOnly(failed)+` ORDER BY seq DESC LIMIT $3`, webhookID, before, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanAttempt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Redeliver implements store.Store. The copy is written in a transaction
// of its own, so its xid, and its place in the webhook's walk, follow
// every event the webhook may have passed.
func (s *Store) Redeliver(ctx context.Context, workspaceID, webhookID, eventID string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_events (id, workspace_id, webhook_id, kind, at, feedback_id, trace_id, value, weight,
				metadata, created_at, updated_at)
			SELECT e.id, e.workspace_id, w.id, e.kind, e.at, e.feedback_id, e.trace_id, e.value, e.weight, e.metadata, e.created_at, e.updated_at
			FROM webhooks w JOIN webhook_events e ON e.seq = (
				SELECT event_seq FROM webhook_attempts WHERE webhook_id = w.id AND event_id = $1 ORDER BY seq DESC LIMIT 1)
			WHERE w.workspace_id = $2 AND w.id = $3`, eventID, workspaceID, webhookID)
		return affectedOne(tag, err, "no attempt of this webhook at event %s is kept", eventID)
	})
}

// TrimWebhooks implements store.Store, in transactions of
// outbox.TrimRows rows. An event is kept while a webhook that is not
// disabled has yet to walk past it: one of its workspace's, or for a
// redelivery the one it is for.
func (s *Store) TrimWebhooks(ctx context.Context, before time.Time) error {
	for _, q := range []string{
		`DELETE FROM webhook_attempts WHERE seq IN (SELECT seq FROM webhook_attempts WHERE at < $1 LIMIT $2)`,
		`DELETE FROM webhook_events WHERE seq IN (SELECT e.seq FROM webhook_events e WHERE e.at < $1 AND NOT EXISTS (
			SELECT 1 FROM webhooks w WHERE w.state <> 'disabled' AND ` + pastPosition + `) LIMIT $2)`,
	} {
		err := outbox.Trim(func(limit int) (n int64, err error) {
			err = s.inTx(ctx, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, q, before, limit)
				n = tag.RowsAffected()
				return err
			})
			return n, err
		})
		if err != nil {
			return fmt.Errorf("trim webhooks: %w", err)
		}
	}
	return nil
}

// WebhookBacklog implements store.Store.
func (s *Store) WebhookBacklog(ctx context.Context) (int64, time.Time, error) {
	type backlog struct {
		n      int64
		oldest *time.Time
	}
	b, err := view(s, func(pool *pgxpool.Pool) (b backlog, err error) {
		err = pool.QueryRow(ctx, `SELECT coalesce(sum(e.n), 0)::bigint, min(e.oldest) FROM webhooks w
			CROSS JOIN LATERAL (SELECT count(*) AS n, min(e.at) AS oldest FROM webhook_events e WHERE `+pastPosition+`) AS e
			WHERE w.state <> 'disabled'`).Scan(&b.n, &b.oldest)
		if err != nil {
			err = fmt.Errorf("webhook backlog: %w", err)
		}
		return b, err
	})
	if err != nil || b.oldest == nil {
		return b.n, time.Time{}, err
	}
	return b.n, b.oldest.UTC(), nil
}

// scanWebhook reads a row of webhookColumns; ENOTFOUND when there is none.
func scanWebhook(row pgx.Row) (*store.Webhook, error) {
	var (
		w      store.Webhook
		kinds  string
		filter []byte
		state  string
		next   *time.Time
	)
	err := row.Scan(&w.ID, &w.WorkspaceID, &w.URL, &kinds, &filter, &w.Description, &w.Secret, &w.PreviousSecret,
		&w.PreviousUntil, &state, &w.StateReason, &w.Attempts, &next, &w.Lease, &w.CreatedAt, &w.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "webhook not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan webhook: %w", err)
	}
	if err := outbox.Decode(&w, kinds, filter); err != nil {
		return nil, err
	}
	w.State = store.WebhookState(state)
	if w.PreviousUntil != nil {
		*w.PreviousUntil = w.PreviousUntil.UTC()
	}
	if next != nil {
		w.NextAttemptAt = next.UTC()
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return &w, nil
}

// scanWebhooks reads every row of a query of webhookColumns.
func scanWebhooks(rows pgx.Rows, err error) ([]*store.Webhook, error) {
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	var out []*store.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// scanAttempt reads a row of attemptColumns.
func scanAttempt(row pgx.CollectableRow) (*store.Attempt, error) {
	var (
		a             store.Attempt
		kind          int16
		outcome       string
		latencyMicros int64
	)
	if err := row.Scan(&a.Seq, &a.WebhookID, &a.EventID, &kind, &a.EventSeq, &a.N, &a.At, &outcome, &a.Status, &latencyMicros,
		&a.Error, &a.NextAttemptAt); err != nil {
		return nil, fmt.Errorf("scan attempt: %w", err)
	}
	a.Kind, a.Outcome, a.Latency, a.At = store.EventKind(kind), store.Outcome(outcome), time.Duration(latencyMicros)*time.Microsecond, a.At.UTC()
	if a.NextAttemptAt != nil {
		*a.NextAttemptAt = a.NextAttemptAt.UTC()
	}
	return &a, nil
}

// orNil is t, or nil for the zero time: a webhook's "none" of
// next_attempt_at and lease_until, which the statements spell
// -infinity.
func orNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
