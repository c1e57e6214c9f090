package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// testAPI is the whole server on a fresh SQLite file, with one workspace
// and one key, to drive in-process (e.ServeHTTP) without a network.
type testAPI struct {
	e     *echo.Echo
	store *sqlite.Store
	ws    string
	key   string
}

func newTestAPI(tb testing.TB) *testAPI {
	tb.Helper()
	return newTestAPIAt(tb, time.Now)
}

// newTestAPIAt is newTestAPI with the server's clock.
func newTestAPIAt(tb testing.TB, now func() time.Time) *testAPI {
	tb.Helper()
	return newTestAPIWith(tb, Config{Now: now})
}

// newTestAPIWith is newTestAPI with cfg's settings (its store and logger
// are the test's).
func newTestAPIWith(tb testing.TB, cfg Config) *testAPI {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "feedbackd.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	ws, err := st.EnsureWorkspace(ctx, "test")
	if err != nil {
		tb.Fatal(err)
	}
	key, hash := apikey.Generate()
	if err := st.CreateAPIKey(ctx, &store.APIKey{ID: uuid.NewString(), WorkspaceID: ws.ID, Hash: hash, CreatedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	cfg.Store, cfg.Logger = st, slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &testAPI{e: e, store: st, ws: ws.ID, key: key}
}
