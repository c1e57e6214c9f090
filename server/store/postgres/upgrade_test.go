package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// A database made by feedbackd 0.1.0 (testdata/v0.1.0.sql, its pg_dump)
// opens with this build, which migrates it in place, and answers as 0.1.0
// did; its derived data stays exactly what its rows give, also after new
// writes on its traces.
func TestUpgradesA010Database(t *testing.T) {
	url := pgtest.NewDatabase(t)
	restore010(t, url, filepath.Join("testdata", "v0.1.0.sql"))
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
