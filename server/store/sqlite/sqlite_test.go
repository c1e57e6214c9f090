package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// Every test of the contract ends with the derived data checked against
// the rows it left (after the suite closes the store).
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "feedbackd.db")
		t.Cleanup(func() { sqlite.CheckDerived(t, path) })
		return open(t, path)
	})
}

// A reopened file holds everything committed before Close, and reapplying
// the migrations on an up-to-date file changes nothing.
func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s := open(t, path)
	ws, err := s.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: "t", Value: 3, Weight: 0.5,
		Metadata: map[string]any{"_user": "u"}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err == nil {
		t.Error("CreateFeedback after Close: got nil error")
	}
	s = open(t, path)
	defer s.Close()
	got, err := s.GetFeedback(ctx, ws.ID, f.ID)
	if err != nil {
		t.Fatalf("GetFeedback after reopen: %v", err)
	}
	if got.Value != 3 || got.Weight != 0.5 || got.Metadata["_user"] != "u" || !got.CreatedAt.Equal(now) {
		t.Errorf("after reopen: got %+v", got)
	}
}

func BenchmarkErase(b *testing.B) {
	storetest.BenchmarkErase(b, func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "feedbackd.db"))
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// A database without model keys (one that 0.1.0 made, upgraded) gets its
// model rollups from its rows when it is opened.
func TestOpenMakesTheModelRollupsOfADatabaseWithoutModelKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s := open(t, path)
	ws, err := s.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: "t", Value: 3, Weight: 0.5,
		Metadata: map[string]any{"model": "gpt-4o"}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM settings; DELETE FROM rollups WHERE meta_key = '' AND meta_value <> ''`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = open(t, path)
	defer s.Close()
	got, err := s.FeedbackModels(ctx, ws.ID, store.AnalyticsQuery{From: now.Add(-48 * time.Hour), To: now.Add(48 * time.Hour), BucketSize: 3600})
	if err != nil || len(got) != 1 || got[0] != (store.ModelTally{Model: "gpt-4o", Count: 1, SumWeighted: 1.5}) {
		t.Errorf("models after reopening: %+v, %v; want gpt-4o once", got, err)
	}
	sqlite.CheckDerived(t, path)
}
