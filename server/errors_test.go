package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// waitingStore holds every list until its request's context ends, as a
// long read does when the client gives up first.
type waitingStore struct {
	store.Store
	entered chan struct{}
}

func (s *waitingStore) ListFeedback(ctx context.Context, ws string, f store.Filter) (*store.Page, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// syncBuffer is a log destination the server's goroutines share.
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

// A client that hangs up before its answer is not a server failure: the
// request is logged with status 499 at info level, never as an error or
// a 500, which operators alert on.
func TestClientGoneIsNotAServerError(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ws, err := db.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	key, hash := apikey.Generate()
	if err := db.CreateAPIKey(ctx, &store.APIKey{ID: uuid.NewString(), WorkspaceID: ws.ID, Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	waiting := &waitingStore{Store: db, entered: make(chan struct{}, 1)}
	e, err := server.New(ctx, server.Config{Store: waiting, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	defer srv.Close()

	reqCtx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, srv.URL+"/v1/feedback", nil)
	req.Header.Set("x-portkey-api-key", key)
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

	// The access line is written once the handler has returned.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "msg=request ") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
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
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ws, err := db.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	key, hash := apikey.Generate()
	if err := db.CreateAPIKey(ctx, &store.APIKey{ID: uuid.NewString(), WorkspaceID: ws.ID, Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	waiting := &waitingStore{Store: db, entered: make(chan struct{}, 1)}
	e, err := server.New(ctx, server.Config{Store: waiting, RequestTimeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/feedback", nil)
	req.Header.Set("x-portkey-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Status != "failure" || !strings.Contains(body.Message, "time limit") {
		t.Errorf("got %d %+v, want 503 failure saying the time limit was reached", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		t.Errorf("Retry-After %q on a request that would take as long again", ra)
	}
	// Other requests are not affected: a quick one answers as usual.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/v1/feedback/"+uuid.NewString(), nil)
	req.Header.Set("x-portkey-api-key", key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a quick request after it: %v %v, want 404", resp, err)
	}
}
