package webhook_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/webhook"
)

// newSender returns a Sender allowed to reach loopback only, through a
// dialer that fails the test for any other address.
func newSender(t *testing.T, c webhook.SenderConfig) *webhook.Sender {
	t.Helper()
	c.AllowLoopback = true
	if c.Dial == nil {
		c.Dial = loopbackDial(t, nil)
	}
	s := webhook.NewSender(c)
	t.Cleanup(s.Close)
	return s
}

func message(url string, secrets ...string) webhook.Message {
	return webhook.Message{
		URL: url, ID: "019af0a0-0000-7000-8000-000000000001", Timestamp: time.Now(),
		Body: []byte(`{"type":"feedback.created","timestamp":"2026-12-06T10:00:00Z","data":{}}`), Secrets: secrets,
	}
}

// A delivery is a POST of the body, with the event's id as webhook-id,
// signed so that the library verifies it with the webhook's secret, and
// naming feedbackd and its version in its User-Agent.
func TestSendSignsEachDeliveryAsStandardWebhooksSays(t *testing.T) {
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	s := newSender(t, webhook.SenderConfig{Version: "1.2.3"})
	m := message(r.URL(), secret)

	res := s.Send(context.Background(), m)
	if res.Outcome != store.Delivered || res.Status != 200 || res.Error != "" {
		t.Fatalf("Send: got %+v, want delivered with 200 and no error", res)
	}
	got := r.deliveries()
	if len(got) != 1 {
		t.Fatalf("deliveries: got %d, want 1", len(got))
	}
	if got[0].ID != m.ID {
		t.Errorf("webhook-id: got %q, want the event's id %q", got[0].ID, m.ID)
	}
	if !bytes.Equal(got[0].Body, m.Body) {
		t.Errorf("body: got %s, want %s", got[0].Body, m.Body)
	}
	if got, want := got[0].Header.Get("User-Agent"), "feedbackd-webhooks/1.2.3"; got != want {
		t.Errorf("User-Agent: got %q, want %q", got, want)
	}
	wh, _ := standardwebhooks.NewWebhook(webhook.NewSecret())
	if err := wh.Verify(got[0].Body, got[0].Header); err == nil {
		t.Errorf("a delivery verifies with another secret than the webhook's")
	}
}

// Signed with two secrets (a rotation's grace period), a delivery carries
// two signatures, and verifies with either secret.
func TestSendSignsWithEverySecret(t *testing.T) {
	current, previous := webhook.NewSecret(), webhook.NewSecret()
	r := newReceiver(t)
	s := newSender(t, webhook.SenderConfig{})

	if res := s.Send(context.Background(), message(r.URL(), current, previous)); res.Outcome != store.Delivered {
		t.Fatalf("Send: got %+v, want delivered", res)
	}
	d := r.deliveries()[0]
	if got := strings.Fields(d.Header.Get("webhook-signature")); len(got) != 2 {
		t.Errorf("webhook-signature: got %q, want two signatures", got)
	}
	for _, secret := range []string{current, previous} {
		if verifyingSecret(t, []string{secret}, d.Body, d.Header) == "" {
			t.Errorf("a delivery signed with both secrets does not verify with one of them")
		}
	}
	if got, want := d.Header.Get("User-Agent"), "feedbackd-webhooks/dev"; got != want {
		t.Errorf("User-Agent without a version: got %q, want %q", got, want)
	}
}

// The receiver's status decides the outcome: any 2xx is delivered, 410
// asks for no more, anything else is a failure whose error says the
// status and the start of what the receiver said.
func TestSendOutcomeFollowsTheStatus(t *testing.T) {
	secret := webhook.NewSecret()
	for _, c := range []struct {
		status  int
		body    string
		outcome store.Outcome
		errHas  string
	}{
		{200, "", store.Delivered, ""},
		{204, "", store.Delivered, ""},
		{299, "", store.Delivered, ""},
		{410, "gone for good", store.Gone, "410"},
		{500, "database down: " + strings.Repeat("x", 1000), store.Retrying, "500 Internal Server Error: database down: xxx"},
		{404, "", store.Retrying, "404"},
		{429, "", store.Retrying, "429"},
		{304, "", store.Retrying, "304"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		}))
		res := newSender(t, webhook.SenderConfig{}).Send(context.Background(), message(srv.URL, secret))
		srv.Close()
		if res.Outcome != c.outcome || res.Status != c.status || !strings.Contains(res.Error, c.errHas) {
			t.Errorf("status %d: got %+v, want outcome %s, status %d and an error with %q", c.status, res, c.outcome, c.status, c.errHas)
		}
		if (res.Error == "") != (c.outcome == store.Delivered) {
			t.Errorf("status %d: error %q, want one only when not delivered", c.status, res.Error)
		}
		if len(res.Error) > 300 {
			t.Errorf("status %d: error of %d bytes, want the body cut to 256", c.status, len(res.Error))
		}
		if strings.Contains(res.Error, strings.TrimPrefix(secret, webhook.SecretPrefix)) {
			t.Errorf("status %d: the error %q holds the secret", c.status, res.Error)
		}
	}
}

// A receiver slower than the timeout fails the attempt, with an error
// that says so; the attempt takes about the timeout, not the receiver's
// time.
func TestSendGivesUpAnAttemptAtTheTimeout(t *testing.T) {
	r := newReceiver(t)
	r.block = make(chan struct{})
	t.Cleanup(func() { close(r.block) })
	s := newSender(t, webhook.SenderConfig{Timeout: 100 * time.Millisecond})

	res := s.Send(context.Background(), message(r.URL(), webhook.NewSecret()))
	if res.Outcome != store.Retrying || res.Status != 0 || !strings.Contains(res.Error, "no answer within 100ms") {
		t.Errorf("Send to a receiver that does not answer: got %+v, want a failure without status saying no answer within 100ms", res)
	}
	if res.Latency < 100*time.Millisecond || res.Latency > 5*time.Second {
		t.Errorf("latency: got %s, want about the timeout", res.Latency)
	}
}

// A redirect is not followed, not even to another loopback receiver: it
// is a failure that says where it pointed.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	other := newReceiver(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.URL(), http.StatusFound)
	}))
	defer srv.Close()

	res := newSender(t, webhook.SenderConfig{}).Send(context.Background(), message(srv.URL, webhook.NewSecret()))
	if res.Outcome != store.Retrying || res.Status != 302 || !strings.Contains(res.Error, other.URL()) {
		t.Errorf("Send to a redirect: got %+v, want a failure with status 302 naming %s", res, other.URL())
	}
	if got := len(other.deliveries()); got != 0 {
		t.Errorf("the redirect's target got %d deliveries, want 0", got)
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// A receiver's answer is read up to 64 KiB, however long it is: a 10 MB
// body costs the server no more.
func TestSendReadsAnAnswerUpToTheCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 160 { // 10 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var read atomic.Int64
	dial := loopbackDial(t, nil)
	s := newSender(t, webhook.SenderConfig{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &read}, nil
	}})

	res := s.Send(context.Background(), message(srv.URL, webhook.NewSecret()))
	if res.Outcome != store.Delivered {
		t.Errorf("Send: got %+v, want delivered (a 200 with a long body)", res)
	}
	// The cap, plus headers and what one read of the transport's buffer
	// brings beyond it.
	if got, limit := read.Load(), int64(64<<10+16<<10); got > limit {
		t.Errorf("read %d bytes of a 10 MiB answer, want at most %d", got, limit)
	}
}

// Deliveries never reach an address the URL check refuses: the
// receiver's name is resolved (here by a resolver the test injects) and
// when any of its addresses is private, link-local (cloud metadata) or
// loopback (without AllowLoopback), nothing is dialed, and the error
// names the address. A name whose addresses pass is dialed by address.
func TestSendRefusesInternalAddresses(t *testing.T) {
	var dials atomic.Int64
	hosts := map[string][]netip.Addr{}
	resolver := fakeResolver{t: t, hosts: hosts}
	for _, c := range []struct {
		name          string
		addrs         []netip.Addr
		allowLoopback bool
		refused       string
	}{
		{"private", addrs("10.0.0.1"), true, "10.0.0.1, a private address"},
		{"cloud metadata", addrs("169.254.169.254"), true, "169.254.169.254, a link-local address"},
		{"loopback without the flag", addrs("::1"), false, "::1, a loopback address"},
		{"loopback among others", addrs("127.0.0.1", "10.0.0.1"), true, "10.0.0.1, a private address"},
		{"IPv4-mapped private", addrs("::ffff:192.168.1.1"), true, "::ffff:192.168.1.1, a private address"},
		{"shared address space", addrs("100.64.0.1"), true, "100.64.0.1, a reserved address"},
	} {
		hosts["internal.test"] = c.addrs
		dials.Store(0)
		s := webhook.NewSender(webhook.SenderConfig{AllowLoopback: c.allowLoopback, Resolver: resolver, Dial: loopbackDial(t, &dials)})
		res := s.Send(context.Background(), message("https://internal.test/hook", webhook.NewSecret()))
		s.Close()
		if res.Outcome != store.Retrying || !strings.Contains(res.Error, "refused to connect to internal.test: it resolves to "+c.refused) {
			t.Errorf("%s: got %+v, want a failure saying internal.test resolves to %s", c.name, res, c.refused)
		}
		if got := dials.Load(); got != 0 {
			t.Errorf("%s: %d dials, want none", c.name, got)
		}
	}

	// An address in the URL itself is checked the same way.
	dials.Store(0)
	s := webhook.NewSender(webhook.SenderConfig{AllowLoopback: true, Resolver: resolver, Dial: loopbackDial(t, &dials)})
	defer s.Close()
	res := s.Send(context.Background(), message("http://169.254.169.254/latest/meta-data/", webhook.NewSecret()))
	if res.Outcome != store.Retrying || !strings.Contains(res.Error, "refused to connect to 169.254.169.254: it is a link-local address") {
		t.Errorf("an address in the URL: got %+v, want it refused", res)
	}
	if got := dials.Load(); got != 0 {
		t.Errorf("an address in the URL: %d dials, want none", got)
	}

	// A name that resolves to loopback, with the flag, is dialed by the
	// address checked.
	r := newReceiver(t)
	u, _ := url.Parse(r.URL())
	hosts["receiver.test"] = addrs(u.Hostname())
	var dialed atomic.Value
	dial := loopbackDial(t, &dials)
	s = webhook.NewSender(webhook.SenderConfig{AllowLoopback: true, Resolver: resolver, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed.Store(addr)
		return dial(ctx, network, addr)
	}})
	defer s.Close()
	res = s.Send(context.Background(), message("http://receiver.test:"+u.Port()+"/hook", webhook.NewSecret()))
	if res.Outcome != store.Delivered {
		t.Errorf("a name resolving to loopback, allowed: got %+v, want delivered", res)
	}
	if got, want := dialed.Load(), u.Host; got != want {
		t.Errorf("dialed %v, want the checked address %s", got, want)
	}
}
