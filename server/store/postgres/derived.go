package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Each write locks the traces it touches (writeTx.Lock). Traces share
// traceLockBuckets locks: that bounds the locks a bulk of 1000 holds,
// which PostgreSQL keeps in a shared table sized by
// max_locks_per_transaction (64 per connection by default).
const (
	traceLockSpace   = 0x66656564 // "feed": advisory locks of this key space are feedbackd's
	keyLockSpace     = 0x6b657973 // "keys": the locks of stored rows' ids and tokens
	traceLockBuckets = 1024
)

// rowColumns are the columns a rollup.Row is read from (scanRow).
const rowColumns = feedbackColumns + `, coalesce(token_id, ''), m_user, m_organisation, m_prompt, m_environment, m_strings, m_first_bits`

// traceLocks are the sorted, distinct advisory lock keys of traces.
func traceLocks(traces []rollup.TraceRef) []int32 {
	keys := make([]int32, 0, len(traces))
	for _, t := range traces {
		h := fnv.New64a()
		h.Write([]byte(t.WorkspaceID))
		h.Write([]byte{0})
		h.Write([]byte(t.TraceID))
		keys = append(keys, int32(h.Sum64()%traceLockBuckets))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// write runs writes writes of rows feedback rows in one transaction: fn
// does them through rollup's write algorithm, and the statements it queues
// are sent together with those that move the derived data by its deltas
// and extra ones (idempotency keys), whose results check reads: one round
// trip. The commit observers are told about it.
func (s *Store) write(ctx context.Context, writes, rows int, fn func(w *writeTx, d *rollup.Deltas) error,
	extra func(b *pgx.Batch), check func(br pgx.BatchResults) error) (err error) {
	defer func(start time.Time) { s.ObserveCommit(writes, rows, time.Since(start), err) }(time.Now())
	if extra == nil {
		extra, check = func(*pgx.Batch) {}, func(pgx.BatchResults) error { return nil }
	}
	for {
		var keys []string
		if p := s.modelKeys.Load(); p != nil {
			keys = *p
		}
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			w := &writeTx{tx: tx, b: &pgx.Batch{}}
			d := rollup.Deltas{ModelKeys: keys}
			if err := fn(w, &d); err != nil {
				return err
			}
			queueDeltas(w.b, &d)
			if s.RecordsEvents() {
				queueEvents(w.b, d.Events(time.Now()))
			}
			return w.send(ctx, func(b *pgx.Batch) {
				extra(b)
				b.Queue(modelKeysQuery)
			}, func(br pgx.BatchResults) error {
				if err := check(br); err != nil {
					return err
				}
				return s.checkModelKeys(br, keys)
			})
		})
		// Another process set other model keys meanwhile: this store
		// has them now.
		if !errors.Is(err, errModelKeysChanged) {
			return err
		}
	}
}

// writeTx is a transaction as rollup's write algorithm sees it. Writes
// wait in b, sent before the next read or by the store's write.
type writeTx struct {
	tx pgx.Tx
	b  *pgx.Batch
}

var _ rollup.Tx = (*writeTx)(nil)

// Lock takes a transaction-level advisory lock on every trace, in one
// sorted round, so that no two writes of one trace overlap, on this
// replica or another: whether a row is its trace's first depends on the
// trace's other rows. Traces share traceLockBuckets locks.
func (w *writeTx) Lock(_ context.Context, traces []rollup.TraceRef) (bool, error) {
	w.b.Queue(`SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int[]) AS k`, traceLockSpace, traceLocks(traces))
	return true, nil
}

// LockKeys locks the keys as Lock the traces, in a key space of their
// own, so that a key's lock never waits for a trace's.
func (w *writeTx) LockKeys(_ context.Context, keys []rollup.RowKey, byToken bool) error {
	kind := "id"
	if byToken {
		kind = "token"
	}
	refs := make([]rollup.TraceRef, len(keys))
	for i, k := range keys {
		refs[i] = rollup.TraceRef{WorkspaceID: k.WorkspaceID, TraceID: kind + "\x00" + k.Key}
	}
	w.b.Queue(`SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int[]) AS k`, keyLockSpace, traceLocks(refs))
	return nil
}

// Rows reads the rows as the statements before them left them: the
// writes that wait are sent first.
func (w *writeTx) Rows(ctx context.Context, keys []rollup.RowKey, byToken bool) ([]*rollup.Row, error) {
	match := "f.id = k.key::uuid"
	if byToken {
		match = "f.token_id = k.key"
	}
	wss, ks := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		wss[i], ks[i] = k.WorkspaceID, k.Key
	}
	out := make([]*rollup.Row, len(keys))
	err := w.read(ctx, func(rows pgx.Rows) error {
		for rows.Next() {
			var i int
			row, err := scanRow(rows, &i)
			if err != nil {
				return err
			}
			out[i-1] = &row
		}
		return rows.Err()
	}, `SELECT `+rowColumns+`, k.i::int FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS k (ws, key, i)
		JOIN feedback AS f ON f.workspace_id = k.ws AND `+match, wss, ks)
	return out, err
}

func (w *writeTx) Earliest(ctx context.Context, probes []rollup.Probe) ([][]rollup.TraceEntry, error) {
	n := len(probes)
	wss, traces, metaKeys, metaValues, limits := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int32, n)
	for i, p := range probes {
		wss[i], traces[i], metaKeys[i], metaValues[i], limits[i] = p.WorkspaceID, p.TraceID, p.MetaKey, p.MetaValue, int32(p.N)
	}
	out := make([][]rollup.TraceEntry, n)
	err := w.read(ctx, func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				i  int
				at time.Time
				id string
			)
			if err := rows.Scan(&i, &at, &id); err != nil {
				return err
			}
			out[i-1] = append(out[i-1], rollup.TraceEntry{TraceMetaValue: probes[i-1].TraceMetaValue, CreatedAt: at.UnixMicro(), ID: id})
		}
		return rows.Err()
	}, `SELECT p.i::int, t.created_at, t.id::text
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[]) WITH ORDINALITY AS p (ws, trace, meta_key, meta_value, n, i)
		CROSS JOIN LATERAL (SELECT created_at, id FROM trace_meta_values
			WHERE workspace_id = p.ws AND trace_id = p.trace AND meta_key = p.meta_key AND meta_value = p.meta_value
			ORDER BY created_at, id LIMIT p.n) AS t`, wss, traces, metaKeys, metaValues, limits)
	return out, err
}

// Matching reads the rows with the listing's own statement, after the
// writes that wait (the lock of their traces).
func (w *writeTx) Matching(ctx context.Context, workspaceID string, f store.Filter) ([]rollup.Row, error) {
	query, args, err := listQuery(rowColumns, workspaceID, f, -1)
	if err != nil {
		return nil, err
	}
	var out []rollup.Row
	err = w.read(ctx, func(rows pgx.Rows) error {
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	}, query, args...)
	return out, err
}

// read sends the writes that wait and then q, and hands q's rows to
// scan.
func (w *writeTx) read(ctx context.Context, scan func(pgx.Rows) error, q string, args ...any) error {
	return w.send(ctx, func(b *pgx.Batch) { b.Queue(q, args...) }, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		return scan(rows)
	})
}

// send sends the writes that wait, and what then queues after them, in
// one round trip; then reads the results of what queued.
func (w *writeTx) send(ctx context.Context, then func(*pgx.Batch), results func(pgx.BatchResults) error) error {
	b := w.b
	w.b = &pgx.Batch{}
	n := b.Len()
	then(b)
	br := w.tx.SendBatch(ctx, b)
	var err error
	for range n {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if err == nil {
		err = results(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// Write queues the statements of a change's writes.
func (w *writeTx) Write(_ context.Context, ws rollup.Writes) error {
	b := w.b
	if len(ws.Inserts) > 0 {
		b.Queue(insertFeedback, rowArgs(ws.Inserts)...)
	}
	if len(ws.Updates) > 0 {
		b.Queue(`UPDATE feedback AS f SET trace_id = u.trace_id, value = u.value, weight = u.weight, metadata = u.metadata, updated_at = u.updated_at,
				m_user = u.m_user, m_organisation = u.m_organisation, m_prompt = u.m_prompt, m_environment = u.m_environment,
				m_strings = u.m_strings, m_first_bits = u.m_first_bits
			FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::float8[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[],
				$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::smallint[], $15::smallint[])
				AS u (id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id,
					m_user, m_organisation, m_prompt, m_environment, m_strings, m_first_bits)
			WHERE f.id = u.id`, rowArgs(ws.Updates)...)
	}
	if len(ws.Deletes) > 0 {
		ids := make([]string, len(ws.Deletes))
		for i, r := range ws.Deletes {
			ids[i] = r.ID
		}
		b.Queue(`DELETE FROM feedback WHERE id = ANY($1::uuid[])`, ids)
	}
	if len(ws.Flags) > 0 {
		ids, set, clear := make([]string, len(ws.Flags)), make([]int16, len(ws.Flags)), make([]int16, len(ws.Flags))
		for i, f := range ws.Flags {
			ids[i], set[i], clear[i] = f.ID, int16(f.Set), int16(f.Clear)
		}
		b.Queue(`UPDATE feedback AS f SET m_first_bits = (f.m_first_bits | u.set) & ~u.clear
			FROM unnest($1::uuid[], $2::smallint[], $3::smallint[]) AS u (id, set, clear) WHERE f.id = u.id`, ids, set, clear)
	}
	if len(ws.DropEntries) > 0 {
		b.Queue(`DELETE FROM trace_meta_values WHERE (workspace_id, trace_id, meta_key, meta_value, created_at, id) IN (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::uuid[]))`, entryArgs(ws.DropEntries)...)
	}
	if len(ws.AddEntries) > 0 {
		b.Queue(`INSERT INTO trace_meta_values (workspace_id, trace_id, meta_key, meta_value, created_at, id)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::uuid[])`, entryArgs(ws.AddEntries)...)
	}
	return nil
}

func entryArgs(es []rollup.TraceEntry) []any {
	n := len(es)
	wss, traces, metaKeys, metaValues, ids, at := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	for i, e := range es {
		wss[i], traces[i], metaKeys[i], metaValues[i], ids[i], at[i] = e.WorkspaceID, e.TraceID, e.MetaKey, e.MetaValue, e.ID, time.UnixMicro(e.CreatedAt)
	}
	return []any{wss, traces, metaKeys, metaValues, at, ids}
}

// insertFeedback inserts the rows of rowArgs' arrays.
const insertFeedback = `INSERT INTO feedback (id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id,
		m_user, m_organisation, m_prompt, m_environment, m_strings, m_first_bits)
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::float8[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[],
		$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::smallint[], $15::smallint[])`

// rowArgs are the arrays of insertFeedback's columns for rows.
func rowArgs(rows []rollup.Row) []any {
	n := len(rows)
	ids, wss, traces, metas := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	values, strs, firstBits := make([]int16, n), make([]int16, n), make([]int16, n)
	weights := make([]float64, n)
	created, updated := make([]time.Time, n), make([]time.Time, n)
	tokens := make([]*string, n)
	var special [4][]*string
	for k := range special {
		special[k] = make([]*string, n)
	}
	for i, r := range rows {
		meta, _ := r.EncodedMetadata() // checked by the caller
		ids[i], wss[i], traces[i], metas[i] = r.ID, r.WorkspaceID, r.TraceID, meta
		values[i], weights[i], created[i], updated[i] = int16(r.Value), r.Weight, r.CreatedAt, r.UpdatedAt
		if r.TokenID != "" {
			tokens[i] = &r.TokenID
		}
		sp := r.Special()
		for k := range special {
			special[k][i] = sp.MetaValues[k]
		}
		strs[i], firstBits[i] = int16(sp.Strings), int16(r.FirstBits)
	}
	return []any{ids, wss, traces, values, weights, metas, created, updated, tokens,
		special[0], special[1], special[2], special[3], strs, firstBits}
}

// queueDeltas queues the statements that move the derived structures by
// d, one per structure (and one more to drop the emptied), in key order,
// so that concurrent writes lock shared rows in one order.
func queueDeltas(b *pgx.Batch, d *rollup.Deltas) {
	if rs := d.Rollups(); len(rs) > 0 {
		n := len(rs)
		wss, metaKeys, metaValues := make([]string, n), make([]string, n), make([]string, n)
		grains, slots, ns := make([]int64, n), make([]int64, n), make([]int64, n)
		values, sums := make([]int16, n), make([]float64, n)
		for i, r := range rs {
			wss[i], metaKeys[i], grains[i], slots[i], metaValues[i], values[i], ns[i], sums[i] = r.WorkspaceID, r.MetaKey, r.Grain, r.Slot, r.MetaValue, int16(r.Value), r.N, r.SumWeighted
		}
		b.Queue(`INSERT INTO rollups AS r (workspace_id, meta_key, grain, slot, meta_value, value, n, sum_weighted)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::smallint[], $7::bigint[], $8::float8[])
			ON CONFLICT (workspace_id, grain, slot, meta_key, meta_value, value) DO UPDATE SET
				n = r.n + excluded.n, sum_weighted = r.sum_weighted + excluded.sum_weighted`,
			wss, metaKeys, grains, slots, metaValues, values, ns, sums)
		if d.Shrinks() {
			b.Queue(`DELETE FROM rollups WHERE n = 0 AND (workspace_id, meta_key, grain, slot, meta_value, value) IN (
				SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::smallint[]))`,
				wss, metaKeys, grains, slots, metaValues, values)
		}
	}
	if gs := d.Groups(); len(gs) > 0 {
		n := len(gs)
		wss, metaKeys, metaValues := make([]string, n), make([]string, n), make([]string, n)
		grains, slots, ns, traces := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		sums := make([]float64, n)
		for i, g := range gs {
			wss[i], metaKeys[i], grains[i], slots[i], metaValues[i], ns[i], traces[i], sums[i] = g.WorkspaceID, g.MetaKey, g.Grain, g.Slot, g.MetaValue, g.N, g.Traces, g.SumWeighted
		}
		b.Queue(`INSERT INTO group_rollups AS g (workspace_id, meta_key, grain, slot, meta_value, n, traces, sum_weighted)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::float8[])
			ON CONFLICT (workspace_id, grain, slot, meta_key, meta_value) DO UPDATE SET
				n = g.n + excluded.n, traces = g.traces + excluded.traces, sum_weighted = g.sum_weighted + excluded.sum_weighted`,
			wss, metaKeys, grains, slots, metaValues, ns, traces, sums)
		if d.Shrinks() {
			b.Queue(`DELETE FROM group_rollups WHERE n = 0 AND (workspace_id, meta_key, grain, slot, meta_value) IN (
				SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[]))`,
				wss, metaKeys, grains, slots, metaValues)
		}
	}
}

// queueEvents queues the statement that records a change's events for
// webhooks (store.Webhooks), in the order given, for the workspaces that
// have a webhook that is not disabled. It is queued with the write's
// derived data, sent in the write's last round trip, and committed or
// rolled back with it.
func queueEvents(b *pgx.Batch, events []store.Event) {
	n := len(events)
	if n == 0 {
		return
	}
	ids, wss, fids, traces, metas := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	kinds, values := make([]int16, n), make([]int16, n)
	weights := make([]float64, n)
	at, created, updated := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	for i, e := range events {
		f := e.Feedback
		meta, _ := f.EncodedMetadata() // checked by the write
		ids[i], wss[i], fids[i], traces[i], metas[i] = e.ID, f.WorkspaceID, f.ID, f.TraceID, meta
		kinds[i], values[i], weights[i], at[i], created[i], updated[i] = int16(e.Kind), int16(f.Value), f.Weight, e.At, f.CreatedAt, f.UpdatedAt
	}
	// Sorted by ordinality: the seq of each row is taken as it is
	// inserted, in the order given.
	b.Queue(`INSERT INTO webhook_events (id, workspace_id, kind, at, feedback_id, trace_id, value, weight, metadata, created_at, updated_at)
		SELECT e.id, e.workspace_id, e.kind, e.at, e.feedback_id, e.trace_id, e.value, e.weight, e.metadata, e.created_at, e.updated_at
		FROM unnest($1::uuid[], $2::uuid[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::text[], $7::smallint[], $8::float8[],
			$9::jsonb[], $10::timestamptz[], $11::timestamptz[])
			WITH ORDINALITY AS e (id, workspace_id, kind, at, feedback_id, trace_id, value, weight, metadata, created_at, updated_at, i)
		WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.workspace_id = e.workspace_id AND w.state <> 'disabled')
		ORDER BY e.i`, ids, wss, kinds, at, fids, traces, values, weights, metas, created, updated)
}

// scanRow reads a row of rowColumns.
func scanRow(row pgx.Row, extra ...any) (rollup.Row, error) {
	r := rollup.Row{Stored: &rollup.Special{}}
	sp := r.Stored
	var strs, firstBits int16
	var err error
	r.Feedback, err = scanFeedbackWith(row, append([]any{&r.TokenID, &sp.MetaValues[0], &sp.MetaValues[1], &sp.MetaValues[2], &sp.MetaValues[3], &strs, &firstBits}, extra...)...)
	sp.Strings, r.FirstBits = int(strs), int(firstBits)
	return r, err
}
