package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// exportLoad measures what a long read does to writes: the open loop at
// the first of cfg.rates on feedbackd alone ("quiet"), then the same while
// `feedbackd export` of the whole store runs again and again beside it
// ("export"), in each round. The store is first filled with bulks to
// cfg.exportRows, unmeasured, so that an export takes seconds, and one
// export runs alone, unmeasured, which also lets the checkpointer catch
// up with the fill; each run then lasts long enough for two exports. On
// SQLite the WAL's largest size is sampled too: a reader keeps the
// checkpointer from resetting it.
func exportLoad(ctx context.Context, cfg config, backend string, fd, _ *process, c *corpus) ([]run, error) {
	if err := fill(ctx, fd, c, cfg.exportRows); err != nil {
		return nil, fmt.Errorf("%s: fill the store for the export mode: %w", backend, err)
	}
	never := make(chan struct{})
	first := exportOnce(ctx, cfg.feedbackd, fd.db, never)
	if first.err != nil {
		return nil, fmt.Errorf("%s: %w", backend, first.err)
	}
	d := max(cfg.rateDuration, 2*first.took+time.Second)
	fmt.Fprintf(os.Stderr, "%-8s an export alone: %d rows in %s; runs of %s\n", backend, first.rows, ms(first.took), d)
	rate := cfg.rates[0]
	var runs []run
	for round := 1; round <= cfg.rounds; round++ {
		for _, kind := range []string{"quiet", "export"} {
			r := run{target: "feedbackd", kind: kind, rate: rate, round: round}
			stop := make(chan struct{})
			var (
				wg     sync.WaitGroup
				ex     exports
				walMax int64
			)
			if kind == "export" {
				wg.Go(func() { ex = exportAgain(ctx, cfg.feedbackd, fd.db, stop) })
			}
			if backend == "sqlite" {
				// What the fill or the previous run left in the WAL is
				// not this run's.
				if err := walSettled(ctx, fd.db); err != nil {
					return runs, fmt.Errorf("%s: %w", backend, err)
				}
				wg.Go(func() { walMax = sampleWAL(fd.db, stop) })
			}
			m, err := measure(ctx, cfg, backend, fd, r, c.single, d)
			close(stop)
			wg.Wait()
			m.exports, m.walMax = ex, walMax
			if err == nil {
				err = ex.err
			}
			runs = append(runs, m)
			if err != nil {
				return runs, err
			}
			if kind == "export" {
				fmt.Fprintf(os.Stderr, "%-8s %d exports completed, %s each, WAL up to %s\n", backend, ex.done, ms(ex.took), mb(walMax))
			}
		}
	}
	return runs, nil
}

// exports is what the exports beside one run did.
type exports struct {
	done int           // exports that ran to the end
	rows int           // lines the last one wrote
	took time.Duration // the longest one's time
	err  error
}

// exportAgain runs `feedbackd export --db db` to the end, again and again,
// until stop is closed, and kills the one running then.
func exportAgain(ctx context.Context, bin, db string, stop <-chan struct{}) exports {
	var ex exports
	for {
		select {
		case <-stop:
			return ex
		default:
		}
		one := exportOnce(ctx, bin, db, stop)
		if one.done == 0 {
			ex.err = one.err
			return ex
		}
		ex.done++
		ex.rows = one.rows
		ex.took = max(ex.took, one.took)
	}
}

// exportOnce runs `feedbackd export --db db` to the end (done 1), or until
// stop is closed (done 0, no error).
func exportOnce(ctx context.Context, bin, db string, stop <-chan struct{}) exports {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-runCtx.Done():
		}
		cancel()
	}()
	var lines lineCounter
	var stderr bytes.Buffer
	cmd := exec.CommandContext(runCtx, bin, "export", "--db", db)
	cmd.Env, cmd.Stdout, cmd.Stderr = childEnv(), &lines, &stderr
	start := time.Now()
	err := cmd.Run()
	select {
	case <-stop:
		return exports{}
	default:
	}
	if err != nil {
		return exports{err: fmt.Errorf("feedbackd export: %w: %s", err, strings.TrimSpace(stderr.String()))}
	}
	return exports{done: 1, rows: lines.n, took: time.Since(start)}
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (l *lineCounter) Write(b []byte) (int, error) {
	l.n += bytes.Count(b, []byte{'\n'})
	return len(b), nil
}

// sampleWAL returns the largest the live part of db's WAL was, looked at
// every 50 ms until stop is closed. The live part is the frames since the
// WAL last started over, which a writer does once a checkpoint has copied
// them all; a long reader stops that. What the fill or an earlier run
// left there is not this run's, so sampling starts at the first restart
// (or at once, when little is there).
func sampleWAL(db string, stop <-chan struct{}) int64 {
	var largest int64
	start, _ := wal(db)
	counting := start < 4<<20
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		live, _ := wal(db)
		counting = counting || live < start
		if counting {
			largest = max(largest, live)
		}
		select {
		case <-stop:
			return largest
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

// printExport reports the export mode: single posts' latencies alone and
// beside exports, with what the exports did.
func printExport(w io.Writer, results []backendResult) {
	if !hasKind(results, "export") {
		return
	}
	fmt.Fprintln(w, "## Single posts during `feedbackd export`")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The open loop on feedbackd alone (quiet) and while `feedbackd export` of the whole store runs "+
		"again and again beside it; medians over rounds, max the longest of any round.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backend | rate | load | sent/s | p50 | p99 | p99.9 | max | exports done, rows, longest | live WAL up to | failed |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, res := range results {
		for _, kind := range []string{"quiet", "export"} {
			var done, rows int
			var took time.Duration
			var wal int64
			var rate int
			for _, r := range res.runs {
				if r.kind == kind {
					done, rows = done+r.exports.done, max(rows, r.exports.rows)
					took, wal, rate = max(took, r.exports.took), max(wal, r.walMax), r.rate
				}
			}
			s := summarize(res.runs, series{kind, "feedbackd", rate})
			if len(s.perSecond) == 0 {
				continue
			}
			exported, walSize := "-", "-"
			if kind == "export" {
				exported = fmt.Sprintf("%d, %d, %s", done, rows, ms(took))
			}
			if res.name == "sqlite" {
				walSize = mb(wal)
			}
			fmt.Fprintf(w, "| %s | %d/s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
				res.name, rate, kind, s.minSendRate, ms(s.p50), ms(s.p99), ms(s.p999), ms(s.max), exported, walSize, s.failed)
		}
	}
	fmt.Fprintln(w)
}
