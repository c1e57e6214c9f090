package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// Bodies beyond the budget wait until earlier requests are answered; a
// request without a body, or one too large to be read at all, never waits;
// a request whose client leaves while it waits is answered without running.
func TestBodiesWaitForTheBudget(t *testing.T) {
	const budget, limit = 100, 100
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if re, ok := err.(*requestError); ok {
			_ = c.String(re.status, re.message)
			return
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	entered := make(chan string, 10)
	release := make(chan struct{})
	e.Use(admitBodies(budget, limit))
	e.POST("/hold", func(c echo.Context) error {
		entered <- c.QueryParam("n")
		<-release
		return c.NoContent(http.StatusOK)
	})
	e.POST("/pass", func(c echo.Context) error {
		entered <- c.QueryParam("n")
		return c.NoContent(http.StatusOK)
	})
	serve := func(ctx context.Context, path, body string) chan int {
		done := make(chan int, 1)
		go func() {
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(body))
			if body == "" {
				req.Body = http.NoBody
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			done <- rec.Code
		}()
		return done
	}
	// waits says no request enters the handler for a while.
	waits := func(what string) {
		t.Helper()
		select {
		case n := <-entered:
			t.Fatalf("%s: request %s entered, want it waiting", what, n)
		case <-time.After(100 * time.Millisecond):
		}
	}
	enters := func(want string) {
		t.Helper()
		select {
		case n := <-entered:
			if n != want {
				t.Fatalf("request %s entered, want %s", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %s did not enter", want)
		}
	}

	first := serve(t.Context(), "/hold?n=1", strings.Repeat("x", 60))
	enters("1")
	second := serve(t.Context(), "/pass?n=2", strings.Repeat("x", 60))
	waits("60 + 60 bytes over a budget of 100")

	// Neither a request without a body nor one over the limit (which the
	// body reader refuses unread) waits for the budget.
	if code := <-serve(t.Context(), "/pass?n=empty", ""); code != http.StatusOK {
		t.Fatalf("request without a body: %d", code)
	}
	enters("empty")
	if code := <-serve(t.Context(), "/pass?n=huge", strings.Repeat("x", limit+1)); code != http.StatusOK {
		t.Fatalf("request over the limit: %d", code)
	}
	enters("huge")

	// A client that leaves while it waits is answered, without running.
	ctx, cancel := context.WithCancel(t.Context())
	third := serve(ctx, "/pass?n=3", strings.Repeat("x", 30))
	waits("a third request")
	cancel()
	if code := <-third; code != http.StatusServiceUnavailable {
		t.Fatalf("request whose client left: %d, want 503", code)
	}

	close(release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first: %d", code)
	}
	enters("2")
	if code := <-second; code != http.StatusOK {
		t.Fatalf("second: %d", code)
	}
}
