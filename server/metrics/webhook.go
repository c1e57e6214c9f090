package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feedbackd/feedbackd/server/store"
)

// ObserveDelivery records one attempt at delivering a webhook event: its
// outcome and how long it took.
func (m *Metrics) ObserveDelivery(o store.Outcome, took time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(string(o)).Inc()
	m.deliverySeconds.Observe(took.Seconds())
}

// backlogTimeout bounds the query a scrape runs for the backlog.
const backlogTimeout = 5 * time.Second

// WebhookBacklog has /metrics report the outbox's backlog, as backlog
// (Store.WebhookBacklog) counts it, at each scrape:
// feedbackd_webhook_backlog_events, the events some webhook that is not
// disabled has yet to walk past, and
// feedbackd_webhook_backlog_oldest_seconds, the age of the oldest of
// them (0 when none). Computed on scrape rather than refreshed by the
// dispatcher, so a dispatcher that is stuck shows a growing backlog
// instead of freezing the gauges at their last value, and the query
// costs nothing when nobody scrapes. When the query fails the two series
// are left out of that scrape (an alert on their absence notices), so
// the rest of the page is still served. Only the first call registers.
func (m *Metrics) WebhookBacklog(backlog func(context.Context) (int64, time.Time, error)) {
	if m == nil {
		return
	}
	m.backlog.Do(func() {
		m.registry.MustRegister(&backlogCollector{
			backlog: backlog,
			events: prometheus.NewDesc("feedbackd_webhook_backlog_events",
				"Webhook events some webhook that is not disabled has yet to walk past (delivered, given up or skipped), read at the scrape.", nil, nil),
			oldest: prometheus.NewDesc("feedbackd_webhook_backlog_oldest_seconds",
				"Age of the oldest webhook event some webhook that is not disabled has yet to walk past, 0 when none, read at the scrape.", nil, nil),
		})
	})
}

// backlogCollector reads the backlog from the store at each scrape.
type backlogCollector struct {
	backlog        func(context.Context) (int64, time.Time, error)
	events, oldest *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.oldest
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	n, oldest, err := c.backlog(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, time.Since(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
