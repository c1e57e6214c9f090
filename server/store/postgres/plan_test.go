package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// No statement a write runs reads a trace's rows: on a trace of 20,000
// feedback (the statistics gathered, so that the planner knows the trace
// is large), every statement that creates, updates, deletes or re-votes
// feedback of that trace reaches what it reads and writes through an
// index, and the trace meta values through one meta value of one trace
// (the derived tables are small here: the planner may scan them). The
// statements are the ones the store sends, recorded with their
// arguments, and PostgreSQL's plan of each is checked.
func TestWritesSeekNeverScan(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	full, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	ws, err := full.EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	item := func(i int, at time.Time) *store.Feedback {
		return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: "hot", Value: 1, Weight: 1,
			Metadata:  map[string]any{"_user": fmt.Sprint("u", i%50), "_prompt": "p", "_environment": "prod", "_organisation": "o"},
			CreatedAt: at, UpdatedAt: at}
	}
	var first *store.Feedback
	for b := range 20 {
		var fs []*store.Feedback
		for i := range 1000 {
			fs = append(fs, item(i, start.Add(time.Duration(b)*time.Minute)))
		}
		if err := full.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = fs[0]
			for _, f := range fs {
				if f.ID < first.ID {
					first = f
				}
			}
		}
	}
	if _, err := full.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	// A store whose every statement is recorded.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := &Store{pool: pool}
	s.modelKeys.Store(&rollup.DefaultModelKeys)
	if err := s.createNow(ctx, []*store.Feedback{item(7, start.Add(-time.Hour))}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFeedback(ctx, ws.ID, first.ID, store.Update{Value: 2, Metadata: map[string]any{"_user": "x"}, MetadataSet: true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFeedback(ctx, ws.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.UpsertTokenFeedback(ctx, "tok", item(3, start.Add(time.Hour)), nil); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	seqScan := regexp.MustCompile(`Seq Scan on (feedback|trace_meta_values)\b`)
	lookups := 0
	for _, q := range rec.queries {
		if !regexp.MustCompile(`^\s*(SELECT|INSERT|UPDATE|DELETE)`).MatchString(q.sql) || strings.Contains(q.sql, "pg_advisory_xact_lock") {
			continue
		}
		rows, err := conn.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q.sql, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if seqScan.MatchString(plan) {
			t.Errorf("%s\nscans a table:\n%s", q.sql, plan)
		}
		if strings.Contains(q.sql, "FROM trace_meta_values") && strings.HasPrefix(strings.TrimSpace(q.sql), "SELECT") {
			lookups++
			if !regexp.MustCompile(`Index (Only )?Scan using trace_meta_values_pkey on trace_meta_values`).MatchString(plan) ||
				!regexp.MustCompile(`Index Cond: .*trace_id = p\.trace.*meta_value = p\.meta_value`).MatchString(plan) {
				t.Errorf("%s\nreads the trace meta values without seeking one meta value of one trace:\n%s", q.sql, plan)
			}
		}
	}
	if lookups != 5 {
		t.Errorf("%d trace meta value lookups recorded, want one per write (5)", lookups)
	}
}

// recorder records the statements a pool sends, with their arguments.
type recorder struct {
	mu      sync.Mutex
	queries []query
}

type query struct {
	sql  string
	args []any
}

func (r *recorder) add(sql string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, query{sql, args})
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL, d.Args)
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.add(d.SQL, d.Args)
}

func (r *recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
