package main

import (
	"bytes"
	"context"
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
// cfg.exportRows, unmeasured, so that an export takes seconds. On SQLite
// the WAL's largest size is sampled too: a reader keeps the checkpointer
// from resetting it.
func exportLoad(ctx context.Context, cfg config, backend string, fd, _ *process, c *corpus) ([]run, error) {
	if err := fill(ctx, fd, c, cfg.exportRows); err != nil {
		return nil, fmt.Errorf("%s: fill the store for the export mode: %w", backend, err)
	}
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
				wg.Go(func() { walMax = sampleSize(fd.db+"-wal", stop) })
			}
			m, err := measure(ctx, cfg, backend, fd, r, c.single, cfg.rateDuration)
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
		runCtx, cancel := context.WithCancel(ctx)
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
		interrupted := runCtx.Err() != nil
		cancel()
		if interrupted {
			return ex
		}
		if err != nil {
			ex.err = fmt.Errorf("feedbackd export: %w: %s", err, strings.TrimSpace(stderr.String()))
			return ex
		}
		ex.done++
		ex.rows = lines.n
		ex.took = max(ex.took, time.Since(start))
	}
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (l *lineCounter) Write(b []byte) (int, error) {
	l.n += bytes.Count(b, []byte{'\n'})
	return len(b), nil
}

// sampleSize returns the largest size path had, looked at every 50 ms
// until stop is closed (0 while it does not exist).
func sampleSize(path string, stop <-chan struct{}) int64 {
	var largest int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(path); err == nil {
			largest = max(largest, fi.Size())
		}
		select {
		case <-stop:
			return largest
		case <-tick.C:
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
	fmt.Fprintln(w, "| backend | rate | load | sent/s | p50 | p99 | p99.9 | max | exports done, rows, longest | WAL up to | failed |")
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
