package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/apikey"
)

// A revoked key keeps working for at most keyCacheTTL (the server trusts
// a key it looked up that long), then is refused.
func TestRevokedKeyRefusedWithinCacheTTL(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	api := newTestAPIAt(t, now)
	post := func() int {
		req := httptest.NewRequest(http.MethodPost, "/v1/feedback", strings.NewReader(`{"trace_id":"t","value":1}`))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set("x-portkey-api-key", api.key)
		rec := httptest.NewRecorder()
		api.e.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := post(); code != http.StatusOK {
		t.Fatalf("before revocation: %d", code)
	}
	k, err := api.store.APIKeyByHash(context.Background(), apikey.Hash(api.key))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.store.RevokeAPIKey(context.Background(), k.ID, now()); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(keyCacheTTL / 2))
	if code := post(); code != http.StatusOK {
		t.Fatalf("within the cache time: %d, want the cached key to answer 200", code)
	}
	clock.Add(int64(keyCacheTTL))
	if code := post(); code != http.StatusUnauthorized {
		t.Fatalf("after the cache time: %d, want 401", code)
	}
}
