package webhook

import (
	"math/rand/v2"
	"time"
)

// DefaultAttempts is how many attempts an event gets before a webhook
// gives up on it and moves on; with Backoff's schedule the last comes
// about a day after the first, long enough to ride out a receiver's bad
// day, short enough that its later events are not held back forever.
const DefaultAttempts = 8

// backoffBase is the delay after a first failed attempt.
const backoffBase = 5 * time.Second

// Backoff is the delay after the n-th (from 1) failed attempt at an
// event: 5 s times 5^(n-1) (5 s, 25 s, 2 m, 10 m, 52 m, 4.3 h, 21.7 h:
// about a day over DefaultAttempts), each times a random factor in
// [0.8, 1.2], so receivers that failed together are not retried together.
func Backoff(n int) time.Duration {
	d := backoffBase
	for range max(n-1, 0) {
		d *= 5
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
