package server

import (
	"crypto/rand"

	"github.com/labstack/echo/v4"
)

// maxRequestID is the longest client-sent X-Request-Id that is kept.
const maxRequestID = 64

// requestID gives every request an id, answered in X-Request-Id and
// written in its access log line (and any error logged for it), so a user
// who reports a failure can quote the line an operator needs. A client's
// own X-Request-Id is kept when it is a short token (1 to 64 letters,
// digits, '.', '_', ':' or '-'), so an id can follow a request from the
// caller's logs into ours; anything else is replaced by a fresh one, so a
// client cannot write arbitrary text into the log through it.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(id) {
			id = rand.Text()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
