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

// hangGuard bounds every wait for an event in this package's tests. It is
// no figure of the server's: it only turns a hang into a failure, far
// above what anything takes on a loaded machine.
const hangGuard = time.Minute

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
	waiting := make(chan struct{}, 10)
	release := make(chan struct{})
	e.Use(admitBodies(budget, limit, func() { waiting <- struct{}{} }))
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
	// waits says the request just sent waits for the budget: it has
	// started waiting, and nothing has entered meanwhile.
	waits := func(what string) {
		t.Helper()
		select {
		case <-waiting:
		case n := <-entered:
			t.Fatalf("%s: request %s entered, want it waiting", what, n)
		case <-time.After(hangGuard):
			t.Fatalf("%s: neither waiting nor entered", what)
		}
		select {
		case n := <-entered:
			t.Fatalf("%s: request %s entered, want it waiting", what, n)
		default:
		}
	}
	enters := func(want string) {
		t.Helper()
		select {
		case n := <-entered:
			if n != want {
				t.Fatalf("request %s entered, want %s", n, want)
			}
		case <-time.After(hangGuard):
			t.Fatalf("request %s did not enter", want)
		}
	}
	answers := func(what string, done chan int, want int) {
		t.Helper()
		select {
		case code := <-done:
			if code != want {
				t.Fatalf("%s: %d, want %d", what, code, want)
			}
		case <-time.After(hangGuard):
			t.Fatalf("%s: no answer", what)
		}
	}

	first := serve(t.Context(), "/hold?n=1", strings.Repeat("x", 60))
	enters("1")
	second := serve(t.Context(), "/pass?n=2", strings.Repeat("x", 60))
	waits("60 + 60 bytes over a budget of 100")

	// Neither a request without a body nor one over the limit (which the
	// body reader refuses unread) waits for the budget.
	answers("request without a body", serve(t.Context(), "/pass?n=empty", ""), http.StatusOK)
	enters("empty")
	answers("request over the limit", serve(t.Context(), "/pass?n=huge", strings.Repeat("x", limit+1)), http.StatusOK)
	enters("huge")

	// A client that leaves while it waits is answered, without running.
	// (60 + 50 bytes are over the budget whether or not the second
	// request is queued yet.)
	ctx, cancel := context.WithCancel(t.Context())
	third := serve(ctx, "/pass?n=3", strings.Repeat("x", 50))
	waits("a third request")
	cancel()
	answers("request whose client left", third, http.StatusServiceUnavailable)

	// The second enters once the first is answered.
	close(release)
	answers("first", first, http.StatusOK)
	enters("2")
	answers("second", second, http.StatusOK)
}
