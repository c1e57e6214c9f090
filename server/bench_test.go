package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// BenchmarkCreateFeedback measures the whole in-process path of a single
// POST /v1/feedback (auth, validation, decoding, the SQLite store with its
// durable group commit) without the network, for profiling:
//
//	go test ./server -run '^$' -bench CreateFeedback -cpuprofile cpu.out
func BenchmarkCreateFeedback(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ws, err := st.EnsureWorkspace(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	key, hash := apikey.Generate()
	if err := st.CreateAPIKey(ctx, &store.APIKey{ID: uuid.NewString(), WorkspaceID: ws.ID, Hash: hash, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	e, err := New(ctx, Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"trace_id":"trace-%d","value":%d,"weight":0.5,"metadata":{"_user":"user-%d","_prompt":"p-%d"}}`, i, i%21-10, i%1000, i%50)
			req := httptest.NewRequest(http.MethodPost, "/v1/feedback", strings.NewReader(body))
			req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			req.Header.Set("x-portkey-api-key", key)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
