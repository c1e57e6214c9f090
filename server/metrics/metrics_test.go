package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/metrics"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// page is the /metrics page m serves.
func page(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// value is the value of one series on a /metrics page, or -1 when the
// page lacks it.
func value(t *testing.T, page, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// A SQLite store's writer reports on its WAL through Metrics.Store: the
// WAL's frames, the frames each commit wrote and the checkpoints that
// start the WAL over, by outcome, are on /metrics once enough has been
// written to need one.
func TestSQLiteWALMetrics(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "feedbackd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := metrics.New()
	st := m.Store(db)
	ws, err := st.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	write := func() {
		t.Helper()
		now := time.Now().UTC()
		fs := make([]*store.Feedback, 200)
		for i := range fs {
			fs[i] = &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: uuid.NewString(), Value: 1, Weight: 1,
				Metadata: map[string]any{"comment": strings.Repeat("x", 4000)}, CreatedAt: now, UpdatedAt: now}
		}
		if err := st.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
	}
	checkpoints := func(p string) float64 {
		n := 0.0
		for _, o := range []string{"done", "busy", "error"} {
			n += max(0, value(t, p, `feedbackd_sqlite_wal_checkpoints_total{outcome="`+o+`"}`))
		}
		return n
	}
	// The writer reports after answering a batch: what a page shows is
	// the batches before the last write's.
	var p string
	for range 200 {
		write()
		if p = page(t, m); checkpoints(p) > 0 {
			break
		}
	}
	if checkpoints(p) == 0 {
		t.Fatalf("no checkpoint on /metrics after 200 commits of 200 rows of 4 KB:\n%s", p)
	}
	for _, series := range []string{
		`feedbackd_sqlite_wal_frames`,
		`feedbackd_sqlite_wal_checkpoints_total{outcome="done"}`,
		`feedbackd_sqlite_wal_checkpoints_total{outcome="busy"}`,
		`feedbackd_sqlite_wal_checkpoints_total{outcome="error"}`,
	} {
		if value(t, p, series) < 0 {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	// Every commit but the workspace's wrote 200 rows of 4 KB: at least a
	// page a row.
	commits, frames := value(t, p, `feedbackd_sqlite_wal_commit_frames_count`), value(t, p, `feedbackd_sqlite_wal_commit_frames_sum`)
	if commits < 2 || frames < 200*(commits-1) {
		t.Errorf("frames per commit: %v frames in %v commits; want at least 200 in each but one", frames, commits)
	}
}

// A store with no WAL to report on (PostgreSQL's) has no WAL metrics.
func TestNoWALMetricsWithoutAWAL(t *testing.T) {
	m := metrics.New()
	m.Store(struct{ store.Store }{})
	if p := page(t, m); strings.Contains(p, "feedbackd_sqlite_wal") {
		t.Errorf("/metrics of a store without a WAL shows WAL metrics:\n%s", p)
	}
}

// The outbox's backlog is read at each scrape: its count and the age of
// its oldest event; when the store cannot answer, the two series are
// left out and the rest of the page is served.
func TestWebhookBacklogIsReadAtEachScrape(t *testing.T) {
	m := metrics.New()
	var (
		n      int64
		oldest time.Time
		err    error
	)
	m.WebhookBacklog(func(context.Context) (int64, time.Time, error) { return n, oldest, err })

	p := page(t, m)
	if got := value(t, p, "feedbackd_webhook_backlog_events"); got != 0 {
		t.Errorf("backlog_events with none: got %v, want 0", got)
	}
	if got := value(t, p, "feedbackd_webhook_backlog_oldest_seconds"); got != 0 {
		t.Errorf("backlog_oldest_seconds with none: got %v, want 0", got)
	}

	n, oldest = 5, time.Now().Add(-90*time.Second)
	p = page(t, m)
	if got := value(t, p, "feedbackd_webhook_backlog_events"); got != 5 {
		t.Errorf("backlog_events: got %v, want 5", got)
	}
	if got := value(t, p, "feedbackd_webhook_backlog_oldest_seconds"); got < 90 || got > 100 {
		t.Errorf("backlog_oldest_seconds: got %v, want about 90", got)
	}

	err = errors.New("database down")
	p = page(t, m)
	for _, s := range []string{"feedbackd_webhook_backlog_events", "feedbackd_webhook_backlog_oldest_seconds"} {
		if got := value(t, p, s); got != -1 {
			t.Errorf("%s while the store fails: got %v, want it left out", s, got)
		}
	}
	if got := value(t, p, `feedbackd_webhook_deliveries_total{outcome="gave_up"}`); got != 0 {
		t.Errorf("deliveries_total{outcome=gave_up} while the backlog fails: got %v, want 0 on a page still served", got)
	}
}
