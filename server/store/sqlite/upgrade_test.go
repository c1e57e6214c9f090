package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// A file made by feedbackd 0.1.0 (testdata/v0.1.0.db) opens with this
// build, which migrates it in place, and answers as 0.1.0 did; its
// derived data stays exactly what its rows give, also after new writes
// on its traces. 0.1.0 could leave a trace's first feedback unflagged and
// a later one flagged instead (when one write held feedback of several
// workspaces): the migration sets them right.
func TestUpgradesA010Database(t *testing.T) {
	for _, wrongFlags := range []bool{false, true} {
		t.Run(map[bool]string{false: "AsMade", true: "WithWrongFlags"}[wrongFlags], func(t *testing.T) {
			upgrade010(t, wrongFlags)
		})
	}
}

func upgrade010(t *testing.T, wrongFlags bool) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "v0.1.0.db"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy: the fixture itself is never opened, so never migrated.
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	if err := os.WriteFile(path, fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	if wrongFlags {
		moveAFirst(t, path)
	}
	storetest.CheckUpgradeFrom010(t, storetest.Upgrade{
		Open: func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatalf("Open a 0.1.0 database: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		CheckDerived: func(t *testing.T) { sqlite.CheckDerived(t, path) },
	})
}

// moveAFirst moves the flag of a trace's first feedback with an
// _organisation value to a later one of the same value, and the group
// rollups' counts of traces with it, as 0.1.0's bug could: in 0.1.0's
// schema, before any migration (group_slots.firsts, m_firsts).
func moveAFirst(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		first, later, ws, org string
		firstAt, laterAt      int64
	)
	if err := db.QueryRow(`SELECT a.id, a.created_at, b.id, b.created_at, a.workspace_id, a.m_organisation FROM feedback AS a
		JOIN feedback AS b ON b.workspace_id = a.workspace_id AND b.trace_id = a.trace_id AND b.m_organisation = a.m_organisation AND b.id != a.id
		WHERE a.m_firsts & 2 != 0 ORDER BY a.id, b.id LIMIT 1`).Scan(&first, &firstAt, &later, &laterAt, &ws, &org); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE feedback SET m_firsts = m_firsts & ~2 WHERE id = ?`, first)
	exec(`UPDATE feedback SET m_firsts = m_firsts | 2 WHERE id = ?`, later)
	for _, span := range []int64{900, 3600, 86400} {
		for at, delta := range map[int64]int{firstAt: -1, laterAt: 1} {
			exec(`UPDATE group_slots SET firsts = firsts + ? WHERE workspace_id = ? AND key = '_organisation' AND value = ? AND span = ? AND slot = ?`,
				delta, ws, org, span, at/(span*1_000_000))
		}
	}
}
