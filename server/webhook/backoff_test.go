package webhook_test

import (
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/webhook"
)

// The delay after the n-th failure is 5 s times 5^(n-1), give or take
// 20%: the 7 delays between DefaultAttempts attempts add up to about a
// day, and two receivers that failed together are not retried in step.
func TestBackoffGrowsFivefoldWithJitter(t *testing.T) {
	want := []time.Duration{5 * time.Second, 25 * time.Second, 125 * time.Second, 625 * time.Second,
		3125 * time.Second, 15625 * time.Second, 78125 * time.Second}
	if got := len(want) + 1; got != webhook.DefaultAttempts {
		t.Fatalf("DefaultAttempts: got %d, want %d", webhook.DefaultAttempts, got)
	}
	var lo, hi time.Duration
	distinct := map[time.Duration]bool{}
	for n, base := range want {
		for range 200 {
			d := webhook.Backoff(n + 1)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("Backoff(%d): got %s, want within 20%% of %s", n+1, d, base)
			}
			distinct[d] = true
		}
		lo, hi = lo+base*8/10, hi+base*12/10
	}
	if lo < 20*time.Hour || hi > 33*time.Hour {
		t.Errorf("the schedule spans %s to %s, want about a day", lo, hi)
	}
	if len(distinct) < 1000 {
		t.Errorf("%d distinct delays in 1400, want them jittered", len(distinct))
	}
}
