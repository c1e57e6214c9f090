package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/feedbackd/feedbackd/server/store"
)

// DefaultTimeout bounds one attempt at a delivery, from dialing to the end
// of the answer's body: a slow receiver costs one delivery slot for at
// most this long.
const DefaultTimeout = 10 * time.Second

// Bounds on what a receiver's answer may cost the server: the body is
// read up to maxBody (so a keep-alive connection can be reused after a
// short answer) and discarded, except its first errorBody bytes, kept in
// a failed attempt's error so an operator sees what the receiver said.
const (
	maxBody        = 64 << 10
	errorBody      = 256
	maxHeaderBytes = 64 << 10
)

// Resolver resolves a host name to its addresses; *net.Resolver is one.
// Tests inject one that maps test names to the addresses they need.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc connects to addr, an IP address and port: the guarded dialer
// calls it only with addresses it checked.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// SenderConfig configures a Sender; the zero value of each field means
// its default.
type SenderConfig struct {
	// Timeout bounds one attempt (DefaultTimeout).
	Timeout time.Duration
	// AllowLoopback lets deliveries reach loopback addresses
	// (--webhooks-allow-loopback: tests and local development).
	AllowLoopback bool
	// Resolver resolves receivers' host names (net.DefaultResolver).
	Resolver Resolver
	// Dial connects to a checked address (a net.Dialer's DialContext).
	Dial DialFunc
	// Version names the server in the User-Agent ("dev").
	Version string
}

// Sender delivers one event to one receiver at a time, signed as
// Standard Webhooks says. It reaches only addresses refused does not
// refuse, checked after resolving the receiver's name and dialed by
// address, so a name that resolves differently between the check and the
// connection cannot slip through; it follows no redirect and uses no
// proxy, so the checked address is the one the request reaches. It is
// safe for concurrent use and reuses connections.
type Sender struct {
	client        *http.Client
	timeout       time.Duration
	allowLoopback bool
	resolver      Resolver
	dial          DialFunc
	userAgent     string
}

// NewSender returns a Sender configured by c.
func NewSender(c SenderConfig) *Sender {
	s := &Sender{
		timeout:       c.Timeout,
		allowLoopback: c.AllowLoopback,
		resolver:      c.Resolver,
		dial:          c.Dial,
		userAgent:     "feedbackd-webhooks/" + c.Version,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.dial == nil {
		s.dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	if c.Version == "" {
		s.userAgent = "feedbackd-webhooks/dev"
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			// No proxy: a proxy would connect to the receiver itself,
			// past the address check.
			Proxy:                  nil,
			DialContext:            s.dialChecked,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           100,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    s.timeout,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: maxHeaderBytes,
			// The body is discarded: asking for it compressed would only
			// make the server inflate what it throws away.
			DisableCompression: true,
		},
		// A redirect is the receiver's answer, not a new address to
		// reach: following it would reach a URL nobody checked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// Close releases the Sender's idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Message is one delivery of one event.
type Message struct {
	// URL is the receiver's.
	URL string
	// ID is the event's id: the webhook-id of every delivery of it, which
	// lets a receiver drop the duplicates at-least-once delivery brings.
	ID string
	// Timestamp is when the attempt is made: the webhook-timestamp a
	// receiver checks against replays.
	Timestamp time.Time
	// Body is the payload, JSON.
	Body []byte
	// Secrets sign the delivery, each adding a signature: the current
	// one, and during a rotation's grace period the previous one, so a
	// receiver still verifying with the old secret accepts it.
	Secrets []string
}

// Result is how one attempt went.
type Result struct {
	// Outcome is Delivered (2xx), Gone (410), or Retrying for any other
	// failure; whether a failure is the last is the caller's to say.
	Outcome store.Outcome
	// Status is the receiver's HTTP status, 0 when it gave none.
	Status int
	// Latency is the time from sending the request to the end of the
	// answer.
	Latency time.Duration
	// Error says what went wrong, "" when delivered. It may name the URL
	// and the receiver's address, never a secret.
	Error string
}

// Signature returns the webhook-signature header of a delivery: one
// "v1,..." signature per secret, space-separated.
func Signature(m Message) (string, error) {
	sigs := make([]string, 0, len(m.Secrets))
	for _, secret := range m.Secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			// The library's error may quote the secret's encoding: never
			// pass it on.
			return "", errors.New("a signing secret is not a valid " + SecretPrefix + " secret")
		}
		sig, err := wh.Sign(m.ID, m.Timestamp, m.Body)
		if err != nil {
			return "", errors.New("signing failed")
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return "", errors.New("no signing secret")
	}
	return strings.Join(sigs, " "), nil
}

// Send makes one attempt at delivering m, bounded by the Sender's
// timeout.
func (s *Sender) Send(ctx context.Context, m Message) Result {
	sig, err := Signature(m)
	if err != nil {
		return Result{Outcome: store.Retrying, Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{Outcome: store.Retrying, Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(m.Timestamp.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)

	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Outcome: store.Retrying, Latency: time.Since(start), Error: s.describe(ctx, err)}
	}
	head, err := readCapped(resp.Body)
	resp.Body.Close()
	r := Result{Status: resp.StatusCode, Latency: time.Since(start)}
	switch {
	case err != nil:
		// A 2xx whose body does not arrive in time is not delivered: the
		// receiver may not have finished with it.
		r.Outcome, r.Error = store.Retrying, fmt.Sprintf("status %d, then reading the answer: %s", resp.StatusCode, s.describe(ctx, err))
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		r.Outcome = store.Delivered
	case resp.StatusCode == http.StatusGone:
		r.Outcome, r.Error = store.Gone, answerError(resp, head)
	default:
		r.Outcome, r.Error = store.Retrying, answerError(resp, head)
	}
	return r
}

// describe says what a transport error was, naming a timeout as one.
func (s *Sender) describe(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s: %v", s.timeout, err)
	}
	return err.Error()
}

// readCapped reads up to maxBody bytes of body and returns the first
// errorBody of them.
func readCapped(body io.Reader) ([]byte, error) {
	var head bytes.Buffer
	_, err := io.Copy(io.Discard, io.TeeReader(io.LimitReader(body, maxBody), &limitedWriter{&head, errorBody}))
	return head.Bytes(), err
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	buf *bytes.Buffer
	n   int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.n - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// answerError says what a receiver answered instead of 2xx: the status,
// where a redirect pointed, and the start of the body.
func answerError(resp *http.Response, head []byte) string {
	msg := "status " + resp.Status
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed) to " + loc
	}
	if text := strings.TrimSpace(strings.ToValidUTF8(string(head), "?")); text != "" {
		msg += ": " + text
	}
	return msg
}

// RefusedError is the error of a delivery whose receiver resolves to an
// address deliveries must not reach.
type RefusedError struct {
	// Host is the URL's host; Addr the address refused; Reason why.
	Host   string
	Addr   netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Host == e.Addr.String() {
		return fmt.Sprintf("refused to connect to %s: it is %s", e.Addr, e.Reason)
	}
	return fmt.Sprintf("refused to connect to %s: it resolves to %s, %s", e.Host, e.Addr, e.Reason)
}

// dialChecked resolves addr's host, refuses it when ANY of its addresses
// is refused (a name that also resolves to an internal address may be
// steered there by whoever controls its DNS), and dials the checked
// addresses themselves, in turn, until one connects.
func (s *Sender) dialChecked(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ipNet := "ip"
		switch network {
		case "tcp4":
			ipNet = "ip4"
		case "tcp6":
			ipNet = "ip6"
		}
		if addrs, err = s.resolver.LookupNetIP(ctx, ipNet, host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no address", host)
		}
	}
	for _, a := range addrs {
		if why := refused(a, s.allowLoopback); why != "" {
			return nil, &RefusedError{Host: host, Addr: a, Reason: why}
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := s.dial(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
