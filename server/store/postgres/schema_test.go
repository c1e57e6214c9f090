package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
)

var update = flag.Bool("update", false, "write testdata/schema.sql from a migrated database")

// The migrations give exactly the schema committed in testdata/schema.sql, the
// readable statement of what a database holds, as PostgreSQL's catalog
// describes it (go test -run Schema -update writes it after a migration
// changes it).
func TestSchemaIsTheCommittedOne(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var b strings.Builder
	b.WriteString("-- The schema the migrations give, from PostgreSQL's catalog (TestSchemaIsTheCommittedOne checks it).\n")
	tables := lines(t, conn, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE 'goose%' ORDER BY c.relname`)
	for _, table := range tables {
		cols := lines(t, conn, `SELECT '    ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
				|| CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
				|| coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
			FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
		cons := lines(t, conn, `SELECT '    CONSTRAINT ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
			WHERE conrelid = $1::regclass ORDER BY conname`, table)
		fmt.Fprintf(&b, "\nCREATE TABLE %s (\n%s\n);\n", table, strings.Join(append(cols, cons...), ",\n"))
		for _, index := range lines(t, conn, `SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1
			AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname`, table) {
			b.WriteString(index + ";\n")
		}
	}
	got := b.String()
	if *update {
		if err := os.WriteFile("testdata/schema.sql", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the migrated schema differs from testdata/schema.sql (go test -run Schema -update rewrites it):\n%s", got)
	}
}

// lines runs a query of one text column and returns its rows.
func lines(t *testing.T, conn *pgx.Conn, query string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A database an earlier build made is refused with a message saying how
// to move it over.
func TestMigrateRefusesADatabaseOfAnEarlierBuild(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
		INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (13, true)`); err != nil {
		t.Fatal(err)
	}
	err = postgres.Migrate(ctx, url)
	if err == nil || !strings.Contains(err.Error(), "earlier build") || !strings.Contains(err.Error(), "feedbackd export") {
		t.Fatalf("Migrate: %v; want a refusal that says how to move the data", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'feedback'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the refused database gained a feedback table (%d, %v)", n, err)
	}
}
