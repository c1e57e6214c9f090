package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/client"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// seedVaried stores, through the real server's API, feedback that
// stresses the transfer format: two workspaces (one with a non-ASCII
// name), unicode, nested metadata, numbers spelled 0.1, 1e21, -0 and
// 12345678901234567890, booleans, null, characters CSV must quote,
// updates, and a token vote.
func seedVaried(t *testing.T, b backend) *instance {
	t.Helper()
	ctx := context.Background()
	inst := start(t, b, "", nil)
	other, err := runCLI(t, nil, "keys", "create", "--db", inst.db, "--workspace", "équipe ✓ <b>")
	if err != nil {
		t.Fatal(err)
	}
	post := func(key, body string) []string {
		t.Helper()
		status, resp := inst.do(t, "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": key, "Content-Type": "application/json"}, body)
		if status != 200 {
			t.Fatalf("POST %s: %d %s", body, status, resp)
		}
		var out struct {
			IDs []string `json:"feedback_ids"`
		}
		if err := json.Unmarshal([]byte(resp), &out); err != nil {
			t.Fatal(err)
		}
		return out.IDs
	}
	ids := post(inst.key, `[
		{"trace_id":"t-ü-日本","value":-10,"weight":0.1,"metadata":{"_user":"ユーザー","nested":{"a":[1,2.5,{"b":null}],"t":true,"f":false},"big":1e21,"small":0.1,"neg":-0,"huge":12345678901234567890,"s":"<tag> & \"quote\" \\ ' ,;\n\ttab 😀"}},
		{"trace_id":"comma, \"quoted\"\nnew line and a lone \r return","value":10,"weight":0,"metadata":null},
		{"trace_id":" leading space","value":0,"weight":1,"metadata":{}},
		{"trace_id":"plain","value":3}
	]`)
	post(strings.TrimSpace(other), `{"trace_id":"other-ws","value":7,"weight":0.3333333333333333,"metadata":{"_prompt":"p","x":[]}}`)
	status, resp := inst.do(t, "PUT", "/v1/feedback/"+ids[3], map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}, `{"value":-4,"metadata":{"edited":true}}`)
	if status != 200 {
		t.Fatalf("PUT: %d %s", status, resp)
	}
	c := inst.client(t, inst.key)
	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "voted", Metadata: &map[string]any{"_user": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: 1}); err != nil {
		t.Fatal(err)
	}
	return inst
}

// exportText runs feedbackd export and returns what it wrote.
func exportText(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, nil, append([]string{"export", "--db", db}, args...)...)
	if err != nil {
		t.Fatalf("export %v: %v", args, err)
	}
	return out
}

// importFile runs feedbackd import of text (written to a file named name)
// and returns its stdout.
func importFile(t *testing.T, db, name, text string, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return runCLI(t, nil, append(append([]string{"import", "--db", db, "--progress", "off"}, args...), path)...)
}

// Export, import into an empty database, export again: the same bytes, in
// both formats, and either format's import gives the same database.
func TestExportImportRoundTrip(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inst := seedVaried(t, b)
			ndjson := exportText(t, inst.db)
			csvText := exportText(t, inst.db, "--format", "csv")

			lines := strings.Split(strings.TrimSuffix(ndjson, "\n"), "\n")
			if len(lines) != 6 {
				t.Fatalf("export holds %d lines, want 6:\n%s", len(lines), ndjson)
			}
			var last string
			for _, line := range lines {
				var rec transferRecord
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if at := rec.CreatedAt + rec.ID; at < last {
					t.Errorf("not oldest first: %s after %s", at, last)
				} else {
					last = at
				}
				if !strings.HasPrefix(line, `{"id":"`+rec.ID+`","workspace":`) || !strings.Contains(line, `"created_at":"`) {
					t.Errorf("members out of order: %s", line)
				}
			}
			for _, want := range []string{`"workspace":"équipe ✓ <b>"`, `"weight":0.1,`, `"<tag> & \"quote\"`, `"metadata":{}`, `"edited":true`} {
				if !strings.Contains(ndjson, want) {
					t.Errorf("the export lacks %s:\n%s", want, ndjson)
				}
			}
			if b.name == "sqlite" {
				// SQLite keeps numbers as spelled; PostgreSQL's jsonb
				// rewrites them once, and keeps that spelling after.
				for _, want := range []string{`"big":1e21`, `"huge":12345678901234567890`, `"neg":-0`} {
					if !strings.Contains(ndjson, want) {
						t.Errorf("the export lacks %s:\n%s", want, ndjson)
					}
				}
			}
			if !strings.HasPrefix(csvText, strings.Join(transferColumns, ",")+"\n") {
				t.Errorf("CSV header: %q", strings.SplitN(csvText, "\n", 2)[0])
			}

			for _, c := range []struct{ name, text, args string }{
				{"from.ndjson", ndjson, ""},
				{"from.csv", csvText, ""},
				{"no-extension", csvText, "--format=csv"},
			} {
				db := b.newDB(t)
				var args []string
				if c.args != "" {
					args = append(args, c.args)
				}
				out, err := importFile(t, db, c.name, c.text, args...)
				if err != nil {
					t.Fatalf("import %s: %v", c.name, err)
				}
				if !strings.HasPrefix(out, "imported 6 feedback (0 already present)") {
					t.Errorf("import %s said %q", c.name, out)
				}
				if got := exportText(t, db); got != ndjson {
					t.Errorf("import %s, export ndjson: differs\ngot:\n%s\nwant:\n%s", c.name, got, ndjson)
				}
				if got := exportText(t, db, "--format", "csv"); got != csvText {
					t.Errorf("import %s, export csv: differs\ngot:\n%s\nwant:\n%s", c.name, got, csvText)
				}
			}
		})
	}
}

// --workspace and --since select; --output writes a file.
func TestExportSelects(t *testing.T) {
	inst := seedVaried(t, backends[0])
	all := strings.Split(strings.TrimSuffix(exportText(t, inst.db), "\n"), "\n")
	other := exportText(t, inst.db, "--workspace", "équipe ✓ <b>")
	if strings.Count(other, "\n") != 1 || !strings.Contains(other, "other-ws") {
		t.Errorf("--workspace: got\n%s", other)
	}
	var third transferRecord
	if err := json.Unmarshal([]byte(all[len(all)-1]), &third); err != nil {
		t.Fatal(err)
	}
	since := exportText(t, inst.db, "--since", third.CreatedAt)
	if !strings.Contains(since, third.ID) || strings.Contains(since, `"trace_id":"plain"`) && third.TraceID != "plain" {
		t.Errorf("--since %s: got\n%s", third.CreatedAt, since)
	}
	out := filepath.Join(t.TempDir(), "all.csv")
	exportText(t, inst.db, "--format", "csv", "--output", out)
	got, err := os.ReadFile(out)
	if err != nil || string(got) != exportText(t, inst.db, "--format", "csv") {
		t.Errorf("--output file differs from stdout: %v", err)
	}
	for _, args := range [][]string{{"--workspace", "nope"}, {"--since", "yesterday"}, {"--format", "xml"}} {
		if _, err := runCLI(t, nil, append([]string{"export", "--db", inst.db}, args...)...); err == nil {
			t.Errorf("export %v: got no error", args)
		}
	}
}

// sampleExport renders n feedback in the export's own format and order:
// two workspaces, one created_at a millisecond apart, bulks of 3 sharing
// one (which their ids order).
func sampleExport(t testing.TB, n int, format string) string {
	t.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]*transferRecord, n)
	for i := range n {
		at := base.Add(time.Duration(i/3) * time.Millisecond)
		f := &store.Feedback{
			ID: uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%d", i)).String(), TraceID: fmt.Sprintf("trace-%d", i%97),
			Value: i%21 - 10, Weight: float64(i%10) / 10, CreatedAt: at, UpdatedAt: at,
			Metadata: map[string]any{"_user": fmt.Sprintf("u%d", i%13), "i": json.Number(fmt.Sprint(i))},
		}
		var err error
		if recs[i], err = toRecord([]string{"default", "other"}[i%2], f); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(recs, func(a, b *transferRecord) int { return strings.Compare(a.CreatedAt+a.ID, b.CreatedAt+b.ID) })
	var buf bytes.Buffer
	w, err := newRecordWriter(format, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// cancelAfter is an import progress that cancels the import after n
// batches, as ^C would.
type cancelAfter struct {
	n, seen int
	cancel  func()
}

func (c *cancelAfter) committed(importStats, int64) {
	if c.seen++; c.seen == c.n {
		c.cancel()
	}
}
func (c *cancelAfter) done(importStats, error) {}

// An import cancelled after some batches keeps exactly the batches it
// reports (whole ones); running it again adds the rest, nothing twice, and
// the database then exports the very file imported.
func TestImportResumesAfterInterruption(t *testing.T) {
	for _, format := range []string{"ndjson", "csv"} {
		t.Run(format, func(t *testing.T) {
			const rows = 5500
			text := sampleExport(t, rows, format)
			db := filepath.Join(t.TempDir(), "f.db")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := sqlite.Open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			stats, err := importFeedback(ctx, st, strings.NewReader(text), importOptions{
				format: format, progress: &cancelAfter{n: 2, cancel: cancel}, parallel: importParallel,
			})
			kept := stats.imported
			if !errors.Is(err, context.Canceled) || kept < 2000 || kept >= rows || kept%1000 != 0 {
				t.Fatalf("cancelled import: got %+v, %v; want whole batches, at least 2, not all, and context.Canceled", stats, err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(exportText(t, db), "\n"); got != kept {
				t.Fatalf("after the interruption the database holds %d rows, the import said %d", got, kept)
			}
			out, err := importFile(t, db, "again."+format, text)
			if err != nil {
				t.Fatalf("second import: %v", err)
			}
			if want := fmt.Sprintf("imported %d feedback (%d already present)", rows-kept, kept); !strings.HasPrefix(out, want) {
				t.Errorf("second import said %q, want %q", out, want)
			}
			if got := exportText(t, db, "--format", format); got != text {
				t.Errorf("export after the resumed import differs from the imported file")
			}
			out, err = importFile(t, db, "third."+format, text)
			if err != nil || !strings.HasPrefix(out, "imported 0 feedback (5500 already present)") {
				t.Errorf("third import: %q, %v", out, err)
			}
		})
	}
}

// An import killed with SIGKILL mid-way loses no committed batch and
// leaves no partial one: run again, it completes to the same export.
func TestImportKilledThenRerun(t *testing.T) {
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	const rows = 15000
	text := sampleExport(t, rows, "ndjson")
	dir := t.TempDir()
	file, db := filepath.Join(dir, "in.ndjson"), filepath.Join(dir, "f.db")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// The database exists before the import starts, so it can be watched.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	watch, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	count := func() int {
		var n int
		if err := watch.QueryRow(`SELECT count(*) FROM feedback`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	cmd := exec.Command(bin, "import", "--db", db, "--progress", "lines", file)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count() < 2000 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the import stored fewer than 2000 rows in 2 minutes:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := count()
	if killed%1000 != 0 || killed >= rows {
		t.Fatalf("after SIGKILL the database holds %d rows: want whole batches, fewer than %d", killed, rows)
	}
	out, err := runCLI(t, nil, "import", "--db", db, "--progress", "off", file)
	if err != nil {
		t.Fatalf("import after the kill: %v", err)
	}
	if want := fmt.Sprintf("imported %d feedback (%d already present)", rows-killed, killed); !strings.HasPrefix(out, want) {
		t.Errorf("import after the kill said %q, want %q", out, want)
	}
	if got := exportText(t, db); got != text {
		t.Error("export after the completed import differs from the imported file")
	}
}

// A bad row stops the import, naming its line and the reason; the batches
// before it are kept.
func TestImportRefusesBadRows(t *testing.T) {
	good := sampleExport(t, 1500, "ndjson")
	goodCSV := sampleExport(t, 3, "csv")
	valid := strings.SplitN(good, "\n", 2)[0]
	var rec transferRecord
	if err := json.Unmarshal([]byte(valid), &rec); err != nil {
		t.Fatal(err)
	}
	// with returns the valid line with one member set to raw JSON (or
	// removed, for raw "").
	with := func(member, raw string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(valid), &m); err != nil {
			t.Fatal(err)
		}
		if raw == "" {
			delete(m, member)
		} else {
			m[member] = json.RawMessage(raw)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, text, want string
	}{
		{"value over 10", good + with("value", "11"), "line 1501: /value: number must be at most 10"},
		{"fractional value", with("value", "1.5"), "line 1: /value"},
		{"value a string", with("value", `"5"`), "line 1: /value"},
		{"weight over 1", with("weight", "1.5"), "line 1: /weight"},
		{"empty trace id", with("trace_id", `""`), "line 1: /trace_id"},
		{"long trace id", with("trace_id", `"`+strings.Repeat("x", 257)+`"`), "line 1: /trace_id"},
		{"metadata not an object", with("metadata", "[1]"), "line 1: /metadata"},
		{"metadata too deep", with("metadata", `{"a":[[[[[[[[[1]]]]]]]]]}`), "line 1: /metadata/a"},
		{"unknown member", with("VALUE", "1"), `line 1: unknown member "VALUE"`},
		{"missing id", with("id", ""), "line 1: id: required"},
		{"id not canonical", with("id", `"`+strings.ToUpper(rec.ID)+`"`), "line 1: id:"},
		{"bad time", with("created_at", `"2026-01-01"`), "line 1: created_at:"},
		{"updated before created", with("updated_at", `"2025-01-01T00:00:00Z"`), "line 1: updated_at: before created_at"},
		{"not JSON", "\n\n{nope\n", "line 3: not a JSON object"},
		{"duplicate id in a batch", valid + "\n" + valid + "\n", "line 2: id " + rec.ID + " is also on line 1"},
		{"invalid UTF-8", strings.Replace(valid, `"trace_id":"`, "\"trace_id\":\"\xff", 1), "line 1: not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "f.db")
			_, err := importFile(t, db, "in.ndjson", c.text)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if c.name == "value over 10" {
				if got := strings.Count(exportText(t, db), "\n"); got != 1000 {
					t.Errorf("rows kept: got %d, want the first batch's 1000", got)
				}
			}
		})
	}
	header, row := strings.SplitN(goodCSV, "\n", 2)[0], strings.SplitN(goodCSV, "\n", 3)[1]
	csvCases := []struct {
		name, text, want string
	}{
		{"no header", row + "\n", "line 1: the header must be"},
		{"empty", "", "line 1: the CSV file is empty"},
		{"value not a number", header + "\n" + strings.Replace(row, ",-10,", ",ten,", 1) + "\n", `line 2: value: "ten" is not a number`},
		{"value over 10", header + "\n" + strings.Replace(row, ",-10,", ",11,", 1) + "\n", "line 2: /value"},
		{"metadata not JSON", header + "\n" + strings.Replace(row, `"{""_user""`, `"{_user""`, 1) + "\n", "line 2: metadata:"},
		{"too few fields", header + "\na,b\n", "line 2: not valid CSV"},
	}
	for _, c := range csvCases {
		t.Run("csv "+c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "f.db")
			_, err := importFile(t, db, "in.csv", c.text)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}
