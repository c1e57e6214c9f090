package sqlite_test

import (
	"context"
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
// on its traces.
func TestUpgradesA010Database(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "v0.1.0.db"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy: the fixture itself is never opened, so never migrated.
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	if err := os.WriteFile(path, fixture, 0o600); err != nil {
		t.Fatal(err)
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
