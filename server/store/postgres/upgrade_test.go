package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// A database made by feedbackd 0.1.0 (testdata/v0.1.0.sql, its pg_dump)
// opens with this build, which migrates it in place, and answers as 0.1.0
// did; its derived data stays exactly what its rows give, also after new
// writes on its traces. A first flag 0.1.0 left on the wrong feedback is
// set right by the migration.
func TestUpgradesA010Database(t *testing.T) {
	for _, wrongFlags := range []bool{false, true} {
		t.Run(map[bool]string{false: "AsMade", true: "WithWrongFlags"}[wrongFlags], func(t *testing.T) {
			upgrade010(t, wrongFlags)
		})
	}
}

func upgrade010(t *testing.T, wrongFlags bool) {
	url := pgtest.NewDatabase(t)
	restore010(t, url, filepath.Join("testdata", "v0.1.0.sql"))
	if wrongFlags {
		moveAFirst(t, url)
	}
	storetest.CheckUpgradeFrom010(t, storetest.Upgrade{
		Open: func(t *testing.T) store.Store {
			s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4})
			if err != nil {
				t.Fatalf("Open a 0.1.0 database: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		CheckDerived: func(t *testing.T) { postgres.CheckDerived(t, url) },
	})
}

// restore010 replays a plain pg_dump into the database at url: the whole
// file in one simple-protocol exec, which runs it statement by statement
// as psql would (the dump's data are INSERT statements, not COPY, and it
// has no psql commands).
func restore010(t *testing.T, url, dump string) {
	t.Helper()
	sql, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, string(sql), pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("restore %s: %v", dump, err)
	}
}

// moveAFirst moves the flag of a trace's first feedback with an
// _organisation value to a later one of the same value, and the group
// rollups' counts of traces with it, as 0.1.0's SQLite store could (a
// database moved here through export and import keeps what it had): in
// 0.1.0's schema, before any migration (group_slots.firsts, m_firsts).
func moveAFirst(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		first, later, ws, org string
		firstAt, laterAt      time.Time
	)
	if err := conn.QueryRow(ctx, `SELECT a.id::text, a.created_at, b.id::text, b.created_at, a.workspace_id::text, a.m_organisation FROM feedback AS a
		JOIN feedback AS b ON b.workspace_id = a.workspace_id AND b.trace_id = a.trace_id AND b.m_organisation = a.m_organisation AND b.id <> a.id
		WHERE a.m_firsts & 2 <> 0 ORDER BY a.id, b.id LIMIT 1`).Scan(&first, &firstAt, &later, &laterAt, &ws, &org); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE feedback SET m_firsts = m_firsts & ~2::smallint WHERE id = $1`, first)
	exec(`UPDATE feedback SET m_firsts = m_firsts | 2::smallint WHERE id = $1`, later)
	for _, span := range []int64{900, 3600, 86400} {
		for at, delta := range map[time.Time]int{firstAt: -1, laterAt: 1} {
			exec(`UPDATE group_slots SET firsts = firsts + $1 WHERE workspace_id = $2 AND key = '_organisation' AND value = $3 AND span = $4 AND slot = $5`,
				delta, ws, org, span, at.Unix()/span)
		}
	}
}
