package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

var update = flag.Bool("update", false, "write testdata/schema.sql from a migrated database")

// The migrations give exactly the schema committed in testdata/schema.sql, the
// readable statement of what a database holds (go test -run Schema
// -update writes it after a migration changes it).
func TestSchemaIsTheCommittedOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s := open(t, path)
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'goose%' AND name != 'sqlite_sequence'
		ORDER BY tbl_name = name DESC, tbl_name, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString("-- The schema the migrations give (TestSchemaIsTheCommittedOne checks it).\n")
	for rows.Next() {
		var stmt string
		if err := rows.Scan(&stmt); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n" + stmt + ";\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, "testdata/schema.sql", b.String())
}

func checkSchema(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the migrated schema differs from %s (go test -run Schema -update rewrites it):\n%s", file, got)
	}
}

// A database an earlier build made (its migrations stop before this
// build's baseline) is refused with a message saying how to move it over,
// and left as it was.
func TestOpenRefusesADatabaseOfAnEarlierBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')))`,
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (11, 1)`,
		`CREATE TABLE feedback_group_cells (workspace_id TEXT)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := sqlite.Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open: got nil error")
	}
	for _, want := range []string{"earlier build", "schema version 11", "feedbackd export", "feedbackd import"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open: %v; want it to say %q", err, want)
		}
	}
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'feedback'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("the refused database gained a feedback table (%d, %v)", tables, err)
	}
}
