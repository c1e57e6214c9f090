package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/feedbackd/feedbackd/server/metrics"
	"github.com/feedbackd/feedbackd/server/store"
)

// Defaults of a Dispatcher's Config.
const (
	// DefaultConcurrency bounds the deliveries in flight: each holds a
	// connection and up to Timeout of a slow receiver's time.
	DefaultConcurrency = 16
	// DefaultRetention is how long delivered and given-up events, and
	// attempts, are kept for GET /v1/webhooks/{id}/deliveries and
	// redelivery.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultPollInterval is how often the dispatcher looks for webhooks
	// with events to deliver: the delay a new event waits at most, when
	// a slot is free.
	DefaultPollInterval = 250 * time.Millisecond
)

// batch is how many events one walk of a webhook reads: after them the
// webhook is released, so that webhooks with steady streams take turns
// with the others.
const batch = 100

// leaseMargin is how much a lease outlasts one attempt: the time the
// store's calls around a delivery take.
const leaseMargin = 5 * time.Second

// trimEvery is how often delivered events and old attempts are trimmed.
const trimEvery = time.Hour

// Config configures a Dispatcher; the zero value of each optional field
// means its default.
type Config struct {
	// Store holds the webhooks, their events and attempts. Required.
	Store store.Store
	// Keyring opens the webhooks' sealed secrets. Required.
	Keyring *Keyring
	// Body is the payload of an event. Required: the server supplies it,
	// so the payload is the wire's feedback.
	Body func(*store.Event) ([]byte, error)
	// AllowLoopback lets deliveries reach loopback addresses.
	AllowLoopback bool
	// Timeout bounds one attempt (DefaultTimeout).
	Timeout time.Duration
	// Concurrency bounds the deliveries in flight, one per webhook
	// (DefaultConcurrency).
	Concurrency int
	// Retention is how long delivered events and attempts are kept
	// (DefaultRetention).
	Retention time.Duration
	// PollInterval is how often webhooks are claimed
	// (DefaultPollInterval).
	PollInterval time.Duration
	// Backoff is the delay after the n-th failed attempt at an event
	// (Backoff), and Attempts how many an event gets
	// (DefaultAttempts): tests shorten both.
	Backoff  func(n int) time.Duration
	Attempts int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger gets the failures worth an operator's look
	// (slog.Default()).
	Logger *slog.Logger
	// Metrics, when set, counts deliveries and reports the backlog.
	Metrics *metrics.Metrics
	// Resolver and Dial are the Sender's (SenderConfig).
	Resolver Resolver
	Dial     DialFunc
	// Version names the server in the User-Agent ("dev").
	Version string
}

// Dispatcher delivers the webhooks' events: it claims webhooks that have
// events due (each held by a lease, so that replicas sharing a database
// walk each webhook one at a time), and walks each one's events in order
// on a goroutine of its own, at most Concurrency at once. It never
// touches the write path: events are read from the outbox the writes
// filled.
type Dispatcher struct {
	c      Config
	sender *Sender
	lease  time.Duration

	// stop ends the claiming loop; walks see it and stop after their
	// current delivery. kill cancels what is left after Close's bound.
	stop     chan struct{}
	stopOnce sync.Once
	ctx      context.Context
	kill     context.CancelFunc
	loopDone chan struct{}
	walks    sync.WaitGroup
	// slots holds a value per walk in flight: at most Concurrency.
	slots chan struct{}
	// wake tells the loop a walk that made progress ended: its webhook
	// may have more events, and its slot is free.
	wake chan struct{}

	mu sync.Mutex
	// sealedElsewhere holds the webhooks whose secret would not open,
	// logged once each.
	sealedElsewhere map[string]bool
}

// Start starts a Dispatcher. It claims webhooks until Close, or until ctx
// is done (then, as after Close, walks in flight end after their current
// delivery; Close still waits for them).
func Start(ctx context.Context, c Config) (*Dispatcher, error) {
	if c.Store == nil || c.Keyring == nil || c.Body == nil {
		return nil, errors.New("webhook: a dispatcher needs a Store, a Keyring and a Body")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Backoff == nil {
		c.Backoff = Backoff
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	d := &Dispatcher{
		c: c,
		sender: NewSender(SenderConfig{
			Timeout: c.Timeout, AllowLoopback: c.AllowLoopback, Resolver: c.Resolver, Dial: c.Dial, Version: c.Version,
		}),
		lease:           c.Timeout + leaseMargin,
		stop:            make(chan struct{}),
		loopDone:        make(chan struct{}),
		slots:           make(chan struct{}, c.Concurrency),
		wake:            make(chan struct{}, 1),
		sealedElsewhere: map[string]bool{},
	}
	d.ctx, d.kill = context.WithCancel(context.WithoutCancel(ctx))
	c.Metrics.WebhookBacklog(c.Store.WebhookBacklog)
	go func() {
		select {
		case <-ctx.Done():
			d.stopOnce.Do(func() { close(d.stop) })
		case <-d.loopDone:
		}
	}()
	go d.loop()
	return d, nil
}

// Close stops claiming webhooks and waits for the deliveries in flight,
// at most Timeout; then it cancels those left (their leases expire, and
// their events are delivered again later: at least once).
func (d *Dispatcher) Close() {
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.loopDone
	finished := make(chan struct{})
	go func() { d.walks.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(d.c.Timeout):
		d.kill()
		<-finished
	}
	d.kill()
	d.sender.Close()
}

// stopping says whether Close was called or Start's ctx is done.
func (d *Dispatcher) stopping() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// loop claims webhooks while there are free slots, at each tick and
// whenever a walk that made progress ends, and trims old events every
// trimEvery. A walk that found nothing to do does not wake it: on
// PostgreSQL a webhook can have events no walk may read yet (a
// transaction still open before them), and claiming it again at once
// would spin.
func (d *Dispatcher) loop() {
	defer close(d.loopDone)
	tick := time.NewTicker(d.c.PollInterval)
	defer tick.Stop()
	var lastTrim, lastClaimError time.Time
	for {
		if now := d.c.Now(); now.Sub(lastTrim) >= trimEvery {
			lastTrim = now
			if err := d.c.Store.TrimWebhooks(d.ctx, now.Add(-d.c.Retention)); err != nil {
				d.c.Logger.Error("webhooks: trimming delivered events", "err", err)
			}
		}
		// Only this loop fills slots, so free ones stay free until it
		// does.
		if free := cap(d.slots) - len(d.slots); free > 0 {
			now := d.c.Now()
			ws, err := d.c.Store.ClaimWebhooks(d.ctx, now, now.Add(d.lease), free)
			// A database that is down fails every round: once a minute
			// in the log is enough.
			if err != nil && now.Sub(lastClaimError) >= time.Minute {
				lastClaimError = now
				d.c.Logger.Error("webhooks: claiming webhooks", "err", err)
			}
			for _, w := range ws {
				d.slots <- struct{}{}
				d.walks.Add(1)
				go func() {
					defer d.walks.Done()
					progress := d.walk(w)
					<-d.slots
					if progress {
						select {
						case d.wake <- struct{}{}:
						default:
						}
					}
				}()
			}
		}
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-tick.C:
		}
	}
}

// walk delivers one batch of w's events, in order, while it holds w's
// lease: it skips those w does not want, delivers the others one at a
// time, and records each attempt with the skipped events before it. It
// stops at a failure to retry later, at Gone, when the lease is lost, or
// at the batch's end, releasing w. It reports whether it walked past any
// event.
func (d *Dispatcher) walk(w *store.Webhook) (progress bool) {
	log := d.c.Logger.With("webhook", w.ID, "workspace", w.WorkspaceID)
	events, err := d.c.Store.NextEvents(d.ctx, w, batch)
	if err != nil {
		// The lease is kept: it expires, and the webhook is claimed
		// again then, not at once.
		log.Error("webhooks: reading events", "err", err)
		return false
	}
	// failed counts the failed attempts at the event at hand: w's
	// Attempts are those at its first event, and no later one has any.
	failed := w.Attempts
	var skipped []*store.Event
	for _, e := range events {
		if !w.Wants(e) {
			skipped, failed = append(skipped, e), 0
			continue
		}
		if d.stopping() {
			if failed > 0 {
				// Releasing would forget the failed attempts at e (a
				// release records no attempt): the lease expires
				// instead.
				return progress
			}
			break
		}
		a := d.deliver(log, w, e, failed+1)
		var keepUntil time.Time
		if a.Outcome == store.Delivered || a.Outcome == store.GaveUp {
			keepUntil = d.c.Now().Add(d.lease)
		}
		held, err := d.c.Store.FinishEvents(d.ctx, w, skipped, a, keepUntil)
		if err != nil {
			log.Error("webhooks: recording an attempt", "event", e.ID, "err", err)
			return progress
		}
		if !held {
			log.Warn("webhooks: the lease on a webhook was lost during a delivery; another walk goes on from its position", "event", e.ID)
			return progress
		}
		if keepUntil.IsZero() {
			return progress
		}
		progress, skipped, failed = true, nil, 0
	}
	held, err := d.c.Store.FinishEvents(d.ctx, w, skipped, nil, time.Time{})
	if err != nil {
		log.Error("webhooks: releasing a webhook", "err", err)
		return progress
	}
	return progress || (held && len(skipped) > 0)
}

// deliver makes the n-th attempt at delivering e to w and says how it
// went: Retrying, or GaveUp when it was the last attempt allowed, for a
// failure.
func (d *Dispatcher) deliver(log *slog.Logger, w *store.Webhook, e *store.Event, n int) *store.Attempt {
	now := d.c.Now()
	a := &store.Attempt{
		WebhookID: w.ID, EventID: e.ID, Kind: e.Kind, EventSeq: e.Seq, N: n, At: now,
	}
	var res Result
	if secrets, err := d.secrets(log, w, now); err != nil {
		res = Result{Outcome: store.Retrying, Error: err.Error()}
	} else if body, err := d.c.Body(e); err != nil {
		log.Error("webhooks: building an event's payload", "event", e.ID, "err", err)
		res = Result{Outcome: store.Retrying, Error: "building the payload: " + err.Error()}
	} else {
		res = d.sender.Send(d.ctx, Message{URL: w.URL, ID: e.ID, Timestamp: now, Body: body, Secrets: secrets})
	}
	a.Outcome, a.Status, a.Latency, a.Error = res.Outcome, res.Status, res.Latency, res.Error
	if a.Outcome == store.Retrying {
		if a.N >= d.c.Attempts {
			a.Outcome = store.GaveUp
			log.Warn("webhooks: gave up on an event", "event", e.ID, "attempts", a.N, "err", a.Error)
		} else {
			next := now.Add(d.c.Backoff(a.N))
			a.NextAttemptAt = &next
		}
	}
	if a.Outcome == store.Gone {
		log.Warn("webhooks: the receiver answered 410 Gone; the webhook is disabled", "url", w.URL)
	}
	d.c.Metrics.ObserveDelivery(a.Outcome, a.Latency)
	return a
}

// secrets opens the secrets that sign w's deliveries at now: its secret,
// and its previous one during a rotation's grace period. A secret sealed
// with another key is logged once per webhook (the operator changed or
// lost the key) and fails the attempt like an unreachable receiver, so
// that its events wait rather than being skipped.
func (d *Dispatcher) secrets(log *slog.Logger, w *store.Webhook, now time.Time) ([]string, error) {
	sealed := [][]byte{w.Secret}
	if w.PreviousSecret != nil && w.PreviousUntil != nil && w.PreviousUntil.After(now) {
		sealed = append(sealed, w.PreviousSecret)
	}
	secrets := make([]string, 0, len(sealed))
	for _, s := range sealed {
		secret, err := d.c.Keyring.Open(s)
		if err != nil {
			d.mu.Lock()
			first := !d.sealedElsewhere[w.ID]
			d.sealedElsewhere[w.ID] = true
			d.mu.Unlock()
			if first {
				log.Error("webhooks: a webhook's signing secret does not open with this server's webhook key (was --webhook-key changed?); its deliveries fail until it does, or the secret is rotated", "err", err)
			}
			return nil, fmt.Errorf("the signing secret does not open with this server's webhook key")
		}
		secrets = append(secrets, secret)
	}
	d.mu.Lock()
	delete(d.sealedElsewhere, w.ID)
	d.mu.Unlock()
	return secrets, nil
}
