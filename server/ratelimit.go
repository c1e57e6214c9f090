package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// limiter keeps one token bucket per subject (an API key or a feedback
// token): each may make perSecond requests a second on average, in bursts
// of up to burst.
type limiter struct {
	perSecond rate.Limit
	burst     int
	now       func() time.Time

	// refused, when set, is told about each refusal: "api_key" or "token".
	refused func(subject string)

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an unused bucket is kept; by then it has refilled,
// so forgetting it changes nothing.
const idleAfter = 10 * time.Minute

func newLimiter(perSecond float64, now func() time.Time) *limiter {
	burst := int(math.Ceil(perSecond))
	if burst < 1 {
		burst = 1
	}
	return &limiter{perSecond: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*bucket{}}
}

// allow takes one request from subject's bucket, or says how long to wait.
func (l *limiter) allow(subject string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > idleAfter {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleAfter {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[subject]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.perSecond, l.burst)}
		l.buckets[subject] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// rateLimit answers 429 with Retry-After when the request's key or token
// is over its limit. It runs after authentication, which names the subject.
func (l *limiter) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principalOf(c.Request().Context())
		ok, wait := l.allow(p.subject())
		if ok {
			return next(c)
		}
		if l.refused != nil {
			kind := "api_key"
			if p.token != nil {
				kind = "token"
			}
			l.refused(kind)
		}
		secs := int(math.Ceil(wait.Seconds()))
		if secs < 1 {
			secs = 1
		}
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return &requestError{status: http.StatusTooManyRequests, message: fmt.Sprintf("rate limit exceeded, retry after %d second(s)", secs)}
	}
}
