package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/store"
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
	slow := &slowStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv := newOpsServerWith(t, server.Config{}, func(st store.Store) store.Store {
		slow.Store = st
		return slow
	})
	post := func() *http.Response {
		resp, _ := srv.do(t, http.MethodPost, "/v1/feedback", `{"trace_id":"t","value":1}`, map[string]string{"Idempotency-Key": "same"})
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
