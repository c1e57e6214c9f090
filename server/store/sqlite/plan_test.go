package sqlite

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No statement a write runs reads a trace's rows: each reaches what it
// reads and writes through an index, with equality on every column
// before the ones it orders by, so that a write costs the same whatever
// its trace holds. SQLite's plan says so: a SCAN of a table, or a SEARCH
// of the trace meta values without the whole (workspace, trace, meta
// key, meta value), fails the test.
func TestWritesSeekNeverScan(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "feedbackd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	texts := append([]string{insertIdempotency}, writerStatements...)
	for _, d := range derivedStatements {
		texts = append(texts, chunkedText(d.head, d.cols, d.tail, chunkRows[0]))
	}
	scan := regexp.MustCompile(`\bSCAN (feedback|trace_meta_values|rollups|group_rollups|metadata_entries|idempotency)\b`)
	seekValues := "SEARCH trace_meta_values USING PRIMARY KEY (workspace_id=? AND trace_id=? AND meta_key=? AND meta_value=?"
	seen := 0
	for _, text := range texts {
		if !strings.HasPrefix(text, "SELECT") && !strings.HasPrefix(text, "INSERT") && !strings.HasPrefix(text, "UPDATE") && !strings.HasPrefix(text, "DELETE") {
			continue
		}
		// The plan of the statement as prepared, its parameters unbound.
		rows, err := s.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+text, make([]any, strings.Count(text, "?"))...)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		if scan.MatchString(all) {
			t.Errorf("%s\nscans a table:\n%s", text, all)
		}
		if strings.Contains(all, "trace_meta_values") && strings.Contains(text, "FROM trace_meta_values") && !strings.Contains(all, seekValues) {
			t.Errorf("%s\nreads the trace meta values without seeking one meta value of one trace:\n%s", text, all)
		}
		if strings.Contains(text, "FROM trace_meta_values") {
			seen++
		}
	}
	if seen != 2 {
		t.Errorf("%d statements read the trace meta values, want 2 (the lookup and the delete)", seen)
	}
}
