package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/client"
)

// The tests in this file take away what feedbackd depends on while it is
// under load, and check what clients see meanwhile and afterwards.

// loadWrite is one create request of a load, and how it was answered.
type loadWrite struct {
	trace, key string
	status     int
	err        error
}

// load sends single creates, each with its own trace and Idempotency-Key,
// through the given instances in turn until stop is closed.
type load struct {
	mu     sync.Mutex
	writes []*loadWrite
	wg     sync.WaitGroup
	stop   chan struct{}
}

func startLoad(t *testing.T, key string, workers int, bases ...string) *load {
	l := &load{stop: make(chan struct{})}
	hc := &http.Client{Timeout: hangGuard}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				wr := &loadWrite{trace: fmt.Sprintf("load-%d-%d", w, i), key: fmt.Sprintf("key-%d-%d", w, i)}
				wr.status, wr.err = postFeedback(t, hc, bases[(w+i)%len(bases)], key, wr.key, wr.trace)
				l.mu.Lock()
				l.writes = append(l.writes, wr)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) end() []*loadWrite {
	close(l.stop)
	l.wg.Wait()
	return l.writes
}

// postFeedback creates one feedback of trace under an Idempotency-Key and
// checks the answer against the spec; a 503 must say when to retry.
func postFeedback(t *testing.T, hc *http.Client, base, apiKey, idemKey, trace string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/feedback", strings.NewReader(fmt.Sprintf(`{"trace_id":%q,"value":1}`, trace)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-portkey-api-key", apiKey)
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := validatingDoer{t, hc}.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "the database is unavailable") {
			t.Errorf("503 without Retry-After or the message: %v %s", resp.Header, body)
		}
	case http.StatusInsufficientStorage:
		if !strings.Contains(string(body), "the disk is full") {
			t.Errorf("507 without the message: %s", body)
		}
	}
	return resp.StatusCode, nil
}

// getStatus answers the status of a GET, and checks it against the spec;
// with an API key (an API request, not a probe), a 503 must say that the
// database is unavailable and when to retry.
func getStatus(t *testing.T, url, apiKey string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("x-portkey-api-key", apiKey)
	}
	resp, err := validatingDoer{t, &http.Client{Timeout: hangGuard}}.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if apiKey != "" && resp.StatusCode == http.StatusServiceUnavailable &&
		(resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "the database is unavailable")) {
		t.Errorf("GET %s: 503 without Retry-After or the message: %v %s", url, resp.Header, body)
	}
	return resp.StatusCode
}

// Two replicas under a steady load on a PostgreSQL of the test's own,
// which goes away twice (a fast shutdown, then a SIGKILL of the
// postmaster): while it is down, requests are answered without waiting
// for it, 503 with Retry-After and the Error body (never 500, never a
// hang), /readyz says not ready and /healthz stays up; afterwards both
// replicas serve again without a restart. Every write answered 200 is
// stored exactly once, every write answered 503 is absent unless retried
// with its Idempotency-Key, then present once; and the Go client's
// retries carry a write across the outage.
//
// That no request waits for the database is shown by order, not by time:
// the database comes back only once the test's own read and write sent
// while it is down have been answered, and no time limit ends a request
// early (the write timeout is an hour), so a request that waited for the
// database would never be answered (the client gives up after hangGuard).
func TestPostgresGoesAwayAndComesBack(t *testing.T) {
	cluster := newCluster(t)
	env := map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": "fbk_outage_test_key_0123456789", "FEEDBACKD_LOG_LEVEL": "error", "FEEDBACKD_WRITE_TIMEOUT": "1h"}
	key := env["FEEDBACKD_BOOTSTRAP_KEY"]
	replicas := []*process{startProcess(t, cluster.URL(), env), startProcess(t, cluster.URL(), env)}
	bases := []string{replicas[0].base, replicas[1].base}
	ctx := contextWithTimeout(t, 3*time.Minute)
	hc := &http.Client{Timeout: hangGuard}

	l := startLoad(t, key, 4, bases...)
	var carried, refusedWhileDown []string
	for _, outage := range []struct {
		name string
		down func(t testing.TB)
	}{{"fast shutdown", cluster.Stop}, {"SIGKILL", cluster.Kill}} {
		l.more(t, http.StatusOK, 10)
		outage.down(t)
		t.Logf("%s: PostgreSQL down", outage.name)

		// A write through the Go client, with retries, begun while the
		// database is gone.
		trace := "carried-" + strings.ReplaceAll(outage.name, " ", "-")
		carried = append(carried, trace)
		retrying, err := client.New(bases[0]+"/v1", client.WithAPIKey(key), client.WithMaxRetries(30),
			client.WithDoer(validatingDoer{t, http.DefaultClient}))
		if err != nil {
			t.Fatal(err)
		}
		carriedDone := make(chan error, 1)
		go func() {
			_, err := retrying.Feedback.Create(ctx, client.FeedbackRequest{TraceID: trace, Value: 2})
			carriedDone <- err
		}()

		for i, base := range bases {
			waitFor(t, "readyz 503 while PostgreSQL is down", func() bool {
				return getStatus(t, base+"/v1/readyz", "") == http.StatusServiceUnavailable
			})
			if s := getStatus(t, base+"/v1/healthz", ""); s != http.StatusOK {
				t.Errorf("healthz while PostgreSQL is down: %d, want 200", s)
			}
			if s := getStatus(t, base+"/v1/feedback?limit=1", key); s != http.StatusServiceUnavailable {
				t.Errorf("a read while PostgreSQL is down: %d, want 503", s)
			}
			down := fmt.Sprintf("down-%s-%d", strings.ReplaceAll(outage.name, " ", "-"), i)
			refusedWhileDown = append(refusedWhileDown, down)
			if s, err := postFeedback(t, hc, base, key, down, down); err != nil || s != http.StatusServiceUnavailable {
				t.Errorf("a write while PostgreSQL is down: %d %v, want 503", s, err)
			}
		}
		l.more(t, http.StatusServiceUnavailable, 10)

		cluster.Start(t)
		t.Logf("%s: PostgreSQL back", outage.name)
		for _, base := range bases {
			waitFor(t, "readyz 200 after PostgreSQL is back", func() bool {
				return getStatus(t, base+"/v1/readyz", "") == http.StatusOK
			})
		}
		select {
		case err := <-carriedDone:
			if err != nil {
				t.Errorf("the Go client's retried write across the %s: %v", outage.name, err)
			}
		case <-time.After(hangGuard):
			t.Fatalf("the Go client's retried write across the %s did not return", outage.name)
		}
	}
	l.more(t, http.StatusOK, 10)
	writes := l.end()

	// Every answer was one the spec allows for an outage.
	count := map[int]int{}
	for _, w := range writes {
		if w.err != nil {
			t.Errorf("write %s: %v", w.trace, w.err)
			continue
		}
		count[w.status]++
		if w.status != http.StatusOK && w.status != http.StatusServiceUnavailable {
			t.Errorf("write %s answered %d, want 200 or 503", w.trace, w.status)
		}
	}
	t.Logf("%d writes: %v by status", len(writes), count)

	// Half the writes refused are retried with their key, now.
	want := map[string]int{}
	refused := 0
	for _, w := range writes {
		switch {
		case w.status == http.StatusOK:
			want[w.trace] = 1
		case w.status == http.StatusServiceUnavailable && refused%2 == 0:
			refused++
			for attempt := 0; ; attempt++ {
				s, err := postFeedback(t, hc, bases[attempt%2], key, w.key, w.trace)
				if err == nil && s == http.StatusOK {
					break
				}
				if attempt == 20 {
					t.Fatalf("retry of %s: %d %v", w.trace, s, err)
				}
				time.Sleep(time.Second)
			}
			want[w.trace] = 1
		case w.status == http.StatusServiceUnavailable:
			refused++
			want[w.trace] = 0
		}
	}
	for _, trace := range carried {
		want[trace] = 1
	}
	for _, trace := range refusedWhileDown {
		want[trace] = 0
	}

	conn, err := pgx.Connect(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT trace_id, count(*) FROM feedback GROUP BY trace_id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var trace string
		var n int
		if err := rows.Scan(&trace, &n); err != nil {
			t.Fatal(err)
		}
		got[trace] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for trace, n := range want {
		if got[trace] != n {
			t.Errorf("trace %s is stored %d times, want %d", trace, got[trace], n)
		}
	}
	for trace, n := range got {
		if _, ok := want[trace]; !ok {
			t.Errorf("trace %s is stored %d times, but no write of it was sent", trace, n)
		}
	}
	// Analytics agree with the rows: derived data moved with each commit.
	for _, r := range replicas {
		checkAnalytics(t, r.client(t, key), "_user")
	}
}

// smallDisk mounts a tmpfs of size MiB for t, unmounted when t ends (after
// whatever t starts later has stopped). Mounting needs root: without it
// t is skipped, or fails when FEEDBACKD_REQUIRE_POSTGRES=1, as in CI,
// which runs as root.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("FEEDBACKD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("FEEDBACKD_REQUIRE_POSTGRES=1 (CI) but not root: a full disk cannot be made without mounting a tmpfs")
		}
		t.Skip("skipped: mounting the small tmpfs that fills up needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fill appends to path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return
		}
	}
}

// answered returns how many of l's writes so far got status.
func (l *load) answered(status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range l.writes {
		if w.status == status {
			n++
		}
	}
	return n
}

// more waits until n more of l's writes than so far got status.
func (l *load) more(t *testing.T, status, n int) {
	t.Helper()
	from := l.answered(status)
	waitFor(t, fmt.Sprintf("%d more writes answered %d", n, status), func() bool { return l.answered(status) >= from+n })
}

// SQLite on a small filesystem that fills up under load, first with a
// file of someone else's, then with its own WAL held by a long read:
// writes are refused with 507 and a message saying the disk is full,
// /readyz says the store cannot write while /healthz stays up, reads go
// on, nothing acknowledged is lost and nothing refused is stored; once
// space is freed (the file deleted, the read ended) writes succeed and
// /readyz is 200 again without a restart, and the database is intact.
func TestSQLiteDiskFills(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fillUp fills the disk; it returns what frees the space, and
		// what fills it again when the store's reserve (see
		// sqlite.reserveSize) freed some, or nil.
		fillUp func(t *testing.T, dir, db string) (free, refill func())
	}{
		{"by another file", func(t *testing.T, dir, _ string) (func(), func()) {
			filler := filepath.Join(dir, "filler")
			fill(t, filler)
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}, func() { fill(t, filler) }
		}},
		{"by the WAL during a long read", func(t *testing.T, dir, db string) (func(), func()) {
			// Most of the disk is taken, so the WAL that the read holds
			// fills the rest within seconds.
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				t.Fatal(err)
			}
			reader, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			tx, err := reader.Begin()
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM feedback`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(dir, "filler"))
			if err != nil {
				t.Fatal(err)
			}
			// Leave 2 MiB for the WAL to grow into.
			free := int64(st.Bavail)*int64(st.Bsize) - 2<<20
			if _, err := f.Write(make([]byte, max(free, 0))); err != nil && !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			f.Close()
			// The reserve, released for a checkpoint, is the WAL's to
			// fill: it is what lets the store recover once the read ends.
			return func() {
				_ = tx.Rollback()
				reader.Close()
			}, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := smallDisk(t, 16)
			db := filepath.Join(dir, "feedback.db")
			env := map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": "fbk_diskfull_test_key_0123456789", "FEEDBACKD_LOG_LEVEL": "error"}
			key := env["FEEDBACKD_BOOTSTRAP_KEY"]
			p := startProcess(t, db, env)
			hc := &http.Client{Timeout: hangGuard}
			if s, err := postFeedback(t, hc, p.base, key, "first", "first"); err != nil || s != http.StatusOK {
				t.Fatalf("first write: %d %v", s, err)
			}

			l := startLoad(t, key, 4, p.base)
			time.Sleep(500 * time.Millisecond)
			free, refill := tc.fillUp(t, dir, db)
			if refill == nil {
				refill = func() {}
			}
			waitFor(t, "a write refused with 507", func() bool {
				refill()
				return l.answered(http.StatusInsufficientStorage) > 0
			})
			waitFor(t, "readyz 503 while the disk is full", func() bool {
				refill()
				return getStatus(t, p.base+"/v1/readyz", "") == http.StatusServiceUnavailable
			})
			if s := getStatus(t, p.base+"/v1/healthz", ""); s != http.StatusOK {
				t.Errorf("healthz while the disk is full: %d, want 200", s)
			}
			if s := getStatus(t, p.base+"/v1/feedback?trace_id=first", key); s != http.StatusOK {
				t.Errorf("a read while the disk is full: %d, want 200", s)
			}
			full := l.answered(http.StatusInsufficientStorage)
			time.Sleep(time.Second)

			free()
			waitFor(t, "readyz 200 once space is freed", func() bool {
				return getStatus(t, p.base+"/v1/readyz", "") == http.StatusOK
			})
			l.more(t, http.StatusOK, 20)
			writes := l.end()
			p.signal(t, syscall.SIGTERM)

			count := map[int]int{}
			want := map[string]int{"first": 1}
			for _, w := range writes {
				if w.err != nil {
					t.Errorf("write %s: %v", w.trace, w.err)
					continue
				}
				count[w.status]++
				switch w.status {
				case http.StatusOK:
					want[w.trace] = 1
				case http.StatusInsufficientStorage:
					want[w.trace] = 0
				default:
					t.Errorf("write %s answered %d, want 200 or 507", w.trace, w.status)
				}
			}
			t.Logf("%d writes: %v by status (%d refused when readyz turned 503)", len(writes), count, full)

			st, err := sql.Open("sqlite", "file:"+db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var integrity string
			if err := st.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
				t.Errorf("integrity_check: %q %v, want ok", integrity, err)
			}
			rows, err := st.Query(`SELECT trace_id, count(*) FROM feedback GROUP BY trace_id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]int{}
			for rows.Next() {
				var trace string
				var n int
				if err := rows.Scan(&trace, &n); err != nil {
					t.Fatal(err)
				}
				got[trace] = n
			}
			for trace, n := range want {
				if got[trace] != n {
					t.Errorf("trace %s is stored %d times, want %d", trace, got[trace], n)
				}
			}
			if len(got) != count[http.StatusOK]+1 {
				t.Errorf("%d traces stored, want the %d acknowledged", len(got), count[http.StatusOK]+1)
			}
		})
	}
}
