package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/semaphore"
)

// admitBodies bounds the bytes of request bodies being handled at once to
// budget: a request with a body waits for its share before its body is
// read, and holds it until it is answered.
//
// A body's decoded feedback and the rows made of it stay in memory until
// the store commits them, several times the body's size; the store commits
// one batch at a time however many requests wait for it. Without a bound,
// 32 clients each sending a bulk of 1000 hold 32,000 decoded rows while the
// writer works through them, hundreds of MiB; admitted a few at a time,
// the writer still always has the next batch waiting, and the others wait
// as bytes on their connections.
//
// A body is weighed by its Content-Length, or as limit (the largest body
// allowed) when it has none; one larger than limit is not weighed, since
// readBody refuses it unread. No request weighs more than the budget, so
// every one is admitted eventually.
//
// waiting, when not nil, is called each time a request has to wait for
// its share, so that a test can tell a waiting request from one that has
// not arrived yet.
func admitBodies(budget, limit int64, waiting func()) echo.MiddlewareFunc {
	sem := semaphore.NewWeighted(budget)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Body == nil || req.Body == http.NoBody || req.ContentLength > limit {
				return next(c)
			}
			n := req.ContentLength
			if n < 0 {
				n = limit
			}
			n = min(n, budget)
			if !sem.TryAcquire(n) {
				if waiting != nil {
					waiting()
				}
				if err := sem.Acquire(req.Context(), n); err != nil {
					// The client left while it waited: nobody reads this.
					return &requestError{status: http.StatusServiceUnavailable, message: "the request ended while it waited for the server"}
				}
			}
			defer sem.Release(n)
			return next(c)
		}
	}
}
