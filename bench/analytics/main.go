// Command analytics is feedbackd's analytics benchmark (make bench-analytics).
//
// For each store (SQLite, and PostgreSQL when FEEDBACKD_TEST_POSTGRES_URL
// names a server) it loads -rows feedback into one workspace through the
// store's bulk path, spread over 90 days in time order as they would
// arrive, with 100k distinct _user, 100 _organisation, 50 _prompt, 3
// _environment and other metadata (region, model of 5, provider of 2,
// session). It first measures ingestion with and without the derived data
// on a sample, then serves the store with the real HTTP server on loopback
// and times every analytics endpoint over the last 30 days: unfiltered,
// filtered by each special key, by an arbitrary key and by ai_org_model. It also times pages of
// GET /v1/feedback, with and without time bounds, recent and deep in the
// past (-queries list alone: go run ./bench/analytics -reuse -dir D
// -queries list).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/client"
	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

var (
	rows     = flag.Int("rows", 10_000_000, "feedback rows to load")
	sample   = flag.Int("ingest-sample", 200_000, "rows of the ingestion comparison")
	runs     = flag.Int("runs", 7, "timed runs of each query")
	backends = flag.String("stores", "sqlite,postgres", "stores to benchmark")
	dir      = flag.String("dir", "", "where the SQLite files go (a temporary folder when empty)")
	reuse    = flag.Bool("reuse", false, "query the data an earlier run left (in -dir for SQLite, in the server's feedbackd_bench_main database for PostgreSQL) instead of loading it again")
	offset   = flag.Duration("offset", 0, "end the queried 30 days this long before the data's last midnight: 0 queries whole days; a dashboard's \"last 30 days\" end at any minute (e.g. 5h7m)")
	which    = flag.String("queries", "analytics,list", "what to time: analytics (the graph and group endpoints), list (pages of GET /v1/feedback)")
)

// end is the newest feedback time; data spans the 90 days before it.
var end = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func main() {
	flag.Parse()
	ctx := context.Background()
	if *dir == "" {
		d, err := os.MkdirTemp("", "feedbackd-bench")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	fmt.Printf("analytics benchmark: %d rows, %d runs per query, GOMAXPROCS=%d\n", *rows, *runs, runtime.GOMAXPROCS(0))
	for _, b := range strings.Split(*backends, ",") {
		switch b {
		case "sqlite":
			bench(ctx, "sqlite", func(name string) store.Store {
				s, err := sqlite.Open(ctx, filepath.Join(*dir, name+".db"))
				check(err)
				return s
			})
		case "postgres":
			admin := os.Getenv("FEEDBACKD_TEST_POSTGRES_URL")
			if admin == "" {
				fmt.Println("\npostgres: skipped (FEEDBACKD_TEST_POSTGRES_URL is not set)")
				continue
			}
			bench(ctx, "postgres", func(name string) store.Store {
				db := "feedbackd_bench_" + strings.ReplaceAll(name, "-", "_")
				url := strings.Replace(admin, "/postgres?", "/"+db+"?", 1)
				if !*reuse {
					url = newDatabase(ctx, admin, db)
				}
				s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 8})
				check(err)
				return s
			})
		}
	}
}

// bench loads and queries one backend; open returns a new, empty store.
func bench(ctx context.Context, name string, open func(name string) store.Store) {
	fmt.Printf("\n## %s\n\n", name)
	if *reuse {
		s := open("main")
		defer s.Close()
		fmt.Printf("reusing the %d rows loaded by an earlier run\n", *rows)
		queries(ctx, s)
		return
	}

	// Ingestion with and without the derived data, on a sample.
	withDerived := open("ingest-rollups")
	rateWith := load(ctx, withDerived, *sample, false)
	withDerived.Close()
	plain := open("ingest-plain")
	dropDerived(ctx, name)
	rateWithout := load(ctx, plain, *sample, false)
	plain.Close()
	fmt.Printf("ingestion, %d rows in bulks of 1000: %.0f rows/s with the derived data, %.0f rows/s without (ratio %.2f)\n",
		*sample, rateWith, rateWithout, rateWith/rateWithout)

	s := open("main")
	defer s.Close()
	start := time.Now()
	rate := load(ctx, s, *rows, true)
	fmt.Printf("loaded %d rows in %s (%.0f rows/s)\n\n", *rows, time.Since(start).Round(time.Second), rate)
	queries(ctx, s)
}

// queries times the endpoints -queries names.
func queries(ctx context.Context, s store.Store) {
	c, stop := serve(ctx, s)
	defer stop()
	for _, q := range strings.Split(*which, ",") {
		switch q {
		case "analytics":
			analytics(ctx, c)
		case "list":
			listing(ctx, c)
		default:
			check(fmt.Errorf("-queries: unknown %q", q))
		}
	}
}

// analytics times every analytics endpoint over the last 30 days of the data
// (ending -offset before its last midnight).
func analytics(ctx context.Context, c *client.Client) {
	from, to := end.Add(-30*24*time.Hour-*offset), end.Add(-time.Microsecond-*offset)
	filters := []struct{ name, metadata, orgModel string }{
		{"unfiltered", "", ""},
		{"_user", `{"_user":"user-4242"}`, ""},
		{"_organisation", `{"_organisation":"org-7"}`, ""},
		{"_prompt", `{"_prompt":"prompt-7"}`, ""},
		{"_environment", `{"_environment":"production"}`, ""},
		{"arbitrary key (region)", `{"region":"region-3"}`, ""},
		{"ai_org_model (openai__model-3)", "", "openai__model-3"},
	}
	fmt.Println("| endpoint (last 30 days) | filter | p50 | max | result |")
	fmt.Println("|---|---|---|---|---|")
	for _, f := range filters {
		var md, om *string
		if f.metadata != "" {
			md = &f.metadata
		}
		if f.orgModel != "" {
			om = &f.orgModel
		}
		time3 := func(endpoint string, fn func() (string, error)) {
			var times []time.Duration
			var result string
			for range *runs {
				t0 := time.Now()
				r, err := fn()
				times = append(times, time.Since(t0))
				check(err)
				result = r
			}
			slices.Sort(times)
			fmt.Printf("| %s | %s | %s | %s | %s |\n", endpoint, f.name, ms(times[len(times)/2]), ms(times[len(times)-1]), result)
		}
		time3("graphs/feedbacks", func() (string, error) {
			g, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: md, AiOrgModel: om})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("total %d, %d points", g.Summary.Total, len(g.DataPoints)), nil
		})
		time3("graphs/feedbacks/scores", func() (string, error) {
			g, err := c.Analytics.ScoreGraph(ctx, client.GetFeedbackScoreGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: md, AiOrgModel: om})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("total %d, %d scores", g.Summary.Total, len(g.DataPoints)), nil
		})
		time3("graphs/feedbacks/weighted", func() (string, error) {
			g, err := c.Analytics.WeightedGraph(ctx, client.GetWeightedFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: md, AiOrgModel: om})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("avg %.3f", g.Summary.Avg), nil
		})
		time3("graphs/feedbacks/ai-models", func() (string, error) {
			g, err := c.Analytics.AIModelGraph(ctx, client.GetFeedbackAIModelGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: md, AiOrgModel: om})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("total %d, %d models", g.Summary.Total, len(g.DataPoints)), nil
		})
		keys := []string{"_prompt", "_user"}
		if md == nil && om == nil {
			keys = []string{"_organisation", "_prompt", "_environment", "_user"}
		}
		for _, key := range keys {
			time3("groups/metadata/"+key, func() (string, error) {
				g, err := c.Analytics.MetadataGroups(ctx, key, client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: md, AiOrgModel: om})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d groups", g.Total), nil
			})
		}
	}
}

// listing times GET /v1/feedback: the first page of 100 and the page its
// next_cursor gives, without time bounds and with ranges at both ends of
// the data and in between, alone and with other filters. A page should cost
// about the same wherever its range lies and however many rows the range
// holds.
func listing(ctx context.Context, c *client.Client) {
	day := 24 * time.Hour
	window := func(from, to time.Duration) [2]*time.Time {
		a, b := end.Add(-from), end.Add(-to)
		return [2]*time.Time{&a, &b}
	}
	str := func(s string) *string { return &s }
	cases := []struct {
		name     string
		bounds   [2]*time.Time // created_after, created_before; nil: none
		metadata *string
		valueMax *int
		traces   *string
	}{
		{name: "no time bounds"},
		{name: "last 24 hours", bounds: window(day, 0)},
		{name: "last 30 days", bounds: window(30*day, 0)},
		{name: "one day, 30 days ago", bounds: window(31*day, 30*day)},
		{name: "one hour, 89 days ago", bounds: window(89*day, 89*day-time.Hour)},
		{name: "last 30 days, _environment", bounds: window(30*day, 0), metadata: str(`{"_environment":"production"}`)},
		{name: "last 30 days, _user", bounds: window(30*day, 0), metadata: str(`{"_user":"user-4242"}`)},
		{name: "last 30 days, region", bounds: window(30*day, 0), metadata: str(`{"region":"region-3"}`)},
		{name: "last 30 days, value_max -5", bounds: window(30*day, 0), valueMax: client.Ptr(-5)},
		{name: "no time bounds, _environment", metadata: str(`{"_environment":"production"}`)},
		{name: "no time bounds, _user", metadata: str(`{"_user":"user-4242"}`)},
		{name: "no time bounds, two trace ids", traces: str("trace-4242,trace-424242")},
		{name: "no time bounds, region", metadata: str(`{"region":"region-3"}`)},
	}
	fmt.Println("\n| GET /v1/feedback, limit 100 | first page p50 | max | next page p50 | max | items |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, lc := range cases {
		params := client.ListFeedbackParams{Limit: client.Ptr(100), CreatedAfter: lc.bounds[0], CreatedBefore: lc.bounds[1], Metadata: lc.metadata, ValueMax: lc.valueMax, TraceID: lc.traces}
		var first, next []time.Duration
		var items string
		for range *runs {
			t0 := time.Now()
			p, err := c.Feedback.ListPage(ctx, params)
			first = append(first, time.Since(t0))
			check(err)
			items = fmt.Sprint(len(p.Data))
			if p.NextCursor == nil {
				next = append(next, 0)
				continue
			}
			np := params
			np.Cursor = p.NextCursor
			t0 = time.Now()
			p2, err := c.Feedback.ListPage(ctx, np)
			next = append(next, time.Since(t0))
			check(err)
			items += fmt.Sprint(" + ", len(p2.Data))
		}
		slices.Sort(first)
		slices.Sort(next)
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", lc.name, ms(first[len(first)/2]), ms(first[len(first)-1]), ms(next[len(next)/2]), ms(next[len(next)-1]), items)
	}
}

// load writes n rows through the store's bulk path, 1000 per call from 4
// writers, in time order, and returns rows per second.
func load(ctx context.Context, s store.Store, n int, progress bool) float64 {
	ws, err := s.EnsureWorkspace(ctx, "bench")
	check(err)
	const batch, writers = 1000, 4
	batches := make(chan []*store.Feedback, writers)
	done := make(chan error, writers)
	for range writers {
		go func() {
			for b := range batches {
				if err := s.CreateFeedback(ctx, b, nil); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	step := 90 * 24 * time.Hour / time.Duration(max(n, 1))
	at := end.Add(-90 * 24 * time.Hour)
	regions := []string{"region-0", "region-1", "region-2", "region-3", "region-4", "region-5", "region-6", "region-7", "region-8", "region-9"}
	envs := []string{"production", "staging", "development"}
	providers := []string{"openai", "azure"}
	for i := 0; i < n; i += batch {
		b := make([]*store.Feedback, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			at = at.Add(step)
			value := rng.IntN(21) - 10
			if rng.IntN(3) == 0 {
				value = []int{-1, 1}[rng.IntN(2)] // thumbs are the common case
			}
			weight := 1.0
			if rng.IntN(4) == 0 {
				weight = float64(rng.IntN(101)) / 100
			}
			b = append(b, &store.Feedback{
				ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: fmt.Sprint("trace-", j/2),
				Value: value, Weight: weight,
				Metadata: map[string]any{
					"_user": fmt.Sprint("user-", rng.IntN(100_000)), "_organisation": fmt.Sprint("org-", rng.IntN(100)),
					"_prompt": fmt.Sprint("prompt-", rng.IntN(50)), "_environment": envs[rng.IntN(3)],
					"region": regions[rng.IntN(10)], "model": fmt.Sprint("model-", rng.IntN(5)), "provider": providers[rng.IntN(2)],
					"session": fmt.Sprintf("%x", rng.Uint64()),
				},
				CreatedAt: at.Truncate(time.Microsecond), UpdatedAt: at.Truncate(time.Microsecond),
			})
		}
		select {
		case batches <- b:
		case err := <-done:
			check(err)
		}
		if progress && i%(1_000_000) == 0 && i > 0 {
			fmt.Fprintf(os.Stderr, "  %d rows, %.0f rows/s\n", i, float64(i)/time.Since(start).Seconds())
		}
	}
	close(batches)
	for range writers {
		check(<-done)
	}
	return float64(n) / time.Since(start).Seconds()
}

// serve runs the real HTTP server on the store, on loopback.
func serve(ctx context.Context, s store.Store) (*client.Client, func()) {
	key, hash := apikey.Generate()
	ws, err := s.EnsureWorkspace(ctx, "bench")
	check(err)
	check(s.CreateAPIKey(ctx, &store.APIKey{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, Name: "bench", Hash: hash, CreatedAt: time.Now()}))
	e, err := server.New(ctx, server.Config{Store: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: e}
	go srv.Serve(ln)
	c, err := client.New("http://"+ln.Addr().String()+"/v1", client.WithAPIKey(key))
	check(err)
	return c, func() { srv.Close() }
}

// dropDerived makes the "ingest-plain" store discard what it writes to its
// derived tables, to measure ingestion without them (the reads of each
// write's traces remain).
func dropDerived(ctx context.Context, backend string) {
	switch backend {
	case "sqlite":
		db, err := sql.Open("sqlite", filepath.Join(*dir, "ingest-plain.db"))
		check(err)
		defer db.Close()
		for _, table := range []string{"rollups", "group_rollups", "metadata_entries"} {
			_, err := db.ExecContext(ctx, "CREATE TRIGGER discard_"+table+" BEFORE INSERT ON "+table+" BEGIN SELECT RAISE(IGNORE); END")
			check(err)
		}
	case "postgres":
		url := os.Getenv("FEEDBACKD_TEST_POSTGRES_URL")
		conn, err := pgx.Connect(ctx, strings.Replace(url, "/postgres?", "/feedbackd_bench_ingest_plain?", 1))
		check(err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE FUNCTION discard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
		check(err)
		for _, table := range []string{"rollups", "group_rollups"} {
			_, err := conn.Exec(ctx, "CREATE TRIGGER discard BEFORE INSERT ON "+table+" FOR EACH ROW EXECUTE FUNCTION discard()")
			check(err)
		}
	}
}

// newDatabase creates (anew) a database on the admin server and returns its URL.
func newDatabase(ctx context.Context, admin, name string) string {
	conn, err := pgx.Connect(ctx, admin)
	check(err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	check(err)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	check(err)
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
