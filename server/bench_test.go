package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
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
