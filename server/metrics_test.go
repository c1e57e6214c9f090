package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/metrics"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// opsServer is the whole server on a real SQLite file and a loopback
// listener, with one key, its metrics and its log.
type opsServer struct {
	url string
	key string
	log *syncBuffer
	// close stops the listener and returns once every request has been
	// answered and logged.
	close func()
}

// syncBuffer is a log destination the server's goroutines share with the
// test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newOpsServer(t *testing.T, cfg server.Config) *opsServer {
	t.Helper()
	return newOpsServerWith(t, cfg, nil)
}

// newOpsServerWith is newOpsServer whose server uses wrap(the store), for
// tests that hold or fail some store calls; nil wraps nothing.
func newOpsServerWith(t *testing.T, cfg server.Config, wrap func(store.Store) store.Store) *opsServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if cfg.Metrics != nil {
		db.SetCommitObserver(cfg.Metrics.ObserveCommit)
	}
	ws, err := db.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	key, hash := apikey.Generate()
	if err := db.CreateAPIKey(ctx, &store.APIKey{ID: uuid.NewString(), WorkspaceID: ws.ID, Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cfg.Store = db
	if wrap != nil {
		cfg.Store = wrap(db)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	e, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &opsServer{url: srv.URL, key: key, log: log, close: srv.Close}
}

// do sends one request with the key and returns the response and its body.
func (s *opsServer) do(t *testing.T, method, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-portkey-api-key", s.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// metricLine finds the value of one series in a /metrics page.
func metricLine(t *testing.T, page, series string) string {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// GET /metrics reports requests by route pattern and status, feedback
// stored, commits, store errors and rate-limit refusals; raw paths never
// appear in it.
func TestMetrics(t *testing.T) {
	frozen := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	m := metrics.New()
	s := newOpsServer(t, server.Config{Metrics: m, RateLimit: 100, Now: func() time.Time { return frozen }})

	if resp, body := s.do(t, "POST", "/v1/feedback", `[{"trace_id":"a","value":1},{"trace_id":"b","value":2},{"trace_id":"c","value":3}]`, nil); resp.StatusCode != 200 {
		t.Fatalf("bulk create: %d %s", resp.StatusCode, body)
	}
	missing := uuid.NewString()
	if resp, _ := s.do(t, "GET", "/v1/feedback/"+missing, "", nil); resp.StatusCode != 404 {
		t.Fatalf("get missing: %d", resp.StatusCode)
	}
	if resp, _ := s.do(t, "GET", "/no/such/path-"+missing, "", nil); resp.StatusCode != 404 {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
	// The clock is frozen, so the bucket of 100 empties and stays empty.
	refused := 0
	for range 105 {
		if resp, _ := s.do(t, "GET", "/v1/feedback?limit=1", "", nil); resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("the rate limit refused nothing")
	}

	resp, page := s.do(t, "GET", "/metrics", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	want := map[string]string{
		`feedbackd_http_requests_total{method="POST",route="/v1/feedback",status="200"}`:                 "1",
		`feedbackd_http_requests_total{method="GET",route="/v1/feedback/:id",status="404"}`:              "1",
		`feedbackd_http_requests_total{method="GET",route="unmatched",status="404"}`:                     "1",
		`feedbackd_http_requests_total{method="GET",route="/v1/feedback",status="429"}`:                  strconv.Itoa(refused),
		`feedbackd_http_request_duration_seconds_count{method="POST",route="/v1/feedback",status="200"}`: "1",
		`feedbackd_feedback_stored_total{source="create"}`:                                               "3",
		`feedbackd_feedback_stored_total{source="token"}`:                                                "0",
		`feedbackd_store_errors_total{code="not_found",operation="GetFeedback"}`:                         "1",
		`feedbackd_rate_limited_total{subject="api_key"}`:                                                strconv.Itoa(refused),
		`feedbackd_rate_limited_total{subject="token"}`:                                                  "0",
		`feedbackd_store_commit_rows_sum`:                                                                "3",
	}
	for series, v := range want {
		if got := metricLine(t, page, series); got != v {
			t.Errorf("%s: got %q, want %q", series, got, v)
		}
	}
	for _, series := range []string{`feedbackd_store_commit_writes_count`, `feedbackd_store_commit_duration_seconds_count`, `go_goroutines`, `process_resident_memory_bytes`} {
		if metricLine(t, page, series) == "" {
			t.Errorf("%s is missing from /metrics", series)
		}
	}
	if strings.Contains(page, missing) {
		t.Error("/metrics holds a raw URL")
	}
}

// Without Metrics there is no /metrics route.
func TestMetricsOff(t *testing.T) {
	s := newOpsServer(t, server.Config{})
	if resp, _ := s.do(t, "GET", "/metrics", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without metrics: got %d, want 404", resp.StatusCode)
	}
}

// Every answer carries an X-Request-Id, which its access log line names; a
// client's own id is kept only when it is a short token.
func TestRequestID(t *testing.T) {
	s := newOpsServer(t, server.Config{})
	generated := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	cases := []struct {
		name, sent string
		kept       bool
	}{
		{"none", "", false},
		{"a short token", "req-42_a.b:c", true},
		{"64 characters", strings.Repeat("x", 64), true},
		{"65 characters", strings.Repeat("x", 65), false},
		{"a space", "two words", false},
		{"markup", "<script>", false},
		{"a quote and an equals sign", `a" level=ERROR`, false},
		{"non-ASCII", "idé", false},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			header := map[string]string{}
			if c.sent != "" {
				header["X-Request-Id"] = c.sent
			}
			resp, _ := s.do(t, "GET", "/v1/feedback?limit=1", "", header)
			got := resp.Header.Get("X-Request-Id")
			if c.kept && got != c.sent {
				t.Errorf("X-Request-Id: got %q, want the client's %q", got, c.sent)
			}
			if !c.kept && !generated.MatchString(got) {
				t.Errorf("X-Request-Id: got %q, want a fresh id", got)
			}
			if seen[got] && !c.kept {
				t.Errorf("X-Request-Id %q given twice", got)
			}
			seen[got] = true
			if !strings.Contains(s.log.String(), "request_id="+got+" ") {
				t.Errorf("no access log line with request_id=%s in:\n%s", got, s.log.String())
			}
			if c.sent != "" && !c.kept && strings.Contains(s.log.String(), c.sent) {
				t.Errorf("the log holds the refused id %q", c.sent)
			}
		})
	}
}
