package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// A long reader is what the export and analytics modes run beside single
// writes: `feedbackd export` of the whole store, or the analytics read
// that reads the most rows (groups by _user, unfiltered, over everything
// stored), each over and over.
type longReader struct {
	mode string // the run kind beside it, also the -modes name
	what string // for the report
	// once reads to the end (done 1) or until stop is closed (done 0,
	// no error).
	once func(ctx context.Context, fd *process, stop <-chan struct{}) reads
}

func exporter(bin string) longReader {
	return longReader{"export", "`feedbackd export` of the whole store", func(ctx context.Context, fd *process, stop <-chan struct{}) reads {
		return exportOnce(ctx, bin, fd.db, stop)
	}}
}

var analyticsReader = longReader{"analytics", "`GET /v1/analytics/groups/metadata/_user` over everything stored", analyticsOnce}

// longReadLoad measures what a long read does to writes: the open loop at
// the first of cfg.rates on feedbackd alone ("quiet"), then the same while
// lr runs again and again beside it, in each round. The store is first
// filled with bulks to cfg.fillRows, unmeasured, so that a read takes
// seconds, and one read runs alone, unmeasured, which also lets the
// checkpointer catch up with the fill; each run then lasts long enough for
// two reads. On SQLite the WAL's largest size is sampled too: a reader
// keeps the checkpointer from resetting it.
func longReadLoad(lr longReader) mode {
	return func(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
		fd := sv.fd
		if err := fill(ctx, fd, c, cfg.fillRows); err != nil {
			return nil, fmt.Errorf("%s: fill the store for the %s mode: %w", backend, lr.mode, err)
		}
		never := make(chan struct{})
		first := lr.once(ctx, fd, never)
		if first.err != nil {
			return nil, fmt.Errorf("%s: %w", backend, first.err)
		}
		d := max(cfg.rateDuration, 2*first.took+time.Second)
		fmt.Fprintf(os.Stderr, "%-8s %s alone: %d rows in %s (%d stopped at the server's time limit); runs of %s\n", backend, lr.mode, first.rows, ms(first.took), first.cut, d)
		rate := cfg.rates[0]
		var runs []run
		for round := 1; round <= cfg.rounds; round++ {
			for _, kind := range []string{"quiet", lr.mode} {
				r := run{target: "feedbackd", kind: kind, longRead: lr.mode, rate: rate, round: round}
				stop := make(chan struct{})
				var (
					wg     sync.WaitGroup
					rd     reads
					walMax int64
					walAt  int64
				)
				if kind != "quiet" {
					wg.Go(func() { rd = again(ctx, lr, fd, stop) })
				}
				if backend == "sqlite" {
					// What the fill or the previous run left in the WAL is
					// not this run's.
					if err := walSettled(ctx, fd.db); err != nil {
						return runs, fmt.Errorf("%s: %w", backend, err)
					}
					wg.Go(func() { walAt, walMax = sampleWAL(fd.db, stop) })
				}
				m, err := measure(ctx, cfg, backend, fd, r, c.single, d)
				close(stop)
				wg.Wait()
				m.reads, m.walStart, m.walMax = rd, walAt, walMax
				if err == nil {
					err = rd.err
				}
				runs = append(runs, m)
				if err != nil {
					return runs, err
				}
				if kind != "quiet" {
					walSeen := ""
					if backend == "sqlite" {
						walSeen = fmt.Sprintf(", live WAL %s at the start, up to %s", mb(walAt), mb(walMax))
					}
					fmt.Fprintf(os.Stderr, "%-8s %d %s reads completed (%d stopped at the server's time limit), the longest %s%s\n", backend, rd.done, lr.mode, rd.cut, ms(rd.took), walSeen)
				}
			}
		}
		return runs, nil
	}
}

// reads is what the long reads beside one run did.
type reads struct {
	done int           // reads that ran to the end
	cut  int           // of those, reads the server stopped at its time limit (503)
	rows int           // what the last one returned: lines, or groups
	took time.Duration // the longest one's time
	err  error
}

// again runs lr to the end, again and again, until stop is closed, and
// stops the one running then.
func again(ctx context.Context, lr longReader, fd *process, stop <-chan struct{}) reads {
	var rd reads
	for {
		select {
		case <-stop:
			return rd
		default:
		}
		one := lr.once(ctx, fd, stop)
		if one.done == 0 {
			rd.err = one.err
			return rd
		}
		rd.done++
		rd.cut += one.cut
		rd.rows = max(rd.rows, one.rows)
		rd.took = max(rd.took, one.took)
	}
}

// untilStop is a context of ctx that also ends when stop is closed.
func untilStop(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	runCtx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
		case <-runCtx.Done():
		}
		cancel()
	}()
	return runCtx, cancel
}

// stopped tells whether stop is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// exportOnce runs `feedbackd export --db db` to the end.
func exportOnce(ctx context.Context, bin, db string, stop <-chan struct{}) reads {
	runCtx, cancel := untilStop(ctx, stop)
	defer cancel()
	var lines lineCounter
	var stderr bytes.Buffer
	cmd := exec.CommandContext(runCtx, bin, "export", "--db", db)
	cmd.Env, cmd.Stdout, cmd.Stderr = childEnv(), &lines, &stderr
	start := time.Now()
	err := cmd.Run()
	if stopped(stop) {
		return reads{}
	}
	if err != nil {
		return reads{err: fmt.Errorf("feedbackd export: %w: %s", err, strings.TrimSpace(stderr.String()))}
	}
	return reads{done: 1, rows: lines.n, took: time.Since(start)}
}

// analyticsOnce asks for the groups by _user of everything the benchmark
// stored (it all is from the last day), the analytics answer that reads
// the most rows: the whole _user index of the workspace, in one snapshot.
func analyticsOnce(ctx context.Context, fd *process, stop <-chan struct{}) reads {
	runCtx, cancel := untilStop(ctx, stop)
	defer cancel()
	now := time.Now().UTC()
	q := url.Values{
		"time_of_generation_min": {now.Add(-24 * time.Hour).Format(time.RFC3339)},
		"time_of_generation_max": {now.Add(time.Hour).Format(time.RFC3339)},
	}
	req, err := http.NewRequestWithContext(runCtx, http.MethodGet, fd.url+"/v1/analytics/groups/metadata/_user?"+q.Encode(), nil)
	if err != nil {
		return reads{err: err}
	}
	req.Header.Set("x-portkey-api-key", apiKey)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if stopped(stop) {
		return reads{}
	}
	if err != nil {
		return reads{err: fmt.Errorf("analytics: %w", err)}
	}
	defer resp.Body.Close()
	var body struct {
		Total int `json:"total"`
	}
	raw, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		// Stopped at the server's time limit: the read held its snapshot
		// that long, which is what this mode is about.
		return reads{done: 1, cut: 1, took: time.Since(start)}
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d %s", resp.StatusCode, truncate(string(raw), 300))
	}
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if stopped(stop) {
		return reads{}
	}
	if err != nil {
		return reads{err: fmt.Errorf("analytics: %w", err)}
	}
	return reads{done: 1, rows: body.Total, took: time.Since(start)}
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (l *lineCounter) Write(b []byte) (int, error) {
	l.n += bytes.Count(b, []byte{'\n'})
	return len(b), nil
}

// sampleWAL returns the live part of db's WAL when it starts and the
// largest it was, looked at every 50 ms until stop is closed. The live
// part is the frames since the WAL last started over, which a writer does
// once a checkpoint has copied them all and no reader is still using
// them: a reader holding its snapshot all along keeps it growing, from
// whatever the fill or an earlier run left there.
func sampleWAL(db string, stop <-chan struct{}) (start, largest int64) {
	start, _ = wal(db)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		live, _ := wal(db)
		largest = max(largest, live)
		select {
		case <-stop:
			return start, largest
		case <-tick.C:
		}
	}
}

// wal reads db's wal-index (the -shm file): the bytes of the WAL's frames
// since it last started over, and of those not yet copied into the
// database. Its header holds the page size (u16 at byte 14) and mxFrame
// (u32 at 16); the checkpoint info after the two header copies holds
// nBackfill (u32 at 96); all native-endian. Zeros when it cannot be read.
func wal(db string) (live, backlog int64) {
	f, err := os.Open(db + "-shm")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var hdr [100]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return 0, 0
	}
	page := int64(binary.NativeEndian.Uint16(hdr[14:16]))
	if page == 1 {
		page = 65536
	}
	frames := int64(binary.NativeEndian.Uint32(hdr[16:20]))
	backfilled := min(frames, int64(binary.NativeEndian.Uint32(hdr[96:100])))
	return frames * (24 + page), (frames - backfilled) * (24 + page)
}

// walSettled waits until the checkpointer has caught up with db's WAL
// (under 1 MiB left to copy), for up to a minute.
func walSettled(ctx context.Context, db string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, backlog := wal(db)
		if backlog < 1<<20 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the WAL still holds %s to checkpoint after a minute", mb(backlog))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fill posts bulks to feedbackd, unmeasured, until it holds at least rows
// feedback of the benchmark's workspace (the rows earlier modes stored
// count), with as many posts in flight as there are cores.
func fill(ctx context.Context, fd *process, c *corpus, rows int) error {
	have, err := storedFeedback(ctx, fd.url)
	if err != nil {
		return err
	}
	need := (rows - have + bulkSize - 1) / bulkSize
	if need <= 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "filling the store with %d bulks of %d...\n", need, bulkSize)
	jobs := make(chan struct{}, need)
	for range need {
		jobs <- struct{}{}
	}
	close(jobs)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 2 {
		wg.Go(func() {
			for range jobs {
				if err := postBulk(ctx, fd.url, c.bulk()); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func postBulk(ctx context.Context, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/feedback", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-portkey-api-key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bulk: %d %s", resp.StatusCode, truncate(string(msg), 300))
	}
	return nil
}

// storedFeedback is the feedback count feedbackd's metrics report stored
// since it started; the benchmark's store starts empty.
func storedFeedback(ctx context.Context, base string) (int, error) {
	cs, err := readCommits(ctx, base)
	return int(cs.rows), err
}

// printLongRead reports lr's mode: single posts' latencies alone and
// beside the reads, with what the reads did.
func printLongRead(w io.Writer, results []backendResult, lr longReader) {
	if !hasKind(results, lr.mode) {
		return
	}
	fmt.Fprintf(w, "## Single posts during %s\n\n", lr.what)
	fmt.Fprintf(w, "The open loop on feedbackd alone (quiet) and while %s runs again and again beside it; "+
		"medians over rounds, max the longest of any round.\n\n", lr.what)
	fmt.Fprintln(w, "| backend | rate | load | sent/s | p50 | p99 | p99.9 | max | reads done (stopped at the time limit), rows, longest | live WAL: at the start → largest | failed |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, res := range results {
		ofMode := slices.DeleteFunc(slices.Clone(res.runs), func(r run) bool { return r.longRead != lr.mode })
		for _, kind := range []string{"quiet", lr.mode} {
			var done, cut, rows int
			var took time.Duration
			var wal, walStart int64
			var rate int
			for _, r := range ofMode {
				if r.kind == kind {
					done, cut, rows = done+r.reads.done, cut+r.reads.cut, max(rows, r.reads.rows)
					took, wal, rate = max(took, r.reads.took), max(wal, r.walMax), r.rate
					walStart = max(walStart, r.walStart)
				}
			}
			s := summarize(ofMode, series{kind, "feedbackd", rate})
			if len(s.perSecond) == 0 {
				continue
			}
			readsDone, walSize := "-", "-"
			if kind != "quiet" {
				readsDone = fmt.Sprintf("%d (%d stopped), %d, %s", done, cut, rows, ms(took))
			}
			if res.name == "sqlite" {
				walSize = mb(walStart) + " → " + mb(wal)
			}
			fmt.Fprintf(w, "| %s | %d/s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
				res.name, rate, kind, s.minSendRate, ms(s.p50), ms(s.p99), ms(s.p999), ms(s.max), readsDone, walSize, s.failed)
		}
	}
	fmt.Fprintln(w)
}
