package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
)

// statusOf is the one map from store error codes to HTTP status.
var statusOf = map[string]int{
	store.EINVALID:      http.StatusBadRequest,
	store.EUNAUTHORIZED: http.StatusUnauthorized,
	store.ENOTFOUND:     http.StatusNotFound,
	store.ECONFLICT:     http.StatusConflict,
	store.EINTERNAL:     http.StatusInternalServerError,
	store.EUNAVAILABLE:  http.StatusServiceUnavailable,
	store.EFULL:         http.StatusInsufficientStorage,
}

// statusClientClosed is the status a request is logged and counted with
// when its client hung up before the answer (nginx's 499): nobody reads
// it, and it is not the server's failure, so it is kept out of the 5xx
// that operators alert on.
const statusClientClosed = 499

// retryAfterSeconds is the Retry-After of a 503: about how long a
// database restart or failover takes to begin answering again.
const retryAfterSeconds = "1"

// requestError is a failure found before a handler runs (body, auth,
// validation). It carries the HTTP status itself because it is about HTTP,
// and the field errors the spec's Error body lists.
type requestError struct {
	status  int
	message string
	fields  []gen.FieldError
}

func (e *requestError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.message) }

// handleError is Echo's HTTPErrorHandler: every error, from a bad body to a
// panic, is answered here with the spec's Error body.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ctxErr := c.Request().Context().Err()
	if errors.Is(err, context.Canceled) && ctxErr != nil {
		_ = c.NoContent(statusClientClosed)
		return
	}
	status, body := errorBody(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctxErr, context.DeadlineExceeded):
		// timeLimit's deadline: as long again if retried as is.
		status, body.Message = http.StatusServiceUnavailable, "the request reached the server's time limit before it was answered; ask for less (a shorter range, more filters)"
	case store.ErrorCode(err) == store.EUNAVAILABLE:
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
	case status == http.StatusInsufficientStorage && c.Request().Method == http.MethodGet:
		// A read that needed temporary room (a large sort on PostgreSQL):
		// the spec gives 507 to writes only, whose data it says was not
		// stored; for a read the full disk is a condition that may pass.
		status, body.Message = http.StatusServiceUnavailable, "the disk is full: the read needed room it could not get; retry once space is freed"
	}
	// A 5xx's error is logged once, on its access line (accessLog).
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		werr = c.JSON(status, body)
	}
	if werr != nil {
		s.logger.Warn("writing error response", slog.Any("error", werr))
	}
}

// errorBody turns any error into a status and the Error body. Internal
// errors are answered with a generic message: their text stays in the log.
func errorBody(err error) (int, gen.Error) {
	body := gen.Error{Status: gen.Failure}
	var (
		re *requestError
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &re):
		body.Message = re.message
		if len(re.fields) > 0 {
			body.Errors = &re.fields
		}
		return re.status, body
	case errors.As(err, &he):
		// Echo's own errors: unknown route, wrong method, and parameter
		// binding that the validator did not catch first.
		body.Message = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" && he.Code < 500 {
			body.Message = m
		}
		return he.Code, body
	}
	if refused := (*store.EraseRefused)(nil); errors.As(err, &refused) {
		count := int64(refused.Count)
		body.Count = &count
	}
	code := store.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	body.Message = store.ErrorMessage(err)
	return status, body
}

// timeLimit gives each request a deadline of d (none when d is 0); a
// request still at work then is answered by handleError.
func timeLimit(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if d <= 0 {
			return next
		}
		return func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}
