// Command ingest is feedbackd's ingestion benchmark (make bench).
//
// A throughput figure alone says little: it is mostly the machine. So this
// program measures feedbackd next to "the ceiling" (bench/ceiling), a bare
// Echo server that only decodes the same JSON, under the same load in the
// same run. The ratio of the two is what feedbackd's own work
// (authentication, validation, storage) costs, and it is the number worth
// watching across changes and machines.
//
// Both servers run as subprocesses, so the load generator does not share
// their CPU accounting or their garbage collector. After an unmeasured
// warm-up of each, up to three modes run (-modes), in this order:
//
//   - closed: one vegeta attacker with exactly -connections keep-alive
//     connections and no rate limit, posting single feedback with varied
//     content and a unique trace id each: the most either server can take.
//   - open: the same single posts at fixed rates (-rates, a second, for
//     -rate-duration each), sent on schedule whether or not earlier ones were
//     answered, as independent clients send them. The latency at a rate
//     both servers sustain is what a client sees below saturation, which the
//     closed loop, whose queue is always full, cannot tell. The attacker has
//     a second's worth of workers, so that it keeps the rate while the
//     server stalls; the report says when it fell short all the same, and
//     how late it sent a request at worst.
//   - bulk: arrays of 1000 posted to feedbackd, to measure bulk ingestion.
//
// -hot-share sends that share of the open loop's requests to one trace
// filled first to -hot-rows feedback; -zipf-users, -hot-value-share and
// -hot-id-share shape them in other adversarial ways (shape.go), and the
// report names the flags of the shape that ran. The hot mode (hot.go),
// and the export and analytics modes (longread.go), run only when -modes
// names them.
//
// With -floor a third server runs beside them: the durability floor, the
// ceiling appending each body to a bare SQLite table before it answers
// (bench/ceiling -store). The closed and open loops then measure all three,
// and the open loop's report gives feedbackd's tail over the floor's, the
// least any synchronous durable store pays on this machine, as well as over
// the bare ceiling's.
//
// Closed and open rounds run every server, feedbackd first in odd rounds
// and last in even ones, so that whatever else the machine does hits all
// alike; the tables report medians over rounds.
//
// The comparison runs on SQLite and, when FEEDBACKD_TEST_POSTGRES_URL names
// a PostgreSQL server it may create databases on, again on PostgreSQL.
//
// A failed request or a non-200 answer means the run did not measure
// ingestion: every one is reported, and the program then exits with status 1.
package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/feedbackd/feedbackd/bench/internal/workload"
)

const (
	// apiKey is the key feedbackd creates on its empty database
	// (FEEDBACKD_BOOTSTRAP_KEY) and every request sends.
	apiKey = "fbk_bench_key_0123456789abcdef"
	// bulkSize is the number of feedback in one bulk request: feedbackd's
	// maximum, the most favourable case for bulk ingestion.
	bulkSize = 1000
	// corpusSize is the number of distinct feedback bodies cycled through:
	// enough that no cache sees the same metadata over and over.
	corpusSize = 4096
	// pgDatabase is the database created, and dropped, on PostgreSQL.
	pgDatabase = "feedbackd_bench_ingest"
	// readyTimeout bounds a server's start, migrations included.
	readyTimeout = time.Minute
	// stopTimeout is how long a server may take to stop after SIGTERM;
	// feedbackd waits up to 30s for in-flight requests.
	stopTimeout = 40 * time.Second
	// requestTimeout fails a request that gets no answer; under this load a
	// healthy server answers in milliseconds.
	requestTimeout = 30 * time.Second
)

var (
	feedbackdReady = regexp.MustCompile(`feedbackd listening on (http://\S+)`)
	ceilingReady   = regexp.MustCompile(`^listening on (http://\S+)`)
)

// config holds the command-line flags.
type config struct {
	feedbackd, ceiling             string
	durableCeiling                 bool
	duration, bulkDuration, warmup time.Duration
	connections, rounds            int
	// pprofAddr is passed to feedbackd's --pprof-addr, to profile it
	// under the benchmark's load.
	pprofAddr string
	// only names the one backend to measure ("sqlite" or "postgres"),
	// or is empty for every available one.
	only string
	// modes are the parts of the benchmark to run.
	modes modeSet
	// rates are the open loop's request rates, a second, each run for
	// rateDuration on both servers in every round.
	rates        rateList
	rateDuration time.Duration
	// fillRows is what the export and analytics modes fill the store to.
	fillRows int
	// floor runs the durability floor (the ceiling with -store) as a
	// third server beside the bare ceiling.
	floor bool
	// hotRows is the feedback of the hot trace, which the hot mode, and
	// the open loop when hotShare is above 0, fill first.
	hotRows int
	// hotOps is how many operations of each kind the hot mode times on
	// the hot trace, and as many on new or small ones.
	hotOps int
	// hotShare is the share of the open loop's requests that go to the
	// hot trace.
	hotShare float64
	// shape skews the metadata of the open loop's requests: _user by a
	// Zipf law (-zipf-users), a share with one hot _prompt,
	// _organisation and model (-hot-value-share).
	shape workload.Shape
	// hotIDShare is the share of the open loop's requests that send one
	// fixed feedback id, so that each replaces the same feedback.
	hotIDShare float64
	// webhook runs a second feedbackd with a webhook whose receiver
	// answers after webhookDelay (webhook.go).
	webhook      bool
	webhookDelay time.Duration
}

// modeSet is the -modes flag: which parts of the benchmark run.
type modeSet struct{ closed, open, bulk, hot, export, analytics bool }

func (m *modeSet) String() string {
	var names []string
	for _, mode := range []struct {
		on   bool
		name string
	}{{m.closed, "closed"}, {m.open, "open"}, {m.bulk, "bulk"}, {m.hot, "hot"}, {m.export, "export"}, {m.analytics, "analytics"}} {
		if mode.on {
			names = append(names, mode.name)
		}
	}
	return strings.Join(names, ",")
}

func (m *modeSet) Set(s string) error {
	*m = modeSet{}
	for name := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(name) {
		case "closed":
			m.closed = true
		case "open":
			m.open = true
		case "bulk":
			m.bulk = true
		case "hot":
			m.hot = true
		case "export":
			m.export = true
		case "analytics":
			m.analytics = true
		default:
			return fmt.Errorf("unknown mode %q (the modes are closed, open, bulk, hot, export and analytics)", name)
		}
	}
	return nil
}

// rateList is the -rates flag: request rates a second, in the order given.
type rateList []int

func (l *rateList) String() string {
	s := make([]string, len(*l))
	for i, r := range *l {
		s[i] = strconv.Itoa(r)
	}
	return strings.Join(s, ",")
}

func (l *rateList) Set(s string) error {
	*l = nil
	for field := range strings.SplitSeq(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || r < 1 {
			return fmt.Errorf("%q is not a positive whole number of requests a second", field)
		}
		*l = append(*l, r)
	}
	return nil
}

func main() {
	var cfg config
	flag.StringVar(&cfg.feedbackd, "feedbackd", "bin/feedbackd", "the feedbackd binary")
	flag.StringVar(&cfg.ceiling, "ceiling", "bin/ceiling", "the ceiling server binary (go build ./bench/ceiling)")
	flag.BoolVar(&cfg.durableCeiling, "durable-ceiling", false, "make the ceiling the durability floor: it appends each body to a bare SQLite table before answering (its -store)")
	flag.BoolVar(&cfg.floor, "floor", false, "also run the durability floor (the ceiling with -store) beside the bare ceiling in the closed and open loops, and report feedbackd's p99 over both")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "length of each measured run")
	flag.IntVar(&cfg.connections, "connections", 32, "keep-alive connections, each with one request in flight")
	flag.IntVar(&cfg.rounds, "rounds", 2, "rounds, each measuring feedbackd and the ceiling once")
	flag.DurationVar(&cfg.bulkDuration, "bulk-duration", 20*time.Second, "length of the bulk run (arrays of 1000) on feedbackd")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured load on each server before the first round (0: none)")
	flag.StringVar(&cfg.only, "backend", "", "measure only this backend: sqlite or postgres (default: both when PostgreSQL is available)")
	flag.StringVar(&cfg.pprofAddr, "pprof-addr", "", "serve feedbackd's profiler on this address (its --pprof-addr), e.g. 127.0.0.1:6060")
	cfg.modes = modeSet{closed: true, open: true, bulk: true}
	flag.Var(&cfg.modes, "modes", "the parts to run, comma-separated: closed (no rate limit), open (fixed -rates), bulk; hot (each kind of write, one at a time, on a trace of -hot-rows feedback against a new or small trace), export and analytics (the open loop at the first rate, alone and beside feedbackd export, or beside groups by _user) run only when named")
	flag.IntVar(&cfg.fillRows, "fill-rows", 1000000, "the export and analytics modes first fill the store to this many feedback")
	cfg.rates = rateList{1000, 2000}
	flag.Var(&cfg.rates, "rates", "the open loop's request rates a second, comma-separated")
	flag.DurationVar(&cfg.rateDuration, "rate-duration", 20*time.Second, "length of each open-loop run, at each rate")
	flag.IntVar(&cfg.hotRows, "hot-rows", 100000, "the feedback of the hot trace (one workspace, one trace id), posted in bulks of 1000 before the hot mode, and before the open loop with -hot-share")
	flag.IntVar(&cfg.hotOps, "hot-ops", 200, "operations of each kind the hot mode times on the hot trace, and as many on new or small traces")
	flag.Float64Var(&cfg.hotShare, "hot-share", 0, "the share of the open loop's requests, to every server alike, that go to one trace filled first to -hot-rows feedback (e.g. 0.1); the others go to new traces")
	flag.Float64Var(&cfg.shape.ZipfUsers, "zipf-users", 0, "draw the _user of the open loop's requests by a Zipf law of this exponent (above 1, e.g. 1.1) over the 10,000 users, so that a few users give most feedback; 0: uniformly")
	flag.Float64Var(&cfg.shape.HotValueShare, "hot-value-share", 0, "the share of the open loop's requests (e.g. 0.5) that carry one and the same _prompt, _organisation and model, so that each updates the same derived rows")
	flag.Float64Var(&cfg.hotIDShare, "hot-id-share", 0, "the share of the open loop's requests (e.g. 0.5) that send one fixed feedback id, on one trace, so that each replaces the same feedback (a thumbs toggle)")
	flag.BoolVar(&cfg.webhook, "webhook", false, "also measure a second feedbackd, on a fresh store, with a webhook subscribed to every event whose receiver answers after -webhook-delay, beside the first in every round")
	flag.DurationVar(&cfg.webhookDelay, "webhook-delay", 2*time.Second, "how long the -webhook receiver takes to answer each delivery")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := benchmark(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingest:", err)
		os.Exit(1)
	}
}

// benchmark runs every available backend, prints the report (also of the
// runs done when a later one fails) and fails when any request did.
func benchmark(ctx context.Context, cfg config, out io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "feedbackd-bench-ingest")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	printMachine(out, cfg)
	bodies, err := newCorpus(corpusSize, workload.Shape{})
	if err != nil {
		return err
	}
	var results []backendResult
	var runErr error
	for _, b := range backends(tmp, out) {
		if cfg.only != "" && b.name != cfg.only {
			continue
		}
		res, err := benchBackend(ctx, cfg, b, bodies)
		results = append(results, res)
		if err != nil {
			runErr = err
			break
		}
	}
	failed := 0
	if slices.ContainsFunc(results, func(r backendResult) bool { return len(r.runs) > 0 }) {
		failed = printReport(out, results)
	}
	if errors.Is(runErr, context.Canceled) {
		return errors.New("interrupted: the report above, if any, covers only the runs that completed")
	}
	if runErr != nil {
		return runErr
	}
	if failed > 0 {
		return fmt.Errorf("%d runs had failed requests or non-200 answers (listed above): their numbers are not valid", failed)
	}
	return nil
}

// validate rejects flags that cannot give a measurement, and missing
// binaries with a hint instead of exec's bare error.
func (cfg config) validate() error {
	if cfg.connections < 1 || cfg.rounds < 1 {
		return errors.New("-connections and -rounds must be at least 1")
	}
	if cfg.floor && cfg.durableCeiling {
		return errors.New("-floor already runs the durable ceiling beside the bare one: drop -durable-ceiling")
	}
	if cfg.hotShare < 0 || cfg.hotShare > 1 {
		return errors.New("-hot-share must be from 0 to 1")
	}
	if err := (workload.Shape{ZipfUsers: cfg.shape.ZipfUsers}).Validate(); err != nil {
		return fmt.Errorf("-zipf-users: %w", err)
	}
	if err := (workload.Shape{HotValueShare: cfg.shape.HotValueShare}).Validate(); err != nil {
		return fmt.Errorf("-hot-value-share: %w", err)
	}
	if !(cfg.hotIDShare >= 0 && cfg.hotIDShare <= 1) || cfg.hotShare+cfg.hotIDShare > 1 {
		return errors.New("-hot-id-share must be from 0 to 1, and -hot-share and -hot-id-share add up to at most 1")
	}
	if (cfg.modes.hot || cfg.hotShare > 0) && cfg.hotRows < 1 {
		return errors.New("-hot-rows must be at least 1")
	}
	if cfg.modes.hot && (cfg.hotOps < 1 || cfg.hotRows < cfg.hotOps) {
		return errors.New("-hot-ops must be at least 1, and -hot-rows at least -hot-ops (each DELETE removes one of the hot trace's feedback)")
	}
	if cfg.duration <= 0 || cfg.bulkDuration <= 0 || cfg.rateDuration <= 0 || cfg.warmup < 0 {
		return errors.New("-duration, -bulk-duration and -rate-duration must be positive, -warmup not negative")
	}
	for _, bin := range []struct{ flag, path, build string }{
		{"-feedbackd", cfg.feedbackd, "make build"},
		{"-ceiling", cfg.ceiling, "go build -o bin/ceiling ./bench/ceiling"},
	} {
		if _, err := os.Stat(bin.path); err != nil {
			return fmt.Errorf("%s %s: %w (build it with %q, or pass %s)", bin.flag, bin.path, err, bin.build, bin.flag)
		}
	}
	return nil
}

// ---------------------------------------------------------------- backends

// backend is a store feedbackd can run on.
type backend struct {
	name string
	// open returns the --db argument of a fresh, empty store, distinct for
	// each name, and a function that deletes it.
	open func(ctx context.Context, name string) (db string, remove func() error, err error)
}

// backends lists SQLite, and PostgreSQL when FEEDBACKD_TEST_POSTGRES_URL is
// set; it says so when PostgreSQL is skipped, so that a missing row is
// never mistaken for a benchmarked one.
func backends(tmp string, out io.Writer) []backend {
	list := []backend{sqliteBackend(filepath.Join(tmp, "bench.db"))}
	if admin := os.Getenv("FEEDBACKD_TEST_POSTGRES_URL"); admin != "" {
		list = append(list, postgresBackend(admin))
	} else {
		fmt.Fprintln(out, "postgres: skipped (FEEDBACKD_TEST_POSTGRES_URL is not set; make bench sets it when PostgreSQL is installed)")
		fmt.Fprintln(out)
	}
	return list
}

func sqliteBackend(path string) backend {
	return backend{name: "sqlite", open: func(_ context.Context, name string) (string, func() error, error) {
		path := path
		if name != "" {
			path = strings.TrimSuffix(path, ".db") + "-" + name + ".db"
		}
		remove := func() error {
			files, _ := filepath.Glob(path + "*") // the database, its -wal and -shm
			var err error
			for _, f := range files {
				err = errors.Join(err, os.Remove(f))
			}
			return err
		}
		return path, remove, nil
	}}
}

// postgresBackend creates a fresh database next to the admin URL's, dropping
// one a crashed earlier run left behind.
func postgresBackend(admin string) backend {
	return backend{name: "postgres", open: func(ctx context.Context, name string) (string, func() error, error) {
		database := pgDatabase
		if name != "" {
			database += "_" + name
		}
		db, err := databaseURL(admin, database)
		if err != nil {
			return "", nil, err
		}
		drop := "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)"
		if err := pgExec(ctx, admin, drop, "CREATE DATABASE "+database); err != nil {
			return "", nil, err
		}
		remove := func() error {
			// Not ctx: the database must go even when the run was interrupted.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return pgExec(ctx, admin, drop)
		}
		return db, remove, nil
	}}
}

// databaseURL is the admin URL with its database replaced by name.
func databaseURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("FEEDBACKD_TEST_POSTGRES_URL must be a postgres:// URL (got %q)", admin)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// pgExec runs statements on one connection to url.
func pgExec(ctx context.Context, url string, statements ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	for _, s := range statements {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// ------------------------------------------------------------- one backend

// run is one load run against one server.
type run struct {
	target string // "feedbackd" or "ceiling"
	kind   string // "warm-up", "round" (closed loop), "open", "bulk", "hot", "quiet", "export" or "analytics"
	round  int
	sent   int // requests the attacker sent
	ok     int // requests answered 200
	// failures counts the others by kind ("HTTP 500", "no answer"), with
	// the first answer or error of each kind as an example.
	failures map[string]int
	examples map[string]string
	elapsed  time.Duration // from the first request to the last answer
	p50, p99 time.Duration // of the 200 answers
	// p999 and max show the tail beyond p99 (a writer's stall reaches
	// only the requests waiting for it), in the progress lines.
	p999, max time.Duration
	peakRSS   int64 // VmHWM of the server after the run, in bytes
	// rowsPerCommit is how many feedback rows shared a store commit on
	// average during the run (feedbackd only).
	rowsPerCommit float64
	// rate is the requests a second an open-loop run was paced at; 0 is
	// the closed loop's no limit.
	rate int
	// sendRate is the requests an open-loop run sent a second: short of
	// rate when the attacker fell behind, and its latencies are then not
	// those of that rate.
	sendRate float64
	// longRead is the export or analytics mode a run is of; reads,
	// walStart and walMax are what it saw beside the run: the long reads,
	// and the live part of the SQLite WAL at the start and at its largest.
	longRead         string
	reads            reads
	walStart, walMax int64
	// cpuPerRequest is the server's CPU time over the run per request
	// answered 200.
	cpuPerRequest time.Duration
	// sendLag is how late, against the pacer's schedule, the open-loop
	// attacker sent its most delayed request: a long one means the load
	// generator stalled, then caught up in a burst.
	sendLag time.Duration
	// op, shape, rows and p90 are the hot mode's: the kind of operation,
	// the trace it went to ("hot trace", "new trace", "trace of 2"), the
	// hot trace's feedback when the operations started, and the 90th
	// percentile latency.
	op, shape string
	rows      int
	p90       time.Duration
	// hotShare is the share of an open-loop run's requests that went to
	// a hot trace, filled first to rows feedback.
	hotShare float64
	// openShape is the flags that shaped an open-loop run's requests
	// (shapeFlags), empty when they were uniform.
	openShape string
}

// short tells whether an open-loop run sent less than 99% of its rate (not
// exactly 100%: the run's last request may fall just past its end).
func (r run) short() bool { return r.rate > 0 && r.sendRate < 0.99*float64(r.rate) }

func (r run) perSecond() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// backendResult is everything measured on one backend.
type backendResult struct {
	name string
	runs []run
	// logs summarizes what each server wrote on stderr; at --log-level
	// error, any line from feedbackd is an error it logged.
	logs []string
}

// benchBackend runs the comparison and the bulk run on a fresh store, then
// deletes the store.
func benchBackend(ctx context.Context, cfg config, b backend, c *corpus) (res backendResult, err error) {
	db, remove, err := b.open(ctx, "")
	if err != nil {
		return backendResult{name: b.name}, fmt.Errorf("%s: prepare the database: %w", b.name, err)
	}
	var hookedDB string
	if cfg.webhook {
		var removeHooked func() error
		if hookedDB, removeHooked, err = b.open(ctx, "webhook"); err != nil {
			return backendResult{name: b.name}, errors.Join(fmt.Errorf("%s: prepare the second database: %w", b.name, err), remove())
		}
		defer func() {
			if rerr := removeHooked(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: delete the second database: %w", b.name, rerr))
			}
		}()
	}
	res, err = benchServers(ctx, cfg, b.name, db, hookedDB, c)
	if rerr := remove(); rerr != nil {
		err = errors.Join(err, fmt.Errorf("%s: delete the database: %w", b.name, rerr))
	}
	return res, err
}

// servers are the servers one backend's modes measure.
type servers struct {
	fd *process // feedbackd, on a fresh store
	ce *process // the ceiling (durable with -durable-ceiling)
	// floor is the durability floor beside the bare ceiling, with -floor;
	// nil otherwise.
	floor *process
	// hooked is the feedbackd with a webhook, with -webhook; nil
	// otherwise.
	hooked *process
}

// compared are the servers the closed and open loops compare, feedbackd
// first.
func (sv servers) compared() []*process {
	out := []*process{sv.fd}
	if sv.hooked != nil {
		out = append(out, sv.hooked)
	}
	out = append(out, sv.ce)
	if sv.floor != nil {
		out = append(out, sv.floor)
	}
	return out
}

// benchServers starts feedbackd on db and the ceiling (and the floor),
// measures them, and stops them with SIGTERM, reporting a server that
// fails to stop cleanly.
func benchServers(ctx context.Context, cfg config, name, db, hookedDB string, c *corpus) (res backendResult, err error) {
	res.name = name
	var (
		sv servers
		rc *receiver
	)
	defer func() {
		if rc != nil {
			rc.close()
			res.logs = append(res.logs, fmt.Sprintf("the webhook's receiver got %d deliveries", rc.deliveries.Load()))
		}
		for _, p := range []*process{sv.floor, sv.ce, sv.hooked, sv.fd} {
			if p != nil {
				err = errors.Join(err, p.stop())
				res.logs = append(res.logs, p.logSummary())
			}
		}
	}()
	var durable []string // the ceiling's arguments that make it the floor
	if cfg.durableCeiling || cfg.floor {
		dir, err := os.MkdirTemp("", "ceiling-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		durable = []string{"-store", filepath.Join(dir, "bodies.db")}
	}
	fd, err := startFeedbackd(ctx, "feedbackd", cfg.feedbackd, db, cfg.pprofAddr)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	sv.fd = fd
	if cfg.webhook {
		if sv.hooked, rc, err = startHooked(ctx, cfg, hookedDB); err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
	}
	var ceilingArgs []string
	if cfg.durableCeiling {
		ceilingArgs = durable
	}
	ce, err := startProcess(ctx, "ceiling", cfg.ceiling, ceilingArgs, childEnv(), ceilingReady)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	sv.ce = ce
	if cfg.floor {
		floor, err := startProcess(ctx, "floor", cfg.ceiling, durable, childEnv(), ceilingReady)
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		sv.floor = floor
	}

	res.runs, err = measureModes(ctx, cfg, name, sv, c)
	return res, err
}

// measureModes warms both servers up, then runs the modes cfg selects, each
// after the previous one on the same two servers and store. The open loop
// comes before bulk so that its numbers depend as little as possible on
// which other modes ran: after bulk, the store would also hold the bulk
// run's rows (about as many again as the closed loop's, written in commits
// of thousands), and the open loop's tail latencies, the figures most
// sensitive to the store's state, would differ more between a full run and
// -modes open.
func measureModes(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
	var runs []run
	for _, step := range []struct {
		on      bool
		measure mode
	}{{true, warmUp}, {cfg.modes.closed, closedLoop}, {cfg.modes.open, openLoop}, {cfg.modes.bulk, bulk}, {cfg.modes.hot, hotOps}, {cfg.modes.export, longReadLoad(exporter(cfg.feedbackd))}, {cfg.modes.analytics, longReadLoad(analyticsReader)}} {
		if !step.on {
			continue
		}
		more, err := step.measure(ctx, cfg, backend, sv, c)
		runs = append(runs, more...)
		if err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// mode measures one part of the benchmark on feedbackd and the ceiling (and
// the floor) and returns its runs, also those done before an error.
type mode func(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error)

// startFeedbackd serves a fresh store with the benchmark's key, as the
// target name, with extra arguments.
func startFeedbackd(ctx context.Context, name, path, db, pprofAddr string, extra ...string) (*process, error) {
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--log-level", "error"}, extra...)
	if pprofAddr != "" {
		args = append(args, "--pprof-addr", pprofAddr)
	}
	env := append(childEnv(), "FEEDBACKD_BOOTSTRAP_KEY="+apiKey)
	p, err := startProcess(ctx, name, path, args, env, feedbackdReady)
	if p != nil {
		p.db = db
	}
	return p, err
}

// childEnv is this process's environment without FEEDBACKD_ variables, so
// that a rate limit or body limit set in the caller's shell does not
// silently change what is measured.
func childEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "FEEDBACKD_")
	})
}

// warmUp puts each server under the closed loop's load for cfg.warmup,
// unmeasured, so that the first measured run does not pay for cold caches,
// a small heap and connections not yet made, whichever mode it is.
func warmUp(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
	if cfg.warmup == 0 {
		return nil, nil
	}
	var runs []run
	for _, p := range sv.compared() {
		r, err := measure(ctx, cfg, backend, p, run{target: p.name, kind: "warm-up"}, c.single, cfg.warmup)
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// closedLoop runs the rounds without a rate limit.
func closedLoop(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
	return alternate(ctx, cfg, backend, sv, run{kind: "round"}, c.single, cfg.duration)
}

// openLoop runs the rounds of the open loop at each of cfg.rates in turn,
// every server getting the same bodies: of cfg's shape (openBodies).
func openLoop(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
	body, err := openBodies(ctx, cfg, backend, sv, c)
	if err != nil {
		return nil, err
	}
	var runs []run
	for _, rate := range cfg.rates {
		r := run{kind: "open", rate: rate, hotShare: cfg.hotShare, rows: cfg.hotRows, openShape: shapeFlags(cfg)}
		more, err := alternate(ctx, cfg, backend, sv, r, body, cfg.rateDuration)
		runs = append(runs, more...)
		if err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// bulk measures feedbackd's bulk ingestion: arrays of bulkSize for
// cfg.bulkDuration (on feedbackd only, as it always was).
func bulk(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
	r, err := measure(ctx, cfg, backend, sv.fd, run{target: "feedbackd", kind: "bulk"}, c.bulk, cfg.bulkDuration)
	if err != nil {
		return nil, err
	}
	return []run{r}, nil
}

// alternate runs cfg.rounds rounds of posts of body like r (its kind and
// rate) for d on each server, feedbackd first in odd rounds and last in
// even ones.
func alternate(ctx context.Context, cfg config, backend string, sv servers, r run, body func() []byte, d time.Duration) ([]run, error) {
	var runs []run
	for round := 1; round <= cfg.rounds; round++ {
		order := sv.compared()
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, p := range order {
			r.target, r.round = p.name, round
			m, err := measure(ctx, cfg, backend, p, r, body, d)
			if err != nil {
				return runs, err
			}
			runs = append(runs, m)
		}
	}
	return runs, nil
}

// measure runs one attack on p with bodies from body, fills r in and prints
// a progress line on stderr. An interrupted run is an error: its numbers
// cover only part of the duration.
func measure(ctx context.Context, cfg config, backend string, p *process, r run, body func() []byte, d time.Duration) (run, error) {
	if err := p.alive(); err != nil {
		return r, err
	}
	var before commits
	isFeedbackd := strings.HasPrefix(r.target, "feedbackd")
	if isFeedbackd {
		var err error
		if before, err = readCommits(ctx, p.url); err != nil {
			return r, fmt.Errorf("%s: %w", backend, err)
		}
	}
	cpuBefore, err := cpuTime(p.cmd.Process.Pid)
	if err != nil {
		return r, errors.Join(fmt.Errorf("%s: CPU time of %s: %w", backend, p.name, err), p.alive())
	}
	attack(ctx, &r, cfg.connections, targeter(p.url+"/v1/feedback", body), d)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	cpuAfter, err := cpuTime(p.cmd.Process.Pid)
	if err != nil {
		return r, errors.Join(fmt.Errorf("%s: CPU time of %s: %w", backend, p.name, err), p.alive())
	}
	if r.ok > 0 {
		r.cpuPerRequest = (cpuAfter - cpuBefore) / time.Duration(r.ok)
	}
	if isFeedbackd {
		after, err := readCommits(ctx, p.url)
		if err != nil {
			return r, fmt.Errorf("%s: %w", backend, err)
		}
		r.rowsPerCommit = rowsPerCommit(before, after)
	}
	rss, err := peakRSS(p.cmd.Process.Pid)
	if err != nil {
		return r, errors.Join(fmt.Errorf("%s: peak RSS of %s: %w", backend, p.name, err), p.alive())
	}
	r.peakRSS = rss
	extra := ""
	if r.rowsPerCommit > 0 {
		extra = fmt.Sprintf("  %.1f rows/commit", r.rowsPerCommit)
	}
	if r.rate > 0 {
		extra += fmt.Sprintf("  sent %.0f/s, up to %s late", r.sendRate, ms(r.sendLag))
	}
	fmt.Fprintf(os.Stderr, "%-8s %-9s %-9s %8.0f req/s  p50 %s  p99 %s  p99.9 %s  max %s  CPU %s/req  peak RSS %s  %d failed%s\n",
		backend, label(r), r.target, r.perSecond(), ms(r.p50), ms(r.p99), ms(r.p999), ms(r.max), us(r.cpuPerRequest), mb(r.peakRSS), r.sent-r.ok, extra)
	return r, nil
}

// label names a run in progress lines and the list of failures.
func label(r run) string {
	switch r.kind {
	case "round":
		return "round " + strconv.Itoa(r.round)
	case "open":
		if r.openShape != "" {
			return fmt.Sprintf("open %d/s round %d (%s)", r.rate, r.round, r.openShape)
		}
		return fmt.Sprintf("open %d/s round %d", r.rate, r.round)
	case "quiet", "export", "analytics":
		return fmt.Sprintf("%s %d/s round %d", r.kind, r.rate, r.round)
	case "hot":
		return fmt.Sprintf("hot mode: %s, %s", r.op, r.shape)
	}
	return r.kind
}

// ------------------------------------------------------------------- load

// attack sends requests from tr for d and records the outcome in r: with
// r.rate 0, in a closed loop over exactly conns keep-alive connections;
// otherwise in an open loop at r.rate requests a second.
func attack(ctx context.Context, r *run, conns int, tr vegeta.Targeter, d time.Duration) {
	a := closedAttacker(conns)
	if r.rate > 0 {
		a = openAttacker(r.rate)
	}
	defer context.AfterFunc(ctx, func() { a.Stop() })()

	r.failures, r.examples = map[string]int{}, map[string]string{}
	var latencies []time.Duration
	start := time.Now()
	// A zero Freq is no rate limit: each worker sends its next request as
	// soon as it has the answer to the previous one.
	for res := range a.Attack(tr, vegeta.Rate{Freq: r.rate, Per: time.Second}, d, r.target) {
		r.sent++
		if r.rate > 0 {
			r.sendLag = max(r.sendLag, sendLag(start, res, r.rate))
		}
		if res.Code == http.StatusOK && res.Error == "" {
			r.ok++
			latencies = append(latencies, res.Latency)
			continue
		}
		r.fail(res)
	}
	r.elapsed = time.Since(start)
	if r.rate > 0 {
		r.sendRate = float64(r.sent) / d.Seconds()
	}
	slices.Sort(latencies)
	r.p50, r.p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	r.p999, r.max = percentile(latencies, 0.999), percentile(latencies, 1)
}

// closedAttacker keeps conns requests in flight, each on its own keep-alive
// connection, the next sent as soon as the answer is in. It has as many
// workers as connections, and never more: vegeta otherwise adds workers when
// all are busy, and with them connections.
func closedAttacker(conns int) *vegeta.Attacker {
	return vegeta.NewAttacker(
		vegeta.Workers(uint64(conns)),
		vegeta.MaxWorkers(uint64(conns)),
		vegeta.Connections(conns),
		vegeta.MaxConnections(conns),
		vegeta.KeepAlive(true),
		vegeta.Timeout(requestTimeout),
	)
}

// openAttacker can keep rate requests a second going while each takes up to
// a second on average: it has a second's worth of workers, each sending a
// request when the pacer says and waiting for its answer, and keeps as many
// keep-alive connections. A server slower than that is overloaded at this
// rate; the attacker then falls behind, and the run reports it. All workers
// start at once, so that vegeta never has to start one as a request falls
// due; an idle one costs a goroutine, and opens no connection.
func openAttacker(rate int) *vegeta.Attacker {
	return vegeta.NewAttacker(
		vegeta.Workers(uint64(rate)),
		vegeta.MaxWorkers(uint64(rate)),
		vegeta.Connections(rate),
		vegeta.MaxConnections(rate),
		vegeta.KeepAlive(true),
		vegeta.Timeout(requestTimeout),
	)
}

// sendLag is how late res was sent against the schedule of vegeta's
// constant pacer, which sends request n (from 0) at (n+1)/rate seconds after
// the attack's start, and sends a late one at once: the lag is how long the
// load generator could not keep up. start is taken just before the attack's
// own, so the lag can be a few microseconds too long.
func sendLag(start time.Time, res *vegeta.Result, rate int) time.Duration {
	interval := time.Second / time.Duration(rate)
	return res.Timestamp.Sub(start) - time.Duration(res.Seq+1)*interval
}

// fail counts a request that did not get a 200, keeping the first answer
// body or error of its kind.
func (r *run) fail(res *vegeta.Result) {
	kind, example := "no answer", res.Error
	if res.Code != 0 {
		kind, example = "HTTP "+strconv.Itoa(int(res.Code)), string(res.Body)
	}
	r.failures[kind]++
	if _, ok := r.examples[kind]; !ok {
		r.examples[kind] = truncate(strings.TrimSpace(example), 300)
	}
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// targeter posts body() with the key and JSON content type. Every request
// carries the same headers to feedbackd and the ceiling.
func targeter(url string, body func() []byte) vegeta.Targeter {
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("x-portkey-api-key", apiKey)
	return func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header, t.Body = http.MethodPost, url, header, body()
		return nil
	}
}

// ----------------------------------------------------------------- bodies

// corpus makes request bodies. The content of each feedback comes from a
// fixed set of pre-generated ones, so that every run sends the same mix;
// the trace id is new on every feedback, as each real one is about a
// different request.
type corpus struct {
	prefix string        // the random first half of every trace id of this process
	next   atomic.Uint64 // the second half
	tails  [][]byte      // each feedback after its trace id: `","value":3,...}`
}

// newCorpus pre-generates n feedback contents of shape with a fixed seed.
func newCorpus(n int, shape workload.Shape) (*corpus, error) {
	c := &corpus{prefix: fmt.Sprintf("%016x", rand.Uint64())}
	r := rand.New(rand.NewPCG(1, 2))
	meta, err := workload.NewGenerator(r, corpusUsers, shape)
	if err != nil {
		return nil, err
	}
	for range n {
		c.tails = append(c.tails, randomTail(r, meta))
	}
	return c, nil
}

// corpusUsers is how many distinct _user values the corpus draws from.
const corpusUsers = 10_000

// randomTail is the rest of one feedback: a value that is a thumb (±1) half
// of the time and any value otherwise, a weight most of the time, and
// metadata from meta, which draws from r too.
func randomTail(r *rand.Rand, meta *workload.Generator) []byte {
	value := r.IntN(21) - 10
	if r.IntN(2) == 0 {
		value = 2*r.IntN(2) - 1
	}
	m, _ := json.Marshal(meta.Metadata()) // a map of strings always marshals
	b := fmt.Appendf(nil, `","value":%d`, value)
	if r.IntN(5) > 0 {
		b = fmt.Appendf(b, `,"weight":%.2f`, float64(r.IntN(101))/100)
	}
	b = append(append(b, `,"metadata":`...), m...)
	return append(b, '}')
}

// appendItem appends one feedback with a new trace id.
func (c *corpus) appendItem(buf []byte) []byte {
	n := c.next.Add(1)
	buf = append(buf, `{"trace_id":"`...)
	buf = append(buf, c.prefix...)
	buf = fmt.Appendf(buf, "%016x", n)
	return append(buf, c.tails[n%uint64(len(c.tails))]...)
}

// single is the body of a single-feedback request.
func (c *corpus) single() []byte { return c.appendItem(make([]byte, 0, 256)) }

// bulk is the body of a bulk request: an array of bulkSize feedback.
func (c *corpus) bulk() []byte {
	buf := append(make([]byte, 0, bulkSize*200), '[')
	for i := range bulkSize {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = c.appendItem(buf)
	}
	return append(buf, ']')
}

// ---------------------------------------------------------------- servers

// process is a server under test, running as a child process.
type process struct {
	name           string
	cmd            *exec.Cmd
	url            string // its base URL, from the line it printed
	db             string // feedbackd's --db
	stdout, stderr *lineLog
	done           chan struct{} // closed once it has exited
	exitErr        error         // cmd.Wait's result, once done
	stopOnce       sync.Once
	stopErr        error
}

// startProcess starts path and waits for the line matching ready on its
// stdout, whose first group is the server's base URL. Its output keeps
// being read to the end, so it never blocks on a full pipe.
func startProcess(ctx context.Context, name, path string, args, env []string, ready *regexp.Regexp) (*process, error) {
	p := &process{name: name, stdout: newLineLog(ready), stderr: newLineLog(nil), done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	select {
	case p.url = <-p.stdout.found:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening (%v)%s", name, p.exitErr, p.output())
	case <-timeout.C:
		err := fmt.Errorf("%s printed no address within %s%s", name, readyTimeout, p.output())
		return nil, errors.Join(err, p.stop())
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), p.stop())
	}
}

// alive is nil while the server runs, and says how it ended otherwise.
func (p *process) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited during the benchmark (%v)%s", p.name, p.exitErr, p.output())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for a clean exit, killing the server when it
// takes too long. Only the first call acts.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		if err := p.alive(); err != nil {
			p.stopErr = err
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		timeout := time.NewTimer(stopTimeout)
		defer timeout.Stop()
		select {
		case <-p.done:
			if p.exitErr != nil {
				p.stopErr = fmt.Errorf("%s failed on SIGTERM (%v)%s", p.name, p.exitErr, p.output())
			}
		case <-timeout.C:
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, stopTimeout)
		}
	})
	return p.stopErr
}

// output is the end of what the server wrote, for error messages.
func (p *process) output() string {
	var b strings.Builder
	for _, l := range []struct {
		name string
		log  *lineLog
	}{{"stdout", p.stdout}, {"stderr", p.stderr}} {
		if n, tail := l.log.last(); n > 0 {
			fmt.Fprintf(&b, "\n  last lines of its %s:\n    %s", l.name, strings.Join(tail, "\n    "))
		}
	}
	return b.String()
}

// logSummary says whether the server wrote anything on stderr.
func (p *process) logSummary() string {
	n, tail := p.stderr.last()
	if n == 0 {
		return fmt.Sprintf("%s wrote nothing on stderr", p.name)
	}
	return fmt.Sprintf("%s wrote %d lines on stderr; the last ones:\n    %s", p.name, n, strings.Join(tail, "\n    "))
}

// peakRSS reads the peak resident set size (VmHWM) of a process. It is the
// peak since the process started, so after a run it covers that run and
// all before it on the same server.
// cpuTime is the CPU time, user and system, that process pid has used:
// per request, it is what a request costs the server however busy the
// machine is, where latencies are not.
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th, in clock ticks
	// (USER_HZ, 100 on Linux).
	_, rest, ok := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, errors.New("unexpected /proc stat line")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

func peakRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM line")
}

// lineLog is the io.Writer a child's output goes to: it counts the lines,
// keeps the last few for error messages, and sends the first group of the
// first line matching its pattern on found.
type lineLog struct {
	mu      sync.Mutex
	pattern *regexp.Regexp
	found   chan string
	partial []byte
	lines   int
	tail    []string
}

const tailLines = 10

func newLineLog(pattern *regexp.Regexp) *lineLog {
	return &lineLog{pattern: pattern, found: make(chan string, 1)}
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > 64<<10 { // a runaway line: keep its start
		l.line(string(l.partial[:1024]) + "...")
		l.partial = nil
	}
	l.partial = slices.Clone(l.partial)
	return len(b), nil
}

func (l *lineLog) line(s string) {
	l.lines++
	l.tail = append(l.tail, truncate(s, 500))
	if len(l.tail) > tailLines {
		l.tail = l.tail[1:]
	}
	if l.pattern == nil {
		return
	}
	if m := l.pattern.FindStringSubmatch(s); m != nil {
		l.found <- m[1]
		l.pattern = nil
	}
}

// last returns the number of lines written and the last few.
func (l *lineLog) last() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, slices.Clone(l.tail)
}

// ----------------------------------------------------------------- report

// printMachine describes what the numbers were measured on: without it they
// mean nothing to the next reader.
func printMachine(w io.Writer, cfg config) {
	fmt.Fprintln(w, "# feedbackd ingestion benchmark")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- machine: %d CPUs (%s), GOMAXPROCS %d, %s memory, load average at start %s\n",
		runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), memTotal(), loadAverage())
	fmt.Fprintf(w, "- Go: this driver %s %s/%s; feedbackd built with %s; ceiling built with %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, builtWith(cfg.feedbackd), builtWith(cfg.ceiling))
	fmt.Fprintf(w, "- load: vegeta, on the same machine as the servers, after a %s warm-up; %s\n", cfg.warmup, loadModes(cfg))
	fmt.Fprintln(w)
}

// loadModes describes the load of each mode that runs.
func loadModes(cfg config) string {
	var modes []string
	if cfg.modes.closed {
		modes = append(modes, fmt.Sprintf("closed loop: %d keep-alive connections, no rate limit, %s per run, rounds: %d",
			cfg.connections, cfg.duration, cfg.rounds))
	}
	if cfg.modes.open {
		modes = append(modes, fmt.Sprintf("open loop: %s requests a second, %s per run, rounds: %d, to every server alike %s",
			cfg.rates.String(), cfg.rateDuration, cfg.rounds, shapeProse(cfg)))
	}
	if cfg.floor && (cfg.modes.closed || cfg.modes.open) {
		modes = append(modes, "the durability floor (the ceiling appending each body to a bare SQLite table, synchronous FULL) measured beside the bare ceiling")
	}
	if cfg.modes.bulk {
		modes = append(modes, fmt.Sprintf("bulk: arrays of %d for %s", bulkSize, cfg.bulkDuration))
	}
	if cfg.modes.hot {
		modes = append(modes, fmt.Sprintf("hot: %d operations of each kind on a trace of %d feedback, alternating with as many on new or small traces, one at a time",
			cfg.hotOps, cfg.hotRows))
	}
	for _, lr := range []struct {
		on   bool
		what string
	}{{cfg.modes.export, "export"}, {cfg.modes.analytics, "analytics: groups by _user"}} {
		if lr.on {
			modes = append(modes, fmt.Sprintf("%s: %d requests a second, %s or more per run, alone and beside the reads, on %d feedback or more, rounds: %d",
				lr.what, cfg.rates[0], cfg.rateDuration, cfg.fillRows, cfg.rounds))
		}
	}
	return strings.Join(modes, "; ")
}

// procField returns the value of a /proc file's first "key: value" line
// with that key, or "?".
func procField(file, key string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func cpuModel() string { return procField("/proc/cpuinfo", "model name") }

func memTotal() string {
	kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// builtWith is the Go version a binary was built with.
func builtWith(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "?"
	}
	return info.GoVersion
}

// series names the runs that stats pools: one kind of run on one target at
// one rate (0 but for the open loop).
type series struct {
	kind, target string
	rate         int
}

// stats is the median of a server's measured rounds of one series.
type stats struct {
	perSecond      []float64 // of each round
	median         float64
	p50, p99, p999 time.Duration
	max            time.Duration // the longest of any round, not a median
	peakRSS        int64
	failed         int
	cpuPerRequest  time.Duration // the median of the rounds'
	// rowsPerCommit is the median of the rounds' (0 for the ceiling).
	rowsPerCommit float64
	// minSendRate and sendLag are the open loop's: the lowest send rate of
	// any round and the longest lag; short counts the rounds short of the
	// rate.
	minSendRate float64
	sendLag     time.Duration
	short       int
}

func summarize(runs []run, of series) stats {
	var s stats
	var p50, p99, p999, cpu []time.Duration
	var perCommit, sendRates []float64
	for _, r := range runs {
		if r.kind != of.kind || r.target != of.target || r.rate != of.rate {
			continue
		}
		perCommit = append(perCommit, r.rowsPerCommit)
		s.perSecond = append(s.perSecond, r.perSecond())
		p50, p99, p999 = append(p50, r.p50), append(p99, r.p99), append(p999, r.p999)
		cpu = append(cpu, r.cpuPerRequest)
		s.max = max(s.max, r.max)
		s.peakRSS = max(s.peakRSS, r.peakRSS)
		s.failed += r.sent - r.ok
		sendRates = append(sendRates, r.sendRate)
		s.sendLag = max(s.sendLag, r.sendLag)
		if r.short() {
			s.short++
		}
	}
	s.median = median(s.perSecond)
	s.rowsPerCommit = median(perCommit)
	s.p50, s.p99, s.p999 = medianDuration(p50), medianDuration(p99), medianDuration(p999)
	s.cpuPerRequest = medianDuration(cpu)
	if len(sendRates) > 0 {
		s.minSendRate = slices.Min(sendRates)
	}
	return s
}

// targets are the servers, in the order the tables list them.
var targets = []string{"feedbackd", hookedTarget, "ceiling", "floor"}

// printReport prints a section for each mode that ran, the servers' logs
// and every run with failures, and returns the number of such runs.
func printReport(w io.Writer, results []backendResult) int {
	printClosed(w, results)
	printOpen(w, results)
	printBulk(w, results)
	printHot(w, results)
	printLongRead(w, results, exporter(""))
	printLongRead(w, results, analyticsReader)
	fmt.Fprintln(w, "## Server logs")
	fmt.Fprintln(w)
	for _, res := range results {
		for _, l := range res.logs {
			fmt.Fprintf(w, "- %s: %s\n", res.name, l)
		}
	}
	return printFailures(w, results)
}

// hasKind tells whether any backend has a run of that kind.
func hasKind(results []backendResult, kind string) bool {
	return slices.ContainsFunc(results, func(res backendResult) bool {
		return slices.ContainsFunc(res.runs, func(r run) bool { return r.kind == kind })
	})
}

// printClosed prints the closed loop's table and ratios.
func printClosed(w io.Writer, results []backendResult) {
	if !hasKind(results, "round") {
		return
	}
	fmt.Fprintln(w, "## Closed loop: no rate limit")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backend | target | req/s (median) | req/s of each round | p50 | p99 | peak RSS | failed |")
	fmt.Fprintln(w, "|---|---|---:|---|---:|---:|---:|---:|")
	for _, res := range results {
		for _, target := range targets {
			s := summarize(res.runs, series{kind: "round", target: target})
			if len(s.perSecond) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %s | %d |\n",
				res.name, target, s.median, joinRates(s.perSecond), ms(s.p50), ms(s.p99), mb(s.peakRSS), s.failed)
		}
	}
	fmt.Fprintln(w)
	for _, res := range results {
		printRatio(w, res)
	}
	fmt.Fprintln(w)
}

// printRatio compares feedbackd's medians with the ceiling's.
func printRatio(w io.Writer, res backendResult) {
	fd := summarize(res.runs, series{kind: "round", target: "feedbackd"})
	ce := summarize(res.runs, series{kind: "round", target: "ceiling"})
	if len(fd.perSecond) == 0 || len(ce.perSecond) == 0 || ce.median == 0 {
		return
	}
	fmt.Fprintf(w, "- %s: feedbackd/ceiling = %.3f (%.0f / %.0f req/s): feedbackd serves %.1f%% of its HTTP stack's ceiling; "+
		"latency p50 %s vs %s, p99 %s vs %s; %.1f rows per store commit\n",
		res.name, fd.median/ce.median, fd.median, ce.median, 100*fd.median/ce.median,
		ms(fd.p50), ms(ce.p50), ms(fd.p99), ms(ce.p99), fd.rowsPerCommit)
}

// printOpen prints the open loop's latencies on each server at each rate,
// feedbackd's tail over the ceiling's, and the runs whose attacker fell
// short of the rate.
func printOpen(w io.Writer, results []backendResult) {
	if !hasKind(results, "open") {
		return
	}
	fmt.Fprintln(w, "## Open loop: fixed request rates")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Latencies are medians over rounds but max, the longest of any round; sent/s is the lowest round's, "+
		"and late the longest any request was sent after its time.")
	fmt.Fprintln(w)
	shape := "uniform (no shape flags)"
	for _, res := range results {
		if i := slices.IndexFunc(res.runs, func(r run) bool { return r.kind == "open" }); i >= 0 && res.runs[i].openShape != "" {
			shape = "`" + res.runs[i].openShape + "` (adversarial: not comparable with uniform figures)"
		}
	}
	fmt.Fprintf(w, "- shape of the requests: %s\n", shape)
	for _, res := range results {
		if i := slices.IndexFunc(res.runs, func(r run) bool { return r.kind == "open" && r.hotShare > 0 }); i >= 0 {
			fmt.Fprintf(w, "- %s: %.0f%% of every server's requests went to one hot trace, filled first on feedbackd to %d feedback.\n",
				res.name, 100*res.runs[i].hotShare, res.runs[i].rows)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backend | rate | target | sent/s | p50 | p99 | p99.9 | max | late | CPU/req | rows/commit | failed |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range results {
		for _, rate := range openRates(res) {
			for _, target := range targets {
				printOpenRow(w, res.name, rate, target, summarize(res.runs, series{"open", target, rate}))
			}
		}
	}
	fmt.Fprintln(w)
	printOpenRatios(w, results)
	printShort(w, results)
}

// openRates are the rates of a backend's open-loop runs, in the order run.
func openRates(res backendResult) []int {
	var rates []int
	for _, r := range res.runs {
		if r.kind == "open" && !slices.Contains(rates, r.rate) {
			rates = append(rates, r.rate)
		}
	}
	return rates
}

// printOpenRow prints one server's line of the open-loop table, flagging a
// send rate short of the rate.
func printOpenRow(w io.Writer, backend string, rate int, target string, s stats) {
	if len(s.perSecond) == 0 {
		return
	}
	sent := fmt.Sprintf("%.0f", s.minSendRate)
	if s.short > 0 {
		sent = "**" + sent + " short**"
	}
	perCommit := "-"
	if s.rowsPerCommit > 0 {
		perCommit = fmt.Sprintf("%.1f", s.rowsPerCommit)
	}
	fmt.Fprintf(w, "| %s | %d/s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
		backend, rate, target, sent, ms(s.p50), ms(s.p99), ms(s.p999), ms(s.max), ms(s.sendLag), us(s.cpuPerRequest), perCommit, s.failed)
}

// printOpenRatios prints, for each backend and rate, feedbackd's p99 and
// p99.9 over the ceiling's, and with -floor over the floor's too: what
// feedbackd's own work adds to the tail a client sees at that rate, beyond
// the bare HTTP stack and beyond the least a durable store pays.
func printOpenRatios(w io.Writer, results []backendResult) {
	withFloor := slices.ContainsFunc(results, func(res backendResult) bool {
		return slices.ContainsFunc(res.runs, func(r run) bool { return r.kind == "open" && r.target == "floor" })
	})
	if withFloor {
		fmt.Fprintln(w, "The target: feedbackd's p99 at most 1.5 times the durable floor's; the goal: at most 5 times the bare ceiling's.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| backend | rate | p99 feedbackd / floor | p99 feedbackd / ceiling | p99.9 feedbackd / floor | p99.9 feedbackd / ceiling |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	} else {
		fmt.Fprintln(w, "| backend | rate | p99 feedbackd / ceiling | p99.9 feedbackd / ceiling |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
	}
	for _, res := range results {
		for _, rate := range openRates(res) {
			fd := summarize(res.runs, series{"open", "feedbackd", rate})
			ce := summarize(res.runs, series{"open", "ceiling", rate})
			if len(fd.perSecond) == 0 || len(ce.perSecond) == 0 {
				continue
			}
			if !withFloor {
				fmt.Fprintf(w, "| %s | %d/s | %s | %s |\n", res.name, rate, latencyRatio(fd.p99, ce.p99), latencyRatio(fd.p999, ce.p999))
				continue
			}
			fl := summarize(res.runs, series{"open", "floor", rate})
			fmt.Fprintf(w, "| %s | %d/s | %s | %s | %s | %s |\n", res.name, rate,
				latencyRatio(fd.p99, fl.p99), latencyRatio(fd.p99, ce.p99), latencyRatio(fd.p999, fl.p999), latencyRatio(fd.p999, ce.p999))
		}
	}
	fmt.Fprintln(w)
	for _, res := range results {
		for _, rate := range openRates(res) {
			fd := summarize(res.runs, series{"open", "feedbackd", rate})
			hooked := summarize(res.runs, series{"open", hookedTarget, rate})
			if len(fd.perSecond) > 0 && len(hooked.perSecond) > 0 {
				fmt.Fprintf(w, "- %s at %d/s: p99 with a webhook / without = %s; p50 %s\n", res.name, rate,
					latencyRatio(hooked.p99, fd.p99), latencyRatio(hooked.p50, fd.p50))
			}
		}
	}
	fmt.Fprintln(w)
}

// latencyRatio is "ratio (fd / ce)", or only the latencies when ce is 0.
func latencyRatio(fd, ce time.Duration) string {
	if ce == 0 {
		return fmt.Sprintf("- (%s / %s)", ms(fd), ms(ce))
	}
	return fmt.Sprintf("%.2f (%s / %s)", float64(fd)/float64(ce), ms(fd), ms(ce))
}

// printShort lists every open-loop run that sent less than its rate. It is
// a result, not a failure of the program: the server, or the machine the
// attacker shares with it, could not keep up with the rate, and that run's
// latencies are those of a lower one.
func printShort(w io.Writer, results []backendResult) {
	short := 0
	for _, res := range results {
		for _, r := range res.runs {
			if r.short() {
				short++
				fmt.Fprintf(w, "- !!! %s %s %s: sent %.0f requests a second, short of %d: the attacker fell behind, "+
					"so these latencies are not those of %d/s\n", res.name, r.target, label(r), r.sendRate, r.rate, r.rate)
			}
		}
	}
	if short > 0 {
		fmt.Fprintln(w)
	}
}

// printBulk reports the bulk runs in feedback stored a second.
func printBulk(w io.Writer, results []backendResult) {
	if !hasKind(results, "bulk") {
		return
	}
	fmt.Fprintf(w, "## Bulk: arrays of %d to feedbackd\n\n", bulkSize)
	for _, res := range results {
		for _, r := range res.runs {
			if r.kind != "bulk" {
				continue
			}
			fmt.Fprintf(w, "- %s: %.1f req/s = %.0f feedback stored/s; p50 %s, p99 %s; peak RSS %s; %.0f rows per commit; %d failed\n",
				res.name, r.perSecond(), r.perSecond()*bulkSize, ms(r.p50), ms(r.p99), mb(r.peakRSS), r.rowsPerCommit, r.sent-r.ok)
		}
	}
	fmt.Fprintln(w)
}

// printFailures lists every run, warm-ups included, with a request that did
// not get a 200, and returns how many there were.
func printFailures(w io.Writer, results []backendResult) int {
	failed := 0
	for _, res := range results {
		for _, r := range res.runs {
			if r.sent == r.ok {
				continue
			}
			if failed == 0 {
				fmt.Fprintln(w, "\n## !!! FAILED REQUESTS: the runs below are not valid measurements")
			}
			failed++
			fmt.Fprintf(w, "\n!!! %s %s %s: %d of %d requests failed\n", res.name, r.target, label(r), r.sent-r.ok, r.sent)
			for _, kind := range slices.Sorted(maps.Keys(r.failures)) {
				fmt.Fprintf(w, "    %s x%d, e.g. %s\n", kind, r.failures[kind], r.examples[kind])
			}
		}
	}
	if failed == 0 {
		fmt.Fprintln(w, "\nNo failed requests: every answer was 200.")
	}
	return failed
}

func joinRates(rates []float64) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		s[i] = strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianDuration(ds []time.Duration) time.Duration {
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func mb(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
