package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/store"
)

// BenchmarkCreateFeedback measures the whole in-process path of a single
// POST /v1/feedback (auth, validation, decoding, the SQLite store with its
// durable group commit) without the network, for profiling:
//
//	go test ./server -run '^$' -bench CreateFeedback -cpuprofile cpu.out
func BenchmarkCreateFeedback(b *testing.B) {
	api := newTestAPI(b)
	e, key := api.e, api.key
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

// discardWrites is a store that takes feedback without storing it, so that
// BenchmarkCreateFeedbackHTTP measures the HTTP path alone.
type discardWrites struct{ store.Store }

func (discardWrites) CreateFeedback(context.Context, []*store.Feedback, *store.Idempotency) error {
	return nil
}

func (discardWrites) UpsertTokenFeedback(_ context.Context, _ string, f *store.Feedback, _ *store.Idempotency) (*store.Feedback, error) {
	return f, nil
}

// BenchmarkCreateFeedbackHTTP is BenchmarkCreateFeedback without the
// store: what a write costs between Echo receiving the request and the
// store call, and writing the answer, for each form of body: a plain
// object, the index-keyed object Portkey's Node SDK sends and a token
// submission. Its allocations per
// request are a steadier figure than time on a busy machine:
//
//	go test ./server -run '^$' -bench CreateFeedbackHTTP -benchmem
func BenchmarkCreateFeedbackHTTP(b *testing.B) {
	api := newTestAPI(b)
	e, err := New(context.Background(), Config{Store: discardWrites{api.store}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	item := func(i int) string {
		return fmt.Sprintf(`{"trace_id":"0123456789abcdef%016x","value":%d,"weight":0.%02d,"metadata":{"_environment":"production","_organisation":"org-%d","_prompt":"p-%d","_user":"user-%d","model":"gpt-4o"}}`,
			i, i%21-10, i%100, i%100, i%50, i*37%10000)
	}
	tok := httptest.NewRecorder()
	treq := httptest.NewRequest(http.MethodPost, "/v1/feedback/tokens", strings.NewReader(`{"trace_id":"t","metadata":{"_user":"u"}}`))
	treq.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	treq.Header.Set("x-portkey-api-key", api.key)
	e.ServeHTTP(tok, treq)
	var token struct{ Token string }
	if err := json.Unmarshal(tok.Body.Bytes(), &token); err != nil || token.Token == "" {
		b.Fatalf("token: %d %s", tok.Code, tok.Body)
	}
	for _, form := range []struct {
		name, path string
		body       func(i int) string
	}{
		{"object", "/v1/feedback", item},
		{"indexed", "/v1/feedback", func(i int) string { return `{"0":` + item(i) + `}` }},
		{"token", "/v1/feedback/tokens/" + token.Token, func(i int) string {
			return fmt.Sprintf(`{"value":%d,"metadata":{"model":"gpt-4o","n":%d}}`, i%21-10, i)
		}},
	} {
		b.Run(form.name, func(b *testing.B) {
			bodies := make([]string, 256)
			for i := range bodies {
				bodies[i] = form.body(i)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, form.path, strings.NewReader(bodies[n.Add(1)%int64(len(bodies))]))
					req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
					req.Header.Set("x-portkey-api-key", api.key)
					rec := httptest.NewRecorder()
					e.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
