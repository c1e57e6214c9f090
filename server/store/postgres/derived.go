package postgres

import (
	"cmp"
	"context"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Whether a row is its trace's first with a value depends on the trace's
// other rows, which another transaction, on this replica or another, may be
// changing at the same moment: each write holds a transaction-level
// advisory lock on every trace it touches, taken in one sorted round
// before anything else, so that no two writes of one trace overlap. Traces
// share traceLockBuckets locks: that bounds the locks a bulk of 1000
// holds, which PostgreSQL keeps in a shared table sized by
// max_locks_per_transaction (64 per connection by default).
const (
	traceLockSpace   = 0x66656564 // "feed": advisory locks of this key space are feedbackd's
	traceLockBuckets = 1024
)

// rowColumns are the columns a rollup.Row is read from (scanRow).
const rowColumns = feedbackColumns + `, coalesce(token_id, ''), m_user, m_organisation, m_prompt, m_environment, m_strings, m_firsts`

// traceRef names one trace.
type traceRef struct{ workspaceID, traceID string }

// traceLocks are the sorted, distinct advisory lock keys of traces.
func traceLocks(traces []traceRef) []int32 {
	keys := make([]int32, 0, len(traces))
	for _, t := range traces {
		h := fnv.New64a()
		h.Write([]byte(t.workspaceID))
		h.Write([]byte{0})
		h.Write([]byte(t.traceID))
		keys = append(keys, int32(h.Sum64()%traceLockBuckets))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// change runs one write of the rows of some traces in a transaction: it
// locks the traces, reads their rows, has edit say what they are to be,
// writes the difference and moves the derived data by it, and queues
// extra statements (idempotency keys) on the same round trip; check reads
// their results. A trace edit does not name is one it may not change.
func (s *Store) change(ctx context.Context, traces []traceRef, edit func(before []rollup.Row) ([]rollup.Row, error),
	extra func(b *pgx.Batch), check func(br pgx.BatchResults) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		wss, ids := make([]string, len(traces)), make([]string, len(traces))
		for i, t := range traces {
			wss[i], ids[i] = t.workspaceID, t.traceID
		}
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int[]) AS k`, traceLockSpace, traceLocks(traces))
		b.Queue(`SELECT `+rowColumns+` FROM feedback WHERE (workspace_id, trace_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))`, wss, ids)
		br := tx.SendBatch(ctx, b)
		_, err := br.Exec()
		var before []rollup.Row
		if err == nil {
			before, err = scanRows(br.Query())
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		after, err := edit(before)
		if err != nil {
			return err
		}
		var d rollup.Deltas
		w := rollup.Diff(before, after, &d)
		b = &pgx.Batch{}
		queueWrites(b, w)
		queueDeltas(b, &d)
		n := b.Len()
		if extra != nil {
			extra(b)
		}
		br = tx.SendBatch(ctx, b)
		for range n {
			if _, err = br.Exec(); err != nil {
				break
			}
		}
		if err == nil && check != nil {
			err = check(br)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// queueWrites queues the statements of a change's row writes.
func queueWrites(b *pgx.Batch, w rollup.Writes) {
	if len(w.Inserts) > 0 {
		b.Queue(insertFeedback, rowArgs(w.Inserts)...)
	}
	if len(w.Updates) > 0 {
		b.Queue(`UPDATE feedback AS f SET value = u.value, weight = u.weight, metadata = u.metadata, updated_at = u.updated_at,
				m_user = u.m_user, m_organisation = u.m_organisation, m_prompt = u.m_prompt, m_environment = u.m_environment,
				m_strings = u.m_strings, m_firsts = u.m_firsts
			FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::float8[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[],
				$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::smallint[], $15::smallint[])
				AS u (id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id,
					m_user, m_organisation, m_prompt, m_environment, m_strings, m_firsts)
			WHERE f.id = u.id`, rowArgs(w.Updates)...)
	}
	if len(w.Deletes) > 0 {
		ids := make([]string, len(w.Deletes))
		for i, r := range w.Deletes {
			ids[i] = r.ID
		}
		b.Queue(`DELETE FROM feedback WHERE id = ANY($1::uuid[])`, ids)
	}
}

// insertFeedback inserts the rows of rowArgs' arrays.
const insertFeedback = `INSERT INTO feedback (id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at, token_id,
		m_user, m_organisation, m_prompt, m_environment, m_strings, m_firsts)
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::float8[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[],
		$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::smallint[], $15::smallint[])`

// rowArgs are the arrays of insertFeedback's columns for rows.
func rowArgs(rows []rollup.Row) []any {
	n := len(rows)
	ids, wss, traces, metas := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	values, strs, firsts := make([]int16, n), make([]int16, n), make([]int16, n)
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
			special[k][i] = sp.Values[k]
		}
		strs[i], firsts[i] = int16(sp.Strings), int16(r.Firsts)
	}
	return []any{ids, wss, traces, values, weights, metas, created, updated, tokens,
		special[0], special[1], special[2], special[3], strs, firsts}
}

// queueDeltas queues the statements that move the derived structures by
// d, one per structure (and one more to drop the emptied), in key order,
// so that concurrent writes lock shared rows in one order.
func queueDeltas(b *pgx.Batch, d *rollup.Deltas) {
	if rs := d.Rollups(); len(rs) > 0 {
		n := len(rs)
		wss, dims, vals := make([]string, n), make([]string, n), make([]string, n)
		spans, slots, ns := make([]int64, n), make([]int64, n), make([]int64, n)
		scores, sums := make([]int16, n), make([]float64, n)
		for i, r := range rs {
			wss[i], dims[i], spans[i], slots[i], vals[i], scores[i], ns[i], sums[i] = r.WorkspaceID, r.Dim, r.Span, r.Slot, r.DimValue, int16(r.Score), r.N, r.SumWeighted
		}
		b.Queue(`INSERT INTO rollups AS r (workspace_id, dim, span, slot, dim_value, score, n, sum_weighted)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::smallint[], $7::bigint[], $8::float8[])
			ON CONFLICT (workspace_id, span, slot, dim, dim_value, score) DO UPDATE SET
				n = r.n + excluded.n, sum_weighted = r.sum_weighted + excluded.sum_weighted`,
			wss, dims, spans, slots, vals, scores, ns, sums)
		if d.Shrinks() {
			b.Queue(`DELETE FROM rollups WHERE n = 0 AND (workspace_id, dim, span, slot, dim_value, score) IN (
				SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::smallint[]))`,
				wss, dims, spans, slots, vals, scores)
		}
	}
	if gs := d.Groups(); len(gs) > 0 {
		n := len(gs)
		wss, keys, vals := make([]string, n), make([]string, n), make([]string, n)
		spans, slots, ns, firsts := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		sums := make([]float64, n)
		for i, g := range gs {
			wss[i], keys[i], spans[i], slots[i], vals[i], ns[i], firsts[i], sums[i] = g.WorkspaceID, g.Key, g.Span, g.Slot, g.Value, g.N, g.Firsts, g.SumWeighted
		}
		b.Queue(`INSERT INTO group_slots AS g (workspace_id, key, span, slot, value, n, firsts, sum_weighted)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::float8[])
			ON CONFLICT (workspace_id, span, slot, key, value) DO UPDATE SET
				n = g.n + excluded.n, firsts = g.firsts + excluded.firsts, sum_weighted = g.sum_weighted + excluded.sum_weighted`,
			wss, keys, spans, slots, vals, ns, firsts, sums)
		if d.Shrinks() {
			b.Queue(`DELETE FROM group_slots WHERE n = 0 AND (workspace_id, key, span, slot, value) IN (
				SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[]))`,
				wss, keys, spans, slots, vals)
		}
	}
}

// scanRows reads rows of rowColumns.
func scanRows(rows pgx.Rows, err error) ([]rollup.Row, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rollup.Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// scanRow reads a row of rowColumns.
func scanRow(row pgx.Row) (rollup.Row, error) {
	r := rollup.Row{Stored: &rollup.Special{}}
	sp := r.Stored
	var strs, firsts int16
	var err error
	r.Feedback, err = scanFeedbackWith(row, &r.TokenID, &sp.Values[0], &sp.Values[1], &sp.Values[2], &sp.Values[3], &strs, &firsts)
	sp.Strings, r.Firsts = int(strs), int(firsts)
	return r, err
}

// tracesOf lists the distinct traces of fs.
func tracesOf(fs []*store.Feedback) []traceRef {
	refs := make([]traceRef, 0, len(fs))
	for _, f := range fs {
		refs = append(refs, traceRef{f.WorkspaceID, f.TraceID})
	}
	slices.SortFunc(refs, func(a, b traceRef) int {
		return cmp.Or(cmp.Compare(a.workspaceID, b.workspaceID), cmp.Compare(a.traceID, b.traceID))
	})
	return slices.Compact(refs)
}
