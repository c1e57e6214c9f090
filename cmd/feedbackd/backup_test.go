package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/client"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	_ "github.com/feedbackd/feedbackd/server/store/sqlite" // the "sqlite" driver, for the files made by hand
)

// runBinary runs the feedbackd binary with args to completion, as cron
// would, and returns its stdout, stderr and exit status.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

var backupLine = regexp.MustCompile(`^backed up \S+ to \S+: (\d+) feedback, (\d+) bytes \([^)]*\), schema \d+, integrity ok, in \S+\n$`)

// A backup taken while a server stores feedback as fast as it can, then
// restored to a new file and served: it holds every feedback acknowledged
// before the backup began, of those acknowledged later only whole writes,
// nothing that was never acknowledged, each row as sent, and analytics
// that agree with its rows.
func TestBackupUnderWritesRestores(t *testing.T) {
	const key = "fbk_durability_test_key_0123456789"
	dir := t.TempDir()
	db := filepath.Join(dir, "feedbackd.db")
	// A database of some size first, so that the copy takes a while:
	// imported feedback, half of it in another workspace.
	const seeded = 4000
	if _, err := importFile(t, db, "seed.ndjson", sampleExport(t, seeded, "ndjson")); err != nil {
		t.Fatal(err)
	}
	imported := map[client.UUID]bool{}
	for i := 0; i < seeded; i += 2 { // the default workspace's (sampleExport)
		imported[uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%d", i))] = true
	}
	p := startProcess(t, db, map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": key, "FEEDBACKD_LOG_LEVEL": "warn"})
	c, err := client.New(p.base+"/v1", client.WithAPIKey(key), client.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan time.Time)
	result := make(chan [2]any, 1)
	go func() {
		acked, bulks := loadUntilStopped(t, c, acks)
		result <- [2]any{acked, bulks}
	}()
	// The backup begins once writes are acknowledged, and the server
	// stops once another is, after the backup ended: the backup is taken
	// mid-stream whatever the machine's speed.
	for range 50 {
		ackAfter(t, acks, time.Time{})
	}

	out := filepath.Join(dir, "backup.db")
	began := time.Now()
	stdout, stderr, code := runBinary(t, "backup", "--db", db, out)
	took := time.Since(began)
	ended := time.Now()
	ackAfter(t, acks, ended)
	p.signal(t, syscall.SIGTERM)
	r := <-result
	acked := r[0].([]write)
	if code != 0 {
		t.Fatalf("backup: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	m := backupLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("backup printed %q, want one line naming feedback, bytes and the check", stdout)
	}
	count, _ := strconv.Atoi(m[1])
	size, _ := strconv.ParseInt(m[2], 10, 64)
	if fi, err := os.Stat(out); err != nil || fi.Size() != size || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup says %d bytes; the file (want mode 0600): %v, %v", size, fi, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".backup.db.tmp-*")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}

	restored := filepath.Join(dir, "restored.db")
	if stdout, err := runCLI(t, nil, "restore", out, "--db", restored); err != nil {
		t.Fatalf("restore: %v", err)
	} else if want := fmt.Sprintf(": %d feedback,", count); !strings.Contains(stdout, want) {
		t.Errorf("restore printed %q, want it to say %q", stdout, want)
	}
	inst := start(t, backends[0], restored, nil)
	rc := inst.client(t, key)
	rows := collect(t, rc, client.ListFeedbackParams{Limit: client.Ptr(1000)})
	if len(rows)+seeded/2 != count {
		t.Errorf("restored database lists %d feedback (and %d in the other workspace), backup reported %d", len(rows), seeded/2, count)
	}

	type sentItem struct {
		item client.FeedbackRequest
		w    int // index into acked
	}
	sent := map[client.UUID]sentItem{}
	for i, w := range acked {
		for k, id := range w.ids {
			sent[id] = sentItem{w.items[k], i}
		}
	}
	stored := map[client.UUID]bool{}
	seen := 0
	for _, f := range rows {
		stored[f.ID] = true
		if imported[f.ID] {
			seen++
			continue
		}
		s, ok := sent[f.ID]
		if !ok {
			t.Errorf("restored %s (%s) was never acknowledged", f.ID, f.TraceID)
			continue
		}
		want := s.item
		weight := 1.0
		if want.Weight != nil {
			weight = *want.Weight
		}
		if f.TraceID != want.TraceID || f.Value != want.Value || f.Weight != weight || jsonOf(t, f.Metadata) != jsonOf(t, want.Metadata) {
			t.Errorf("restored %s holds %s/%d/%g/%s, sent %s/%d/%g/%s", f.ID, f.TraceID, f.Value, f.Weight, jsonOf(t, f.Metadata),
				want.TraceID, want.Value, weight, jsonOf(t, want.Metadata))
		}
	}
	if seen != len(imported) {
		t.Errorf("restored %d of the %d feedback imported before the server started", seen, len(imported))
	}
	var before, afterIn, afterOut int
	for _, w := range acked {
		in := 0
		for _, id := range w.ids {
			if stored[id] {
				in++
			}
		}
		switch {
		case in != 0 && in != len(w.ids):
			t.Errorf("write of %s...: %d of its %d feedback restored", w.items[0].TraceID, in, len(w.ids))
		case w.at.Before(began):
			before++
			if in == 0 {
				t.Errorf("write of %s acknowledged %s before the backup began, not in it", w.items[0].TraceID, began.Sub(w.at))
			}
		case in > 0:
			afterIn++
		default:
			afterOut++
		}
	}
	if before == 0 || afterOut == 0 {
		t.Errorf("the backup was not taken mid-stream: %d writes acknowledged before it, %d after and not in it", before, afterOut)
	}
	var lastAck time.Time
	for _, w := range acked {
		lastAck = maxTime(lastAck, w.at)
	}
	if !lastAck.After(ended) {
		t.Errorf("no write was acknowledged after the backup ended")
	}
	checkAnalytics(t, rc, "_prompt")
	t.Logf("backup of %d feedback (%d writes before it began, %d acknowledged during it and in it, %d after it): %d bytes in %s (process start included); %d writes in all\n%s",
		count, before, afterIn, afterOut, size, took.Round(time.Millisecond), len(acked), strings.TrimSpace(stdout))
}

// Backup and restore refuse what would lose data or restore garbage, with
// a non-zero exit status and nothing on stdout.
func TestBackupAndRestoreRefuse(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	db := path("feedbackd.db")
	if _, err := runCLI(t, nil, "keys", "create", "--db", db); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runBinary(t, "backup", "--db", db, path("b.db")); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(path("b.db"))
	if err != nil {
		t.Fatal(err)
	}

	// A plain SQLite file that is not feedbackd's, a text file, and a
	// backup with pages overwritten.
	other, err := sql.Open("sqlite", path("other.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(`CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if err := os.WriteFile(path("text.db"), []byte("SQLite format 3? no, a text file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every page after the first gets a header no b-tree page has.
	corrupt := bytes.Clone(b)
	pageSize := int(corrupt[16])<<8 | int(corrupt[17])
	for off := pageSize; off+8 <= len(corrupt); off += pageSize {
		copy(corrupt[off:], bytes.Repeat([]byte{0xA5}, 8))
	}
	if err := os.WriteFile(path("corrupt.db"), corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("existing.db"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
		keep string // a file that must be unchanged, or absent when it did not exist
	}{
		{"backup over an existing OUT", []string{"backup", "--db", db, path("existing.db")}, "already exists (--force replaces it)", path("existing.db")},
		{"backup of a missing database", []string{"backup", "--db", path("missing.db"), path("out1.db")}, "no such file", path("missing.db")},
		{"backup of PostgreSQL", []string{"backup", "--db", "postgres://127.0.0.1:1/feedbackd", path("out2.db")}, "pg_dump -Fc", path("out2.db")},
		{"backup without OUT", []string{"backup", "--db", db}, "exactly one argument", ""},
		{"restore over an existing database", []string{"restore", path("b.db"), "--db", path("existing.db")}, "already exists (--force replaces it)", path("existing.db")},
		{"restore of a non-feedbackd database", []string{"restore", path("other.db"), "--db", path("new1.db")}, "not a feedbackd one", path("new1.db")},
		{"restore of a text file", []string{"restore", path("text.db"), "--db", path("new2.db")}, "not an intact SQLite database", path("new2.db")},
		{"restore of a corrupt backup", []string{"restore", path("corrupt.db"), "--db", path("new3.db")}, "restore refused", path("new3.db")},
		{"restore to PostgreSQL", []string{"restore", path("b.db"), "--db", "postgres://127.0.0.1:1/feedbackd"}, "pg_restore", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var was []byte
			if tc.keep != "" {
				was, _ = os.ReadFile(tc.keep)
			}
			stdout, stderr, code := runBinary(t, tc.args...)
			if code == 0 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want a failure naming %q and nothing on stdout", tc.args, code, stdout, stderr, tc.want)
			}
			if tc.keep != "" {
				now, err := os.ReadFile(tc.keep)
				if was == nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s was created", tc.keep)
				} else if was != nil && !bytes.Equal(now, was) {
					t.Errorf("%s was changed", tc.keep)
				}
			}
			t.Logf("%s", strings.TrimSpace(stderr))
		})
	}
	// Nothing but what the test made, and no temporary file, is left.
	names, _ := filepath.Glob(path("*"))
	hidden, _ := filepath.Glob(path(".*"))
	sort.Strings(names)
	for _, n := range names {
		switch filepath.Base(n) {
		case "feedbackd.db", "feedbackd.db-wal", "feedbackd.db-shm", "feedbackd.db-reserve", "b.db", "other.db", "text.db", "corrupt.db", "existing.db", "served.db", "served.db-wal", "served.db-shm", "served.db-reserve":
		default:
			t.Errorf("left behind: %s", n)
		}
	}
	if len(hidden) > 0 {
		t.Errorf("left behind: %v", hidden)
	}

	// --force does not replace a database a server has open.
	served := start(t, backends[0], path("served.db"), nil)
	_, stderr, code := runBinary(t, "restore", "--force", path("b.db"), "--db", served.db)
	if code == 0 || !strings.Contains(stderr, "open in another process") {
		t.Errorf("restore --force over a served database: exit %d, stderr %q", code, stderr)
	}
	if _, err := served.client(t, served.key).Feedback.BulkCreate(t.Context(), []client.FeedbackRequest{{TraceID: "still-served", Value: 1}}); err != nil {
		t.Errorf("the server after restore was refused: %v", err)
	}
	served.stop()

	// --force replaces, and restore --force also drops the -wal of the
	// database it replaces.
	if err := os.WriteFile(path("existing.db-wal"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runBinary(t, "restore", "--force", path("b.db"), "--db", path("existing.db")); code != 0 {
		t.Fatalf("restore --force: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runBinary(t, "backup", "--force", "--db", path("existing.db"), path("b.db")); code != 0 {
		t.Fatalf("backup --force: exit %d: %s", code, stderr)
	}
	out, err := runCLI(t, nil, "keys", "list", "--db", path("existing.db"))
	if err != nil || !strings.Contains(out, "default") {
		t.Errorf("the restored database's keys: %v\n%s", err, out)
	}
}

// pgTool returns the path of one of PostgreSQL's client programs (pg_dump,
// pg_restore), from PATH or PostgreSQL's Debian folders, and skips the
// test without it (fails it under FEEDBACKD_REQUIRE_POSTGRES=1).
func pgTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(matches, func(i, j int) bool { // the newest major version last: 9 before 15
		return len(matches[i]) < len(matches[j]) || len(matches[i]) == len(matches[j]) && matches[i] < matches[j]
	})
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	if os.Getenv("FEEDBACKD_REQUIRE_POSTGRES") == "1" {
		t.Fatalf("FEEDBACKD_REQUIRE_POSTGRES=1 but %s is not installed", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// On PostgreSQL, backups are PostgreSQL's own (docs/operations.md): a
// database filled through the API, dumped with pg_dump -Fc while its
// server runs and restored with pg_restore into a new database, serves
// the same lists and the same analytics.
func TestPostgresDumpRestore(t *testing.T) {
	pg := backends[1]
	inst := seedVaried(t, pg) // skips without PostgreSQL
	dump, restore := pgTool(t, "pg_dump"), pgTool(t, "pg_restore")
	ctx := context.Background()
	c := inst.client(t, inst.key)
	var items []client.FeedbackRequest
	for i := range 300 {
		items = append(items, client.FeedbackRequest{TraceID: fmt.Sprint("trace-", i%120), Value: i%21 - 10, Weight: client.Ptr(float64(i%5) / 4),
			Metadata: &client.Metadata{"_prompt": fmt.Sprint("p", i%7), "_user": fmt.Sprint("u", i%40), "team": []string{"red", "blue"}[i%2]}})
	}
	ids, err := c.Feedback.BulkCreate(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	// An update and a delete, so derived data has moved on from the inserts.
	if err := c.Feedback.Update(ctx, ids[0], client.FeedbackUpdate{Value: 9, Metadata: &client.Metadata{"_prompt": "edited"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Feedback.Delete(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "feedbackd.dump")
	began := time.Now()
	if out, err := exec.Command(dump, "-Fc", "-f", file, inst.db).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	took := time.Since(began)
	target := pgtest.NewDatabase(t)
	if out, err := exec.Command(restore, "--no-owner", "--exit-on-error", "-d", target, file).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	again := start(t, pg, target, nil)
	rc := again.client(t, inst.key)

	listed := 0
	answers := func(c *client.Client) []string {
		t.Helper()
		rows := collect(t, c, client.ListFeedbackParams{Limit: client.Ptr(100)})
		listed = len(rows)
		from, to := time.Now().Add(-48*time.Hour), time.Now().Add(48*time.Hour)
		g, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
		if err != nil {
			t.Fatal(err)
		}
		out := []string{jsonOf(t, rows), jsonOf(t, g)}
		for _, key := range []string{"_prompt", "_user", "team"} {
			mg, err := c.Analytics.MetadataGroups(ctx, key, client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, PageSize: client.Ptr(100)})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, jsonOf(t, mg))
		}
		return out
	}
	want, got := answers(c), answers(rc)
	for i, name := range []string{"list", "feedback graph", "groups by _prompt", "groups by _user", "groups by team"} {
		if got[i] != want[i] {
			t.Errorf("%s after pg_restore:\n%s\nbefore pg_dump:\n%s", name, got[i], want[i])
		}
	}
	checkAnalytics(t, rc, "_prompt")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pg_dump -Fc of a database with %d feedback in its default workspace: %d bytes in %s", listed, fi.Size(), took.Round(time.Millisecond))
}
