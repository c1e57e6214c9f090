package sqlite_test

import (
	"context"
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
