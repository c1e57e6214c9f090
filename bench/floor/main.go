// Command floor measures what the embedded SQLite store costs against
// SQLite itself on this machine (make bench-floor), all in one run, on
// make bench's kind of feedback.
//
// Ingestion, in transactions of 1000 rows with the store's pragmas (WAL,
// synchronous FULL, 8 MiB page cache), each case on a fresh file:
//
//   - rowid table: the rows in a table without any index, 100 rows a
//     statement: the most SQLite (the modernc driver through
//     database/sql) stores here, whatever the schema on top;
//   - row indexes: the same rows, the same way, into feedbackd's migrated
//     feedback table, with the indexes listing and analytics read (ids,
//     traces, time, the four special keys) and nothing else; and once
//     more without the special keys' four;
//   - feedbackd store: Store.CreateFeedback with arrays of 1000 from four
//     goroutines, as the HTTP server calls it under bulk load: rows and
//     the derived data each write's transaction keeps (rollups, group
//     rollups, metadata entries, trace meta values).
//
// Grouping, on the store case's rows: reading every row's (_user, trace,
// value, weight, time) as groups read them (by time), against the store's
// MetadataGroups by _user over the same rows. With -users 100000 a group holds one or two
// rows, as in bench-analytics, where no precomputed cell holds fewer
// entries than the rows: the cost per row is what such groups pay.
//
// Cases alternate for -rounds rounds; medians are printed.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"

	"github.com/feedbackd/feedbackd/bench/internal/workload"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

var (
	rows   = flag.Int("rows", 200_000, "rows stored by each ingestion case")
	rounds = flag.Int("rounds", 3, "rounds; each runs every case once")
	dir    = flag.String("dir", "", "where the SQLite files go (a temporary folder when empty)")
	users  = flag.Int("users", 10_000, "distinct _user values (make bench's 10k; bench-analytics has 100k, about one row per user a day)")
)

const batch = 1000

const storeCase = "feedbackd store (Store.CreateFeedback)"

// pragmas are the store's own for writes (see sqlite.dsn).
const pragmas = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-8192)&_pragma=wal_autocheckpoint(4000)&_txlock=immediate"

func main() {
	flag.Parse()
	ctx := context.Background()
	if *dir == "" {
		d, err := os.MkdirTemp("", "feedbackd-floor")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	fmt.Printf("# feedbackd storage floor\n\n- machine: %d CPUs, GOMAXPROCS %d, %s\n- %d rows per case (%d distinct _user), transactions of %d, %d rounds, medians\n\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), *rows, *users, batch, *rounds)

	cases := []struct {
		name string
		run  func(ctx context.Context, path string) float64
	}{
		{"rowid table, no index", bareTable},
		{"id, trace and time indexes", func(ctx context.Context, path string) float64 { return rowIndexes(ctx, path, false) }},
		{"every row index (+ 4 special keys')", func(ctx context.Context, path string) float64 { return rowIndexes(ctx, path, true) }},
		{storeCase, storeBulk},
	}
	rates := make([][]float64, len(cases))
	var groups []groupTimes
	for r := 0; r < *rounds; r++ {
		for i, c := range cases {
			path := filepath.Join(*dir, fmt.Sprintf("floor-%d-%d.db", r, i))
			rate := c.run(ctx, path)
			rates[i] = append(rates[i], rate)
			fmt.Fprintf(os.Stderr, "round %d  %-38s %8.0f rows/s\n", r+1, c.name, rate)
			if c.name == storeCase {
				groups = append(groups, grouping(ctx, path))
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
		}
	}

	fmt.Println("| ingestion, transactions of 1000 | rows/s (median) | of the rowid table |\n|---|---:|---:|")
	base := median(rates[0])
	for i, c := range cases {
		m := median(rates[i])
		fmt.Printf("| %s | %.0f | %.2f |\n", c.name, m, m/base)
	}
	fmt.Println()
	fmt.Println("| _user over all rows | median | per row |\n|---|---:|---:|")
	for _, g := range []struct {
		name string
		pick func(groupTimes) time.Duration
	}{
		{"count the _user index's entries, no row read", func(g groupTimes) time.Duration { return g.entries }},
		{"read every row's _user, trace, value, weight, time, by time", func(g groupTimes) time.Duration { return g.read }},
		{"Store.MetadataGroups(_user), first page", func(g groupTimes) time.Duration { return g.store }},
	} {
		var ds []float64
		for _, t := range groups {
			ds = append(ds, float64(g.pick(t)))
		}
		d := time.Duration(median(ds))
		fmt.Printf("| %s | %.1f ms | %.2f us |\n", g.name, float64(d.Microseconds())/1000, float64(d.Nanoseconds())/1000/float64(groups[0].rows))
	}
	fmt.Printf("\n%d rows in %d _user groups.\n", groups[0].rows, groups[0].groups)
}

// feedback generates n rows with make bench's metadata (workload.Metadata,
// a _user of -users), each with its own trace id, arriving now in time
// order.
func feedback(workspaceID string, n int) [][]*store.Feedback {
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Now().Truncate(time.Microsecond)
	var out [][]*store.Feedback
	for i := 0; i < n; i += batch {
		b := make([]*store.Feedback, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			at = at.Add(time.Microsecond)
			meta := map[string]any{}
			for k, v := range workload.Metadata(rng, *users) {
				meta[k] = v
			}
			b = append(b, &store.Feedback{
				ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: workspaceID, TraceID: fmt.Sprintf("floor-%016x", j),
				Value: rng.IntN(21) - 10, Weight: float64(rng.IntN(101)) / 100, Metadata: meta,
				CreatedAt: at, UpdatedAt: at,
			})
		}
		out = append(out, b)
	}
	return out
}

// perStatement is how many rows one INSERT writes: SQLite's cost per
// statement (bind, step, reset through database/sql) is a good part of a
// bare row's, so the floor writes many rows per statement.
const perStatement = 100

// insertRows writes the batches with a plain INSERT of feedbackd's row
// columns, perStatement rows a statement, one transaction per batch, and
// returns rows/s.
func insertRows(ctx context.Context, db *sql.DB, batches [][]*store.Feedback) float64 {
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", perStatement), ", ")
	ins, err := db.PrepareContext(ctx, `INSERT INTO feedback
		(rowid, id, workspace_id, trace_id, value, weight, metadata, created_at, updated_at,
		 m_user, m_organisation, m_prompt, m_environment, m_strings)
		VALUES `+values)
	check(err)
	defer ins.Close()
	// Encoding is the caller's work in the store too (the HTTP handler's):
	// it stays out of the timing.
	var (
		meta    [][]byte
		special []rollup.Special
	)
	for _, b := range batches {
		for _, f := range b {
			m, err := json.Marshal(f.Metadata)
			check(err)
			meta, special = append(meta, m), append(special, rollup.SpecialOf(f.Metadata))
		}
	}
	args := make([]any, 0, 14*perStatement)
	start := time.Now()
	rowid := 0
	for _, b := range batches {
		tx, err := db.BeginTx(ctx, nil)
		check(err)
		st := tx.StmtContext(ctx, ins)
		for chunk := range slices.Chunk(b, perStatement) {
			args = args[:0]
			for _, f := range chunk {
				sp := special[rowid]
				args = append(args, rowid+1, f.ID, f.WorkspaceID, f.TraceID, f.Value, f.Weight, meta[rowid],
					f.CreatedAt.UnixMicro(), f.UpdatedAt.UnixMicro(),
					sp.MetaValues[0], sp.MetaValues[1], sp.MetaValues[2], sp.MetaValues[3], sp.Strings)
				rowid++
			}
			_, err := st.ExecContext(ctx, args...)
			check(err)
		}
		check(tx.Commit())
	}
	return float64(rowid) / time.Since(start).Seconds()
}

func bareTable(ctx context.Context, path string) float64 {
	db, err := sql.Open("sqlite", "file:"+path+pragmas)
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, `CREATE TABLE feedback (
		id TEXT NOT NULL, workspace_id TEXT NOT NULL, trace_id TEXT NOT NULL, value INTEGER NOT NULL,
		weight REAL NOT NULL, metadata TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
		m_user TEXT, m_organisation TEXT, m_prompt TEXT, m_environment TEXT, m_strings INTEGER)`)
	check(err)
	return insertRows(ctx, db, feedback("ws-floor", *rows))
}

func rowIndexes(ctx context.Context, path string, special bool) float64 {
	s, ws := openStore(ctx, path)
	check(s.Close())
	db, err := sql.Open("sqlite", "file:"+path+pragmas)
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	if !special {
		for _, k := range rollup.SpecialKeys {
			_, err := db.ExecContext(ctx, `DROP INDEX feedback_workspace_m`+k)
			check(err)
		}
	}
	return insertRows(ctx, db, feedback(ws.ID, *rows))
}

// openStore opens the SQLite store at path (migrating a new file) with its
// workspace "floor".
func openStore(ctx context.Context, path string) (*sqlite.Store, *store.Workspace) {
	s, err := sqlite.Open(ctx, path)
	check(err)
	ws, err := s.EnsureWorkspace(ctx, "floor")
	check(err)
	return s, ws
}

func storeBulk(ctx context.Context, path string) float64 {
	s, ws := openStore(ctx, path)
	defer s.Close()
	batches := feedback(ws.ID, *rows)
	next := make(chan []*store.Feedback)
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				check(s.CreateFeedback(ctx, b, nil))
			}
		}()
	}
	for _, b := range batches {
		next <- b
	}
	close(next)
	wg.Wait()
	return float64(*rows) / time.Since(start).Seconds()
}

type groupTimes struct {
	entries, read, store time.Duration
	rows, groups         int
}

// grouping times groups by _user over every row of the store at path.
func grouping(ctx context.Context, path string) groupTimes {
	s, ws := openStore(ctx, path)
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	var g groupTimes
	// Warm the page cache first, as a dashboard's repeated queries find it.
	check(db.QueryRowContext(ctx, `SELECT count(*) FROM feedback`).Scan(&g.rows))

	// The rows groups by _user read, the way they read them: by time,
	// every column the groups need.
	start := time.Now()
	var sum struct {
		traceBytes, last int64
		weighted         float64
	}
	check(db.QueryRowContext(ctx, `SELECT count(m_user), sum(length(trace_id)), total(value * weight), max(created_at)
		FROM feedback WHERE workspace_id = ? AND created_at BETWEEN 0 AND 9223372036854775807`, ws.ID).Scan(&g.rows, &sum.traceBytes, &sum.weighted, &sum.last))
	g.read = time.Since(start)

	// The least any read of them costs: counting the entries of the _user
	// index, which holds no more than the key and the time.
	start = time.Now()
	var n int
	check(db.QueryRowContext(ctx, `SELECT count(*) FROM feedback INDEXED BY feedback_workspace_m_user
		WHERE workspace_id = ? AND m_user IS NOT NULL`, ws.ID).Scan(&n))
	g.entries = time.Since(start)
	if n != g.rows {
		check(fmt.Errorf("the _user index holds %d entries for %d rows with a _user", n, g.rows))
	}
	check(db.QueryRowContext(ctx, `SELECT count(DISTINCT m_user) FROM feedback WHERE workspace_id = ?`, ws.ID).Scan(&g.groups))

	q := store.AnalyticsQuery{From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(24 * time.Hour)}
	start = time.Now()
	_, total, err := s.MetadataGroups(ctx, ws.ID, "_user", q, 0, 50)
	check(err)
	g.store = time.Since(start)
	if total != g.groups {
		check(fmt.Errorf("MetadataGroups counted %d _user groups, SQL %d", total, g.groups))
	}
	return g
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
