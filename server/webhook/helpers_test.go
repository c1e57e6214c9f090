package webhook_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/feedbackd/feedbackd/server/webhook"
)

// delivery is one request a receiver got: every attempt, answered or
// not.
type delivery struct {
	ID     string
	Header http.Header
	Body   []byte
}

// receiver is a real HTTP receiver on loopback that verifies every
// delivery's signature with the Standard Webhooks library, against any of
// the secrets it is told are valid, and answers with answer's status
// (200 when answer is nil).
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets []string
	got     []delivery
	// answer says the status of the n-th (from 0) delivery, or hang.
	answer func(d delivery, n int) int
	// block, when set, holds each request until it is closed or the
	// request is abandoned.
	block chan struct{}
	// inFlight and maxInFlight count requests being answered.
	inFlight, maxInFlight atomic.Int64
}

func newReceiver(t *testing.T, secrets ...string) *receiver {
	t.Helper()
	r := &receiver{t: t, secrets: secrets}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/hook" }

// setSecrets replaces the secrets a delivery may verify with.
func (r *receiver) setSecrets(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = secrets
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		m := r.maxInFlight.Load()
		if n <= m || r.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("receiver: reading the body: %v", err)
		return
	}
	d := delivery{ID: req.Header.Get(standardwebhooks.HeaderWebhookID), Header: req.Header.Clone(), Body: body}
	if got, want := req.Header.Get("Content-Type"), "application/json"; got != want {
		r.t.Errorf("receiver: Content-Type: got %q, want %q", got, want)
	}
	if got, want := req.Header.Get("User-Agent"), "feedbackd-webhooks/"; !strings.HasPrefix(got, want) {
		r.t.Errorf("receiver: User-Agent: got %q, want it to start with %q", got, want)
	}
	r.mu.Lock()
	secrets := r.secrets
	r.mu.Unlock()
	if len(secrets) > 0 && verifyingSecret(r.t, secrets, body, req.Header) == "" {
		r.t.Errorf("receiver: delivery %s verifies with none of the %d valid secrets", d.ID, len(secrets))
	}
	r.mu.Lock()
	n2 := len(r.got)
	r.got = append(r.got, d)
	answer := r.answer
	r.mu.Unlock()
	if r.block != nil {
		select {
		case <-r.block:
		case <-req.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if answer != nil {
		status = answer(d, n2)
	}
	if status == hang {
		<-req.Context().Done()
		return
	}
	w.WriteHeader(status)
}

// hang is the status of an answer that never comes: the receiver holds
// the request until the sender gives up on it.
const hang = -1

// verifyingSecret returns the first of secrets a delivery verifies with,
// by the library, or "".
func verifyingSecret(t *testing.T, secrets []string, body []byte, h http.Header) string {
	t.Helper()
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatalf("NewWebhook: %v", err)
		}
		if wh.Verify(body, h) == nil {
			return s
		}
	}
	return ""
}

// deliveries returns what the receiver got so far.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// loopbackDial returns a DialFunc that connects only to loopback
// addresses given as IPs, and fails the test when asked for anything
// else: tests never send a packet to any other address. dials counts
// its calls.
func loopbackDial(t *testing.T, dials *atomic.Int64) webhook.DialFunc {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials != nil {
			dials.Add(1)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			return nil, err
		}
		if host != "127.0.0.1" && host != "::1" {
			t.Errorf("dial %s %s: want only 127.0.0.1 or ::1", network, addr)
			return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError("refused by the test")}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// fakeResolver maps host names to addresses, and fails the test for any
// other name.
type fakeResolver struct {
	t     *testing.T
	hosts map[string][]netip.Addr
}

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := r.hosts[host]
	if !ok {
		r.t.Errorf("resolve %q: not a test host", host)
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func addrs(ss ...string) []netip.Addr {
	var as []netip.Addr
	for _, s := range ss {
		as = append(as, netip.MustParseAddr(s))
	}
	return as
}
