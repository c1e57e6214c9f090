package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/metrics"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
	"github.com/feedbackd/feedbackd/server/webhook"
)

// env is a real SQLite store with one workspace, and the key its
// webhooks' secrets are sealed with.
type env struct {
	t    *testing.T
	st   store.Store
	ws   *store.Workspace
	keys *webhook.Keyring
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "feedbackd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ws, err := st.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, ws: ws, keys: newKeyring(t)}
}

func newKeyring(t *testing.T) *webhook.Keyring {
	t.Helper()
	key := make([]byte, webhook.KeySize)
	rand.Read(key)
	k, err := webhook.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var allKinds = []store.EventKind{store.Created, store.Updated, store.Deleted}

// addWebhook subscribes url to kinds of events matching filter, and
// returns the webhook and its secret.
func (e *env) addWebhook(url string, kinds []store.EventKind, filter store.Filter) (*store.Webhook, string) {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	secret := webhook.NewSecret()
	w := &store.Webhook{
		ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: e.ws.ID, URL: url, Kinds: kinds, Filter: filter,
		Secret: e.keys.Seal(secret), State: store.WebhookActive, CreatedAt: now, UpdatedAt: now,
	}
	if err := e.st.CreateWebhook(context.Background(), w); err != nil {
		e.t.Fatal(err)
	}
	return w, secret
}

// create stores one feedback per value, each in its own write, in
// order, and returns them.
func (e *env) create(meta map[string]any, values ...int) []*store.Feedback {
	e.t.Helper()
	if meta == nil {
		meta = map[string]any{}
	}
	var fs []*store.Feedback
	for _, v := range values {
		now := time.Now().UTC().Truncate(time.Microsecond)
		f := &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: e.ws.ID, TraceID: uuid.NewString(),
			Value: v, Weight: 1, Metadata: meta, CreatedAt: now, UpdatedAt: now}
		if err := e.st.CreateFeedback(context.Background(), []*store.Feedback{f}, nil); err != nil {
			e.t.Fatal(err)
		}
		fs = append(fs, f)
	}
	return fs
}

// webhook reads w as stored now.
func (e *env) webhook(w *store.Webhook) *store.Webhook {
	e.t.Helper()
	got, err := e.st.Webhook(context.Background(), e.ws.ID, w.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// attempts returns w's attempts, oldest first.
func (e *env) attempts(w *store.Webhook) []*store.Attempt {
	e.t.Helper()
	as, err := e.st.Attempts(context.Background(), e.ws.ID, w.ID, 1000, 0, false)
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Reverse(as)
	return as
}

// outcomes lists the outcomes of attempts.
func outcomes(as []*store.Attempt) []store.Outcome {
	var os []store.Outcome
	for _, a := range as {
		os = append(os, a.Outcome)
	}
	return os
}

// idle waits until no webhook has events left to walk past.
func (e *env) idle() {
	e.t.Helper()
	eventually(e.t, "the backlog is empty", func() bool {
		n, _, err := e.st.WebhookBacklog(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		return n == 0
	})
}

// kindNames are the wire's names of the event kinds.
var kindNames = map[store.EventKind]string{store.Created: "feedback.created", store.Updated: "feedback.updated", store.Deleted: "feedback.deleted"}

// payload is what testBody sends.
type payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		ID    string `json:"id"`
		Value int    `json:"value"`
	} `json:"data"`
}

// testBody is the tests' payload: the server's carries the feedback as
// the API returns it.
func testBody(e *store.Event) ([]byte, error) {
	return json.Marshal(map[string]any{
		"type": kindNames[e.Kind], "timestamp": e.At.Format(time.RFC3339Nano),
		"data": map[string]any{"id": e.Feedback.ID, "value": e.Feedback.Value, "metadata": e.Feedback.Metadata},
	})
}

// sent decodes what the deliveries carried: "<type> <feedback id>" each.
func sent(t *testing.T, ds []delivery) []string {
	t.Helper()
	var got []string
	for _, d := range ds {
		var p payload
		if err := json.Unmarshal(d.Body, &p); err != nil {
			t.Fatalf("a delivery's body %s: %v", d.Body, err)
		}
		got = append(got, p.Type+" "+p.Data.ID)
	}
	return got
}

func created(fs ...*store.Feedback) []string {
	var s []string
	for _, f := range fs {
		s = append(s, "feedback.created "+f.ID)
	}
	return s
}

// start starts a dispatcher on e's store, as launch does, that may reach
// loopback.
func (e *env) start(c webhook.Config) *webhook.Dispatcher {
	e.t.Helper()
	c.AllowLoopback = true
	return e.launch(c)
}

// launch starts a dispatcher on e's store whose dialer fails the test
// for any address but loopback, that retries after a millisecond and
// polls every 5 ms; c's fields override; Close is a cleanup.
func (e *env) launch(c webhook.Config) *webhook.Dispatcher {
	e.t.Helper()
	c.Store, c.Keyring = e.st, e.keys
	if c.Body == nil {
		c.Body = testBody
	}
	if c.Dial == nil {
		c.Dial = loopbackDial(e.t, nil)
	}
	if c.Backoff == nil {
		c.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, err := webhook.Start(context.Background(), c)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(d.Close)
	return d
}

// Every event is delivered, in the order its write committed, signed
// with the webhook's secret; a receiver answering 500 now and then gets
// the same event again (same webhook-id) until it takes it, and only
// then the next. Every attempt is recorded, and counted in the metrics.
func TestDispatcherDeliversInCommitOrderThroughFailures(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	fails := map[int]bool{3: true, 4: true, 5: true, 20: true, 41: true}
	r.answer = func(_ delivery, n int) int {
		if fails[n] {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	w, secret := e.addWebhook(r.URL(), allKinds, store.Filter{})
	r.setSecrets(secret)
	m := metrics.New()
	e.start(webhook.Config{Metrics: m})

	fs := e.create(nil, make([]int, 50)...)
	eventually(t, "55 requests", func() bool { return len(r.deliveries()) >= 55 })
	e.idle()

	ds := r.deliveries()
	if len(ds) != 55 {
		t.Fatalf("requests: got %d, want 55 (50 events, 5 answered 500)", len(ds))
	}
	var delivered []delivery
	for n, d := range ds {
		if fails[n] {
			if next := ds[n+1]; next.ID != d.ID || !bytes.Equal(next.Body, d.Body) {
				t.Errorf("request %d after a 500: got event %s, want %s again", n+1, next.ID, d.ID)
			}
			continue
		}
		delivered = append(delivered, d)
	}
	if got, want := sent(t, delivered), created(fs...); !slices.Equal(got, want) {
		t.Errorf("delivered:\n got %v\nwant %v (commit order)", got, want)
	}
	as := e.attempts(w)
	var want []store.Outcome
	for n := range ds {
		if fails[n] {
			want = append(want, store.Retrying)
		} else {
			want = append(want, store.Delivered)
		}
	}
	if got := outcomes(as); !slices.Equal(got, want) {
		t.Errorf("attempts:\n got %v\nwant %v", got, want)
	}
	if a := as[5]; a.N != 3 || a.Status != 500 || a.NextAttemptAt == nil || a.EventID != ds[5].ID {
		t.Errorf("the third attempt at an event: got %+v, want N 3, status 500, a next attempt, event %s", a, ds[5].ID)
	}
	if a := as[6]; a.N != 4 || a.Status != 200 || a.Error != "" {
		t.Errorf("the attempt that delivered: got %+v, want N 4, status 200, no error", a)
	}
	if got := e.webhook(w); got.Attempts != 0 {
		t.Errorf("webhook's failed attempts after a delivery: got %d, want 0", got.Attempts)
	}
	p := page(t, m)
	for outcome, want := range map[string]float64{"delivered": 50, "retrying": 5, "gave_up": 0, "gone": 0} {
		if got := value(t, p, `feedbackd_webhook_deliveries_total{outcome="`+outcome+`"}`); got != want {
			t.Errorf("deliveries_total{outcome=%q}: got %v, want %v", outcome, got, want)
		}
	}
	if got := value(t, p, "feedbackd_webhook_delivery_seconds_count"); got != 55 {
		t.Errorf("delivery_seconds_count: got %v, want 55", got)
	}
	if got := value(t, p, "feedbackd_webhook_backlog_events"); got != 0 {
		t.Errorf("backlog_events after delivering everything: got %v, want 0", got)
	}
}

// The backlog gauges count the events webhooks have yet to walk past,
// and the age of the oldest, at each scrape.
func TestDispatcherReportsTheBacklog(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.answer = func(delivery, int) int { return http.StatusServiceUnavailable }
	e.addWebhook(r.URL(), allKinds, store.Filter{})
	m := metrics.New()
	e.start(webhook.Config{Metrics: m, Backoff: func(int) time.Duration { return time.Hour }})
	e.create(nil, 1, 2, 3)
	eventually(t, "a first attempt", func() bool { return len(r.deliveries()) > 0 })

	p := page(t, m)
	if got := value(t, p, "feedbackd_webhook_backlog_events"); got != 3 {
		t.Errorf("backlog_events: got %v, want 3", got)
	}
	if got := value(t, p, "feedbackd_webhook_backlog_oldest_seconds"); got <= 0 || got > 60 {
		t.Errorf("backlog_oldest_seconds: got %v, want the age of the first event", got)
	}
}

// During a rotation's grace period a delivery verifies with the new
// secret and with the previous one; after it, only with the new one.
func TestDispatcherSignsWithThePreviousSecretDuringTheGracePeriod(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	w, old := e.addWebhook(r.URL(), allKinds, store.Filter{})
	e.start(webhook.Config{})
	rotate := func(secret string, previousUntil time.Time) {
		t.Helper()
		_, err := e.st.UpdateWebhook(context.Background(), e.ws.ID, w.ID, func(w *store.Webhook) error {
			if secret != "" {
				w.PreviousSecret, w.Secret = w.Secret, e.keys.Seal(secret)
			}
			w.PreviousUntil = &previousUntil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	secretNew := webhook.NewSecret()
	signedBy := func(d delivery) []string {
		var by []string
		for name, s := range map[string]string{"old": old, "new": secretNew} {
			if verifyingSecret(t, []string{s}, d.Body, d.Header) != "" {
				by = append(by, name)
			}
		}
		slices.Sort(by)
		return by
	}

	e.create(nil, 1)
	eventually(t, "the first delivery", func() bool { return len(r.deliveries()) == 1 })
	rotate(secretNew, time.Now().Add(24*time.Hour))
	e.create(nil, 2)
	eventually(t, "the second delivery", func() bool { return len(r.deliveries()) == 2 })
	rotate("", time.Now().Add(-time.Second))
	e.create(nil, 3)
	eventually(t, "the third delivery", func() bool { return len(r.deliveries()) == 3 })

	ds := r.deliveries()
	for i, want := range [][]string{{"old"}, {"new", "old"}, {"new"}} {
		if got := signedBy(ds[i]); !slices.Equal(got, want) {
			t.Errorf("delivery %d verifies with %v, want %v", i+1, got, want)
		}
	}
}

// A receiver slower than the timeout fails the attempt, which is retried
// with the same event until one is answered in time.
func TestDispatcherRetriesAttemptsThatTimeOut(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.answer = func(_ delivery, n int) int {
		if n < 2 {
			return hang
		}
		return http.StatusNoContent
	}
	w, secret := e.addWebhook(r.URL(), allKinds, store.Filter{})
	r.setSecrets(secret)
	// Long enough that an answer at once is never late on a busy machine.
	e.start(webhook.Config{Timeout: time.Second})
	fs := e.create(nil, 7)
	e.idle()

	as := e.attempts(w)
	if got, want := outcomes(as), []store.Outcome{store.Retrying, store.Retrying, store.Delivered}; !slices.Equal(got, want) {
		t.Fatalf("attempts: got %v, want %v", got, want)
	}
	for _, a := range as[:2] {
		if a.Status != 0 || !strings.Contains(a.Error, "no answer within 1s") || a.Latency < time.Second {
			t.Errorf("an attempt that timed out: got %+v, want no status, an error saying so, the timeout's latency", a)
		}
	}
	if got, want := sent(t, r.deliveries()), created(fs[0], fs[0], fs[0]); !slices.Equal(got, want) {
		t.Errorf("requests: got %v, want %v", got, want)
	}
}

// A receiver answering 410 Gone disables its webhook: it gets nothing
// more, while another webhook goes on.
func TestDispatcherDisablesAWebhookWhoseReceiverIsGone(t *testing.T) {
	e := newEnv(t)
	gone, other := newReceiver(t), newReceiver(t)
	gone.answer = func(delivery, int) int { return http.StatusGone }
	w, _ := e.addWebhook(gone.URL(), allKinds, store.Filter{})
	e.addWebhook(other.URL(), allKinds, store.Filter{})
	e.start(webhook.Config{})

	first := e.create(nil, 1, 2)
	eventually(t, "the other webhook gets both", func() bool { return len(other.deliveries()) == 2 })
	e.idle()
	later := e.create(nil, 3)
	eventually(t, "the other webhook gets the later event", func() bool { return len(other.deliveries()) == 3 })
	e.idle()

	if got, want := sent(t, gone.deliveries()), created(first[0]); !slices.Equal(got, want) {
		t.Errorf("the gone receiver got %v, want only %v", got, want)
	}
	if got := e.webhook(w); got.State != store.WebhookDisabled {
		t.Errorf("state after 410: got %q, want %q", got.State, store.WebhookDisabled)
	}
	if got, want := outcomes(e.attempts(w)), []store.Outcome{store.Gone}; !slices.Equal(got, want) {
		t.Errorf("attempts: got %v, want %v", got, want)
	}
	if got, want := sent(t, other.deliveries()), created(append(first, later...)...); !slices.Equal(got, want) {
		t.Errorf("the other receiver got %v, want %v", got, want)
	}
}

// After Attempts failures an event is given up, and the next one is
// delivered.
func TestDispatcherGivesUpAfterTheLastAttempt(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.answer = func(_ delivery, n int) int {
		if n < 3 { // the first event's three attempts
			return http.StatusBadGateway
		}
		return http.StatusOK
	}
	w, _ := e.addWebhook(r.URL(), allKinds, store.Filter{})
	var backoffs []int
	var mu sync.Mutex
	e.start(webhook.Config{Attempts: 3, Backoff: func(n int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		backoffs = append(backoffs, n)
		return time.Millisecond
	}})
	fs := e.create(nil, 1, 2)
	e.idle()

	if got, want := outcomes(e.attempts(w)), []store.Outcome{store.Retrying, store.Retrying, store.GaveUp, store.Delivered}; !slices.Equal(got, want) {
		t.Errorf("attempts: got %v, want %v", got, want)
	}
	if got, want := sent(t, r.deliveries()), created(fs[0], fs[0], fs[0], fs[1]); !slices.Equal(got, want) {
		t.Errorf("requests: got %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 2}; !slices.Equal(backoffs, want) {
		t.Errorf("backoffs asked for: got %v, want %v (none after the last attempt)", backoffs, want)
	}
}

// After a failed attempt the webhook waits for the backoff's delay
// before the next: it is not claimed before then, however often the
// dispatcher looks.
func TestDispatcherWaitsForTheBackoff(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.answer = func(_ delivery, n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	w, _ := e.addWebhook(r.URL(), allKinds, store.Filter{})
	var clock clock
	e.start(webhook.Config{Now: clock.Now, Backoff: func(n int) time.Duration { return time.Duration(n) * time.Minute }})
	fs := e.create(nil, 1)
	eventually(t, "a first attempt", func() bool { return len(e.attempts(w)) == 1 })

	a := e.attempts(w)[0]
	if a.Outcome != store.Retrying || a.NextAttemptAt == nil || !a.NextAttemptAt.Equal(a.At.Add(time.Minute)) {
		t.Fatalf("first attempt: got %+v, want retrying a minute after it", a)
	}
	if got := e.webhook(w); got.Attempts != 1 || !got.NextAttemptAt.Equal(*a.NextAttemptAt) {
		t.Errorf("webhook after a failure: got attempts %d, next at %s, want 1 and %s", got.Attempts, got.NextAttemptAt, a.NextAttemptAt)
	}
	clock.rounds(t, 20)
	if got := len(r.deliveries()); got != 1 {
		t.Fatalf("requests before the backoff's delay: got %d, want 1", got)
	}
	clock.advance(time.Minute)
	e.idle()
	if got, want := sent(t, r.deliveries()), created(fs[0], fs[0]); !slices.Equal(got, want) {
		t.Errorf("requests: got %v, want %v", got, want)
	}
	if got, want := outcomes(e.attempts(w)), []store.Outcome{store.Retrying, store.Delivered}; !slices.Equal(got, want) {
		t.Errorf("attempts: got %v, want %v", got, want)
	}
}

// An event being retried that the webhook no longer wants (its filter
// changed) is walked past, and the next one's attempts count from 1.
func TestDispatcherSkipsARetriedEventNoLongerWanted(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.answer = func(_ delivery, n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	w, _ := e.addWebhook(r.URL(), allKinds, store.Filter{})
	var clock clock
	e.start(webhook.Config{Now: clock.Now, Backoff: func(int) time.Duration { return time.Minute }})
	fs := e.create(nil, 1, 9)
	eventually(t, "a first attempt", func() bool { return len(e.attempts(w)) == 1 })
	five := 5
	if _, err := e.st.UpdateWebhook(context.Background(), e.ws.ID, w.ID, func(w *store.Webhook) error {
		w.Filter.ValueMin = &five
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute)
	e.idle()

	as := e.attempts(w)
	if got, want := outcomes(as), []store.Outcome{store.Retrying, store.Delivered}; !slices.Equal(got, want) {
		t.Fatalf("attempts: got %v, want %v", got, want)
	}
	if a := as[1]; a.EventID != r.deliveries()[1].ID || a.N != 1 {
		t.Errorf("the attempt at the next event: got event %s, N %d, want the second event's, N 1", a.EventID, a.N)
	}
	if got, want := sent(t, r.deliveries()), created(fs...); !slices.Equal(got, want) {
		t.Errorf("requests: got %v, want %v", got, want)
	}
}

// A webhook gets only the kinds of events it asks for, and only those
// whose feedback its filter matches; the others are walked past, never
// sent.
func TestDispatcherSendsOnlyWantedEvents(t *testing.T) {
	e := newEnv(t)
	prod, high := newReceiver(t), newReceiver(t)
	e.addWebhook(prod.URL(), []store.EventKind{store.Created}, store.Filter{Metadata: map[string]any{"env": "prod"}})
	five := 5
	e.addWebhook(high.URL(), []store.EventKind{store.Updated, store.Deleted}, store.Filter{ValueMin: &five})
	e.start(webhook.Config{})

	ctx := context.Background()
	p := e.create(map[string]any{"env": "prod"}, 1, 9)
	d := e.create(map[string]any{"env": "dev"}, 8)
	if _, err := e.st.UpdateFeedback(ctx, e.ws.ID, p[0].ID, store.Update{Value: 6, UpdatedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.UpdateFeedback(ctx, e.ws.ID, d[0].ID, store.Update{Value: 2, UpdatedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*store.Feedback{p[1], d[0]} {
		if err := e.st.DeleteFeedback(ctx, e.ws.ID, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.idle()

	if got, want := sent(t, prod.deliveries()), created(p...); !slices.Equal(got, want) {
		t.Errorf("created, env=prod:\n got %v\nwant %v", got, want)
	}
	want := []string{"feedback.updated " + p[0].ID, "feedback.deleted " + p[1].ID}
	if got := sent(t, high.deliveries()); !slices.Equal(got, want) {
		t.Errorf("updated or deleted, value >= 5:\n got %v\nwant %v", got, want)
	}
}

// clock is time.Now moved ahead by what the test advances it, counting
// its calls: the dispatcher reads it at each round of its loop. The
// advances stay within the few minutes a receiver tolerates in a
// webhook-timestamp.
type clock struct {
	n      atomic.Int64
	offset atomic.Int64
}

func (c *clock) Now() time.Time {
	c.n.Add(1)
	return time.Now().Add(time.Duration(c.offset.Load()))
}

func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// rounds waits until the dispatcher's loop has gone round n more times.
func (c *clock) rounds(t *testing.T, n int64) {
	t.Helper()
	calls := c.n.Load()
	eventually(t, fmt.Sprintf("%d rounds of the dispatcher's loop", n), func() bool { return c.n.Load() > calls+n })
}

// With more webhooks due than Concurrency, at most Concurrency
// deliveries are in flight, however long the receiver takes; the others
// are delivered as slots free up.
func TestDispatcherBoundsDeliveriesInFlight(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.block = make(chan struct{})
	for range 7 {
		e.addWebhook(r.URL(), allKinds, store.Filter{})
	}
	var clock clock
	e.start(webhook.Config{Concurrency: 3, Now: clock.Now})
	e.create(nil, 1)

	eventually(t, "3 deliveries in flight", func() bool { return r.inFlight.Load() == 3 })
	// Many rounds of the loop pass while the slots are full.
	clock.rounds(t, 20)
	if got := r.inFlight.Load(); got != 3 {
		t.Errorf("in flight while the receiver holds them: got %d, want 3", got)
	}
	close(r.block)
	eventually(t, "7 deliveries", func() bool { return len(r.deliveries()) == 7 })
	e.idle()
	if got := r.maxInFlight.Load(); got != 3 {
		t.Errorf("most deliveries in flight: got %d, want 3", got)
	}
}

// A receiver whose name resolves to an internal address is never
// dialed: each attempt fails saying which address was refused.
func TestDispatcherRefusesInternalAddresses(t *testing.T) {
	for _, internal := range []string{"10.0.0.1", "169.254.169.254", "::1"} {
		t.Run(internal, func(t *testing.T) {
			e := newEnv(t)
			w, _ := e.addWebhook("https://internal.test/hook", allKinds, store.Filter{})
			var dials atomic.Int64
			resolver := fakeResolver{t: t, hosts: map[string][]netip.Addr{"internal.test": addrs(internal)}}
			e.launch(webhook.Config{Resolver: resolver, Dial: loopbackDial(t, &dials), Attempts: 2}) // without AllowLoopback
			e.create(nil, 1)
			e.idle()

			as := e.attempts(w)
			if got, want := outcomes(as), []store.Outcome{store.Retrying, store.GaveUp}; !slices.Equal(got, want) {
				t.Fatalf("attempts: got %v, want %v", got, want)
			}
			for _, a := range as {
				if want := "it resolves to " + internal; a.Status != 0 || !strings.Contains(a.Error, want) {
					t.Errorf("attempt %d: got status %d, error %q, want no status and an error saying %q", a.N, a.Status, a.Error, want)
				}
			}
			if got := dials.Load(); got != 0 {
				t.Errorf("dials: got %d, want none", got)
			}
		})
	}
}

// A secret sealed with another key than the server's fails every attempt
// (its events wait, or are given up and recorded, never skipped
// silently), and is logged once, without the secret.
func TestDispatcherFailsDeliveriesWhoseSecretDoesNotOpen(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	w, _ := e.addWebhook(r.URL(), allKinds, store.Filter{})
	lost := webhook.NewSecret()
	if _, err := e.st.UpdateWebhook(context.Background(), e.ws.ID, w.ID, func(w *store.Webhook) error {
		w.Secret = newKeyring(t).Seal(lost)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	e.start(webhook.Config{Attempts: 4, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	e.create(nil, 1, 2)
	e.idle()

	as := e.attempts(w)
	want := []store.Outcome{store.Retrying, store.Retrying, store.Retrying, store.GaveUp, store.Retrying, store.Retrying, store.Retrying, store.GaveUp}
	if got := outcomes(as); !slices.Equal(got, want) {
		t.Fatalf("attempts: got %v, want %v", got, want)
	}
	if a := as[0]; !strings.Contains(a.Error, "does not open with this server's webhook key") {
		t.Errorf("error of an attempt: got %q, want it to say the secret does not open", a.Error)
	}
	if got := len(r.deliveries()); got != 0 {
		t.Errorf("requests: got %d, want none", got)
	}
	text := log.String()
	if got := strings.Count(text, "msg=\"webhooks: a webhook's signing secret does not open"); got != 1 {
		t.Errorf("log lines about the secret: got %d, want 1 in\n%s", got, text)
	}
	if strings.Contains(text, strings.TrimPrefix(lost, webhook.SecretPrefix)) {
		t.Errorf("the log holds the secret:\n%s", text)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
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

// Close waits for the delivery in flight to end, and the dispatcher
// claims nothing after it.
func TestDispatcherCloseWaitsForDeliveriesInFlight(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	r.block = make(chan struct{})
	w, _ := e.addWebhook(r.URL(), allKinds, store.Filter{})
	d := e.start(webhook.Config{})
	e.create(nil, 1)
	eventually(t, "a delivery in flight", func() bool { return r.inFlight.Load() == 1 })

	closed := make(chan struct{})
	go func() { d.Close(); close(closed) }()
	// Time for a Close that does not wait to return; one that waits
	// passes however long this is.
	select {
	case <-closed:
		t.Fatalf("Close returned while a delivery was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(r.block)
	<-closed
	if got, want := outcomes(e.attempts(w)), []store.Outcome{store.Delivered}; !slices.Equal(got, want) {
		t.Errorf("attempts once Close returned: got %v, want %v", got, want)
	}
}

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
