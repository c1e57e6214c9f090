package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/outbox"
)

// webhookColumns are the columns scanWebhook reads, of webhooks (alone
// in the statement: UPDATE's RETURNING takes no table name).
const webhookColumns = `id, workspace_id, url, kinds, filter, description, secret, previous_secret,
	previous_until, state, state_reason, attempts, next_attempt_at, lease, created_at, updated_at`

// pastPosition selects the events of webhook w's workspace it has yet to
// walk past, as store.Webhooks' NextEvents says. The one writer commits
// in seq order, so xid is always 0 here.
const pastPosition = `e.workspace_id = w.workspace_id AND (e.xid, e.seq) > (w.position_xid, w.position_seq)
	AND e.seq > w.start_seq AND (e.webhook_id IS NULL OR e.webhook_id = w.id)`

// CreateWebhook implements store.Store.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	kinds, filter, err := outbox.Encode(w)
	if err != nil {
		return err
	}
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, workspace_id, url, kinds, filter, description, secret,
				previous_secret, previous_until, state, state_reason, start_seq, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) FROM webhook_events), ?, ?)`,
			w.ID, w.WorkspaceID, w.URL, kinds, filter, w.Description, w.Secret, w.PreviousSecret, optMicros(w.PreviousUntil),
			string(w.State), w.StateReason, micros(w.CreatedAt), micros(w.UpdatedAt))
		return err
	})
}

// Webhook implements store.Store.
func (s *Store) Webhook(ctx context.Context, workspaceID, id string) (*store.Webhook, error) {
	return view(s, func(db *sql.DB) (*store.Webhook, error) {
		return scanWebhook(db.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.workspace_id = ? AND w.id = ?`,
			workspaceID, id))
	})
}

// ListWebhooks implements store.Store.
func (s *Store) ListWebhooks(ctx context.Context, workspaceID string) ([]*store.Webhook, error) {
	return view(s, func(db *sql.DB) ([]*store.Webhook, error) {
		return scanWebhooks(db.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w
			WHERE ? = '' OR w.workspace_id = ? ORDER BY w.created_at, w.id`, workspaceID, workspaceID))
	})
}

// UpdateWebhook implements store.Store.
func (s *Store) UpdateWebhook(ctx context.Context, workspaceID, id string, change func(*store.Webhook) error) (*store.Webhook, error) {
	var out *store.Webhook
	err := s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		w, err := scanWebhook(tx.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.workspace_id = ? AND w.id = ?`,
			workspaceID, id))
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
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET url = ?, kinds = ?, filter = ?, description = ?, secret = ?,
				previous_secret = ?, previous_until = ?, state = ?, state_reason = ?, updated_at = ? WHERE id = ?`,
			w.URL, kinds, filter, w.Description, w.Secret, w.PreviousSecret, optMicros(w.PreviousUntil),
			string(w.State), w.StateReason, micros(w.UpdatedAt), w.ID)
		if err == nil && was == store.WebhookDisabled && w.State != store.WebhookDisabled {
			// Made active again: it starts over as a new webhook does, so
			// that what other webhooks had recorded meanwhile is not its.
			_, err = tx.ExecContext(ctx, `UPDATE webhooks SET start_seq = (SELECT coalesce(max(seq), 0) FROM webhook_events),
					position_xid = 0, position_seq = 0, attempts = 0, next_attempt_at = 0 WHERE id = ?`, w.ID)
		}
		out = w
		return err
	})
	return out, err
}

// DeleteWebhook implements store.Store.
func (s *Store) DeleteWebhook(ctx context.Context, workspaceID, id string) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		if err := affectedOne(res, err, "webhook not found"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_attempts WHERE webhook_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE webhook_id = ?`, id)
		return err
	})
}

// ClaimWebhooks implements store.Store. The one writer runs it: no two
// claims overlap.
func (s *Store) ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]*store.Webhook, error) {
	lease := uuid.NewString()
	var out []*store.Webhook
	err := s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		var err error
		out, err = scanWebhooks(tx.QueryContext(ctx, `UPDATE webhooks SET lease = ?, lease_until = ? WHERE id IN (
				SELECT w.id FROM webhooks w WHERE w.state = 'active' AND w.lease_until <= ? AND w.next_attempt_at <= ?
					AND EXISTS (SELECT 1 FROM webhook_events e WHERE `+pastPosition+`)
				ORDER BY w.next_attempt_at, w.id LIMIT ?)
			RETURNING `+webhookColumns, lease, micros(until), micros(now), micros(now), limit))
		return err
	})
	return out, err
}

// NextEvents implements store.Store.
func (s *Store) NextEvents(ctx context.Context, w *store.Webhook, limit int) ([]*store.Event, error) {
	return view(s, func(db *sql.DB) ([]*store.Event, error) {
		rows, err := db.QueryContext(ctx, `SELECT e.feedback_id, e.workspace_id, e.trace_id, e.value, e.weight, e.metadata,
				e.created_at, e.updated_at, e.seq, e.id, e.kind, e.at
			FROM webhooks w JOIN webhook_events e ON `+pastPosition+`
			WHERE w.id = ? ORDER BY e.xid, e.seq LIMIT ?`, w.ID, limit)
		if err != nil {
			return nil, fmt.Errorf("next events: %w", err)
		}
		defer rows.Close()
		var out []*store.Event
		for rows.Next() {
			var (
				e    store.Event
				at   int64
				kind int
			)
			if e.Feedback, err = scanFeedbackWith(rows, &e.Seq, &e.ID, &kind, &at); err != nil {
				return nil, err
			}
			e.Kind, e.At = store.EventKind(kind), time.UnixMicro(at).UTC()
			out = append(out, &e)
		}
		return out, rows.Err()
	})
}

// FinishEvents implements store.Store.
func (s *Store) FinishEvents(ctx context.Context, w *store.Webhook, skipped []*store.Event, a *store.Attempt, keepUntil time.Time) (bool, error) {
	var held bool
	err := s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		held = false
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = ? AND lease = ? AND lease <> ''`, w.ID, w.Lease).Scan(new(int))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		held = true
		f := outbox.FinishOf(w, skipped, a, keepUntil)
		if a != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (webhook_id, event_id, event_seq, kind, n, at, outcome,
					status, latency_us, error, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				w.ID, a.EventID, a.EventSeq, int(a.Kind), a.N, micros(a.At), string(a.Outcome), a.Status,
				a.Latency.Microseconds(), a.Error, optMicros(a.NextAttemptAt)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET
				position_xid = coalesce((SELECT xid FROM webhook_events WHERE seq = ?1), position_xid),
				position_seq = CASE WHEN ?1 > 0 THEN ?1 ELSE position_seq END,
				attempts = CASE WHEN ?2 THEN ?3 ELSE attempts END,
				next_attempt_at = CASE WHEN ?2 THEN ?4 ELSE next_attempt_at END,
				state = CASE WHEN ?5 THEN ?6 ELSE state END,
				state_reason = CASE WHEN ?5 THEN ?7 ELSE state_reason END,
				lease = ?8, lease_until = ?9
			WHERE id = ?10`, f.Past, f.Counts, f.Attempts, zeroMicros(f.NextAttemptAt), f.Disable, string(store.WebhookDisabled),
			f.Reason, f.Lease, zeroMicros(f.LeaseUntil), w.ID)
		return err
	})
	return held, err
}

// Attempts implements store.Store.
func (s *Store) Attempts(ctx context.Context, workspaceID, webhookID string, limit int, before int64, failed bool) ([]*store.Attempt, error) {
	if _, err := s.Webhook(ctx, workspaceID, webhookID); err != nil {
		return nil, err
	}
	return view(s, func(db *sql.DB) ([]*store.Attempt, error) {
		rows, err := db.QueryContext(ctx, `SELECT seq, webhook_id, event_id, event_seq, kind, n, at, outcome, status, latency_us,
				error, next_attempt_at
			FROM webhook_attempts WHERE webhook_id = ? AND (? <= 0 OR seq < ?)`+outbox.FailedOnly(failed)+` ORDER BY seq DESC LIMIT ?`,
			webhookID, before, before, limit)
		if err != nil {
			return nil, fmt.Errorf("webhook attempts: %w", err)
		}
		defer rows.Close()
		var out []*store.Attempt
		for rows.Next() {
			var (
				a             store.Attempt
				kind          int
				at, latency   int64
				outcome       string
				nextAttemptAt sql.NullInt64
			)
			if err := rows.Scan(&a.Seq, &a.WebhookID, &a.EventID, &a.EventSeq, &kind, &a.N, &at, &outcome, &a.Status, &latency,
				&a.Error, &nextAttemptAt); err != nil {
				return nil, fmt.Errorf("scan webhook attempt: %w", err)
			}
			a.Kind, a.At, a.Outcome = store.EventKind(kind), time.UnixMicro(at).UTC(), store.Outcome(outcome)
			a.Latency, a.NextAttemptAt = time.Duration(latency)*time.Microsecond, fromNull(nextAttemptAt)
			out = append(out, &a)
		}
		return out, rows.Err()
	})
}

// Redeliver implements store.Store.
func (s *Store) Redeliver(ctx context.Context, workspaceID, webhookID, eventID string) error {
	return s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, workspace_id, webhook_id, kind, at, feedback_id, trace_id,
				value, weight, metadata, created_at, updated_at)
			SELECT e.id, e.workspace_id, w.id, e.kind, e.at, e.feedback_id, e.trace_id, e.value, e.weight, e.metadata, e.created_at, e.updated_at
			FROM webhooks w JOIN webhook_events e ON e.seq = (
				SELECT event_seq FROM webhook_attempts WHERE webhook_id = w.id AND event_id = ? ORDER BY seq DESC LIMIT 1)
			WHERE w.workspace_id = ? AND w.id = ?`, eventID, workspaceID, webhookID)
		return affectedOne(res, err, "no attempt of this webhook at event %s is kept", eventID)
	})
}

// TrimWebhooks implements store.Store, in transactions of
// outbox.TrimRows rows, so that feedback writes go on between them.
func (s *Store) TrimWebhooks(ctx context.Context, before time.Time) error {
	for _, q := range []string{
		`DELETE FROM webhook_attempts WHERE seq IN (SELECT seq FROM webhook_attempts WHERE at < ?1 LIMIT ?2)`,
		`DELETE FROM webhook_events WHERE seq IN (SELECT e.seq FROM webhook_events e WHERE e.at < ?1 AND NOT EXISTS (
			SELECT 1 FROM webhooks w WHERE w.state <> 'disabled' AND ` + pastPosition + `) LIMIT ?2)`,
	} {
		err := outbox.Trim(func(limit int) (n int64, err error) {
			err = s.do(ctx, func(ctx context.Context, tx *sql.Conn) error {
				res, err := tx.ExecContext(ctx, q, micros(before), limit)
				if err == nil {
					n, err = res.RowsAffected()
				}
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
		oldest time.Time
	}
	b, err := view(s, func(db *sql.DB) (backlog, error) {
		var (
			b      backlog
			oldest sql.NullInt64
		)
		err := db.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0), min(oldest) FROM (
				SELECT (SELECT count(*) FROM webhook_events e WHERE `+pastPosition+`) AS n,
					(SELECT e.at FROM webhook_events e WHERE `+pastPosition+` ORDER BY e.xid, e.seq LIMIT 1) AS oldest
				FROM webhooks w WHERE w.state <> 'disabled')`).Scan(&b.n, &oldest)
		if err != nil {
			return b, fmt.Errorf("webhook backlog: %w", err)
		}
		if t := fromNull(oldest); t != nil {
			b.oldest = *t
		}
		return b, nil
	})
	return b.n, b.oldest, err
}

func scanWebhooks(rows *sql.Rows, err error) ([]*store.Webhook, error) {
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

func scanWebhook(row scanner) (*store.Webhook, error) {
	var (
		w                         store.Webhook
		kinds, filter, state      string
		previousUntil             sql.NullInt64
		nextAttempt, created, upd int64
	)
	err := row.Scan(&w.ID, &w.WorkspaceID, &w.URL, &kinds, &filter, &w.Description, &w.Secret, &w.PreviousSecret,
		&previousUntil, &state, &w.StateReason, &w.Attempts, &nextAttempt, &w.Lease, &created, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Errorf(store.ENOTFOUND, "webhook not found")
	}
	if err != nil {
		return nil, fmt.Errorf("scan webhook: %w", err)
	}
	if err := outbox.Decode(&w, kinds, []byte(filter)); err != nil {
		return nil, err
	}
	w.PreviousUntil, w.State = fromNull(previousUntil), store.WebhookState(state)
	if nextAttempt > 0 {
		w.NextAttemptAt = time.UnixMicro(nextAttempt).UTC()
	}
	w.CreatedAt, w.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(upd).UTC()
	return &w, nil
}

// zeroMicros is t in Unix microseconds, 0 for the zero time: a
// webhook's "none" of next_attempt_at and lease_until.
func zeroMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}
