// Package metrics defines the Prometheus metrics feedbackd exports at
// /metrics, and the hooks that feed them. Each metric answers a question
// an operator asks of a running feedbackd; the comments on the fields say
// which.
//
// Labels are bounded by construction: routes are Echo's route patterns
// (never raw URLs, which hold ids and tokens), methods and statuses come
// from small sets, and store operations are method names.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/feedbackd/feedbackd/server/store"
)

// Metrics holds feedbackd's metrics on a registry of their own, so each
// server (and each test) starts from zero. A nil *Metrics records nothing.
type Metrics struct {
	registry *prometheus.Registry

	// requests counts answered requests by method, route and status: the
	// request rate and the error ratio of each endpoint.
	requests *prometheus.CounterVec
	// duration is the time from a request's arrival to its answer, by
	// method, route and status: latency percentiles per endpoint, kept
	// apart for errors, which are usually fast.
	duration *prometheus.HistogramVec
	// stored counts feedback rows written, by source: "create" for rows
	// of POST /v1/feedback (one per item of a bulk), "token" for votes
	// through feedback tokens (a changed vote counts again). The
	// ingestion rate, whatever the request sizes.
	stored *prometheus.CounterVec
	// commitWrites is how many writes of feedback shared one commit: how
	// well group commit is batching under the current load (1 everywhere
	// means every write pays its own commit). On PostgreSQL only creates
	// of few rows share one.
	commitWrites prometheus.Histogram
	// commitRows is how many feedback rows one commit of feedback wrote.
	commitRows prometheus.Histogram
	// commitSeconds is how long one commit of feedback took, fsync
	// included: the floor under every write's latency.
	commitSeconds prometheus.Histogram
	// storeErrors counts errors returned by the store, by operation and
	// code (internal, conflict, not_found, invalid, canceled,
	// idempotency_key_used): code="internal" is what should page someone.
	storeErrors *prometheus.CounterVec
	// rateLimited counts requests refused with 429, by subject kind
	// (api_key or token): whether --rate-limit bites, and whom.
	rateLimited *prometheus.CounterVec

	// deliveries counts attempts at delivering webhook events, by
	// outcome (delivered, retrying, gave_up, gone): whether receivers
	// keep up, and gave_up is what an operator should look into.
	deliveries *prometheus.CounterVec
	// deliverySeconds is how long one attempt at a delivery took, until
	// the receiver's answer or the timeout: slow receivers hold delivery
	// slots.
	deliverySeconds prometheus.Histogram

	// The SQLite WAL's metrics, registered only for a store that reports
	// on its WAL (see Store).
	wal walMetrics
	// The outbox's backlog, registered by the dispatcher (WebhookBacklog).
	backlog sync.Once
}

// walMetrics are about SQLite's write-ahead log: whether the writer keeps
// it starting over.
type walMetrics struct {
	once sync.Once
	// frames is the WAL's size in frames (pages) since it last started
	// over: it stays under a few thousand while the writer restarts it,
	// and grows while a long read holds it.
	frames prometheus.Gauge
	// checkpoints counts the writer's checkpoints that start the WAL over,
	// by outcome (done, busy, error): busy ones are retried; only busy
	// for long (a long read) or any error is worth a look.
	checkpoints *prometheus.CounterVec
	// commitFrames is how many frames (pages) one commit wrote to the
	// WAL: what a commit costs the disk, and how fast the WAL fills.
	commitFrames prometheus.Histogram
}

// New returns feedbackd's metrics on a new registry, which also holds the
// Go runtime's and the process's standard metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedbackd_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "feedbackd_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by method, route pattern and status.",
			Buckets: latency,
		}, []string{"method", "route", "status"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedbackd_feedback_stored_total",
			Help: "Feedback rows written: source=create per item of POST /v1/feedback, source=token per feedback-token vote.",
		}, []string{"source"}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedbackd_store_commit_writes",
			Help:    "Writes of feedback (creates, updates, deletes, token votes) that shared one commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		commitRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedbackd_store_commit_rows",
			Help:    "Feedback rows one commit of feedback wrote.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedbackd_store_commit_duration_seconds",
			Help:    "Time one commit of feedback took, from its first statement to its durable end.",
			Buckets: latency,
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedbackd_store_errors_total",
			Help: "Errors returned by the store, by operation and code.",
		}, []string{"operation", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedbackd_rate_limited_total",
			Help: "Requests refused with 429 by the rate limit, by subject kind (api_key, token).",
		}, []string{"subject"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedbackd_webhook_deliveries_total",
			Help: "Attempts at delivering webhook events, by outcome: delivered, retrying, gave_up (the last attempt failed), gone (410: the webhook is disabled).",
		}, []string{"outcome"}),
		deliverySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedbackd_webhook_delivery_seconds",
			Help:    "Time one attempt at delivering a webhook event took, until the receiver's answer or the timeout.",
			Buckets: latency,
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.stored, m.commitWrites, m.commitRows, m.commitSeconds, m.storeErrors, m.rateLimited,
		m.deliveries, m.deliverySeconds,
	)
	// Rate-limit subjects and stored sources exist from the start, so a
	// dashboard shows 0 rather than no data.
	for _, s := range []string{"api_key", "token"} {
		m.rateLimited.WithLabelValues(s)
	}
	for _, s := range []string{"create", "token"} {
		m.stored.WithLabelValues(s)
	}
	for _, o := range []store.Outcome{store.Delivered, store.Retrying, store.GaveUp, store.Gone} {
		m.deliveries.WithLabelValues(string(o))
	}
	m.wal = walMetrics{
		frames: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "feedbackd_sqlite_wal_frames",
			Help: "Frames (pages) in SQLite's WAL since it last started over, as the writer last read them.",
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedbackd_sqlite_wal_checkpoints_total",
			Help: "Checkpoints the SQLite writer ran to start the WAL over, by outcome: done, busy (a reader held it; retried), error.",
		}, []string{"outcome"}),
		commitFrames: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedbackd_sqlite_wal_commit_frames",
			Help:    "Frames (pages) one commit of the SQLite writer wrote to the WAL.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
	}
	return m
}

// registerWAL registers the WAL's metrics, once.
func (m *Metrics) registerWAL() {
	m.wal.once.Do(func() {
		m.registry.MustRegister(m.wal.frames, m.wal.checkpoints, m.wal.commitFrames)
		// Every outcome exists from the start, so a dashboard shows 0
		// rather than no data.
		for _, o := range []string{"done", "busy", "error"} {
			m.wal.checkpoints.WithLabelValues(o)
		}
	})
}

// ObserveWAL records what the SQLite writer saw of its WAL after one
// commit: the frames the commit wrote, the WAL's frames, and the outcome
// of the checkpoint it ran to start the WAL over ("" when none). Store
// has a store that reports on its WAL call it.
func (m *Metrics) ObserveWAL(commitFrames, walFrames int, checkpoint string) {
	if m == nil {
		return
	}
	m.wal.commitFrames.Observe(float64(commitFrames))
	m.wal.frames.Set(float64(walFrames))
	if checkpoint != "" {
		m.wal.checkpoints.WithLabelValues(checkpoint).Inc()
	}
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Gatherer returns the registry, for tests that read metrics directly.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// knownMethods bounds the method label: anything else is "other".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// ObserveRequest records one answered request. route is the route pattern
// that matched (such as /v1/feedback/:id); empty when none did, recorded
// as "unmatched".
func (m *Metrics) ObserveRequest(method, route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if !knownMethods[method] {
		method = "other"
	}
	if route == "" {
		route = "unmatched"
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, code).Inc()
	m.duration.WithLabelValues(method, route, code).Observe(took.Seconds())
}

// ObserveCommit records one commit of feedback; it is a
// store.CommitObserver. Failed commits are recorded too (they cost the
// same time); their errors reach, and are counted by, the operations that
// asked for the writes.
func (m *Metrics) ObserveCommit(writes, rows int, took time.Duration, _ error) {
	if m == nil {
		return
	}
	m.commitWrites.Observe(float64(writes))
	m.commitRows.Observe(float64(rows))
	m.commitSeconds.Observe(took.Seconds())
}

// RateLimited records one request refused by the rate limit; subject is
// "api_key" or "token".
func (m *Metrics) RateLimited(subject string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(subject).Inc()
}

// codeOf is the code label of a store error: the store's code, with the
// two errors that are not failures of the store told apart.
func codeOf(err error) string {
	switch {
	case errors.Is(err, store.ErrIdempotencyKeyUsed):
		return "idempotency_key_used"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return store.ErrorCode(err)
}
