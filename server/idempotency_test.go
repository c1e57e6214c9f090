package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// slowStore holds every CreateFeedback until release is closed.
type slowStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s *slowStore) CreateFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.CreateFeedback(ctx, fs, idem)
}

// A repeat of an Idempotency-Key while its first request still runs is
// answered 409, and the first completes normally.
func TestIdempotencyKeyInProgressIs409(t *testing.T) {
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
	slow := &slowStore{Store: db, entered: make(chan struct{}, 1), release: make(chan struct{})}
	e, err := server.New(ctx, server.Config{Store: slow, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	defer srv.Close()
	post := func() *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/feedback", strings.NewReader(`{"trace_id":"t","value":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-portkey-api-key", key)
		req.Header.Set("Idempotency-Key", "same")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		return resp
	}
	first := make(chan *http.Response, 1)
	go func() { first <- post() }()
	<-slow.entered // the first request is inside the store
	if resp := post(); resp == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("repeat while the first runs: got %v, want 409", resp)
	}
	close(slow.release)
	if resp := <-first; resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v", resp)
	}
	if resp := post(); resp == nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("repeat after the first: got %v, want a 200 replay", resp)
	}
	select {
	case <-slow.entered:
		t.Error("the replay reached the store")
	default:
	}
}
