package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/store"
)

// waitingStore holds every list until its request's context ends, as a
// long read does when the client gives up first or time is up.
type waitingStore struct {
	store.Store
	entered chan struct{}
}

func (s *waitingStore) ListFeedback(ctx context.Context, ws string, f store.Filter) (*store.Page, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func newWaitingServer(t *testing.T, cfg server.Config) (*opsServer, *waitingStore) {
	waiting := &waitingStore{entered: make(chan struct{}, 1)}
	s := newOpsServerWith(t, cfg, func(st store.Store) store.Store {
		waiting.Store = st
		return waiting
	})
	return s, waiting
}

// A client that hangs up before its answer is not a server failure: the
// request is logged with status 499 at info level, never as an error or
// a 500, which operators alert on.
func TestClientGoneIsNotAServerError(t *testing.T) {
	s, waiting := newWaitingServer(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/feedback", nil)
	req.Header.Set("x-portkey-api-key", s.key)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-waiting.entered
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the canceled request got an answer")
	}

	// The access line is written once the handler has returned, before
	// the server lets go of the request.
	s.close()
	out := s.log.String()
	if !strings.Contains(out, "level=INFO msg=request ") || !strings.Contains(out, "status=499") {
		t.Errorf("want an info access line with status 499, got:\n%s", out)
	}
	if strings.Contains(out, "level=ERROR") || strings.Contains(out, "status=500") {
		t.Errorf("a client that hung up was logged as a server error:\n%s", out)
	}
}

// A request still at work when its time is up (Config.RequestTimeout, a
// little under the HTTP server's write timeout) is stopped and answered
// 503 with the spec's Error body while an answer can still be written,
// instead of running on for an answer nobody will get. Retrying it as is
// would take as long again: no Retry-After.
func TestRequestOverItsTimeIs503(t *testing.T) {
	s, _ := newWaitingServer(t, server.Config{RequestTimeout: 200 * time.Millisecond})
	resp, raw := s.do(t, http.MethodGet, "/v1/feedback", "", nil)
	var body struct{ Status, Message string }
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Status != "failure" || !strings.Contains(body.Message, "time limit") {
		t.Errorf("got %d %+v, want 503 failure saying the time limit was reached", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		t.Errorf("Retry-After %q on a request that would take as long again", ra)
	}
	// Other requests are not affected: a quick one answers as usual.
	if resp, _ := s.do(t, http.MethodGet, "/v1/feedback/"+uuid.NewString(), "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a quick request after it: %d, want 404", resp.StatusCode)
	}
}

// failingStore fails every list with an error the caller must not see.
type failingStore struct{ store.Store }

func (failingStore) ListFeedback(context.Context, string, store.Filter) (*store.Page, error) {
	return nil, errors.New("the disk is on fire")
}

// A server failure is answered 500 with a generic message, and logged
// once, at error level, with its id and the error's text: one line per
// failed request, so that an outage does not double the log.
func TestServerFailureIsLoggedOnce(t *testing.T) {
	s := newOpsServerWith(t, server.Config{}, func(st store.Store) store.Store { return failingStore{st} })
	resp, raw := s.do(t, http.MethodGet, "/v1/feedback", "", nil)
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(raw, "fire") {
		t.Errorf("got %d %s, want 500 without the error's text", resp.StatusCode, raw)
	}
	var errorLines []string
	for line := range strings.SplitSeq(strings.TrimSpace(s.log.String()), "\n") {
		if strings.Contains(line, "level=ERROR") {
			errorLines = append(errorLines, line)
		}
	}
	id := resp.Header.Get("X-Request-Id")
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], "request_id="+id) || !strings.Contains(errorLines[0], "the disk is on fire") || !strings.Contains(errorLines[0], "status=500") {
		t.Errorf("want one error line with request_id=%s, status=500 and the error, got:\n%s", id, strings.Join(errorLines, "\n"))
	}
}

// fullStore fails every list as a full disk does on PostgreSQL when a
// large sort needs temporary files.
type fullStore struct{ store.Store }

func (fullStore) ListFeedback(context.Context, string, store.Filter) (*store.Page, error) {
	return nil, store.Full(errors.New("could not write temporary file: No space left on device"))
}

// Reads declare no 507 (the spec gives it to writes, which it tells were
// not stored): a read the full disk stopped is answered 503, a condition
// that may pass, with the message saying why.
func TestReadStoppedByAFullDiskIs503(t *testing.T) {
	s := newOpsServerWith(t, server.Config{}, func(st store.Store) store.Store { return fullStore{st} })
	resp, raw := s.do(t, http.MethodGet, "/v1/feedback", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(raw, "disk is full") {
		t.Errorf("got %d %s, want 503 saying the disk is full", resp.StatusCode, raw)
	}
}
