package outbox_test

import (
	"errors"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/outbox"
)

func TestFinishOf(t *testing.T) {
	w := &store.Webhook{ID: "w", Lease: "lease"}
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	skipped := []*store.Event{{Seq: 3}, {Seq: 9}, {Seq: 5}} // walk order: the last passed is 5
	attempt := func(o store.Outcome) *store.Attempt {
		a := &store.Attempt{EventSeq: 11, N: 2, Outcome: o, Error: "e"}
		if o == store.Retrying {
			a.NextAttemptAt = &at
		}
		return a
	}
	for _, c := range []struct {
		name      string
		skipped   []*store.Event
		a         *store.Attempt
		keepUntil time.Time
		want      outbox.Finish
	}{
		{"a release that passes nothing keeps the counts", nil, nil, time.Time{}, outbox.Finish{}},
		{"skipped events move the position to the last walked", skipped, nil, time.Time{}, outbox.Finish{Past: 5, Counts: true}},
		{"a delivery moves past its event and keeps the lease", skipped, attempt(store.Delivered), at,
			outbox.Finish{Past: 11, Counts: true, Reason: "e", Lease: "lease", LeaseUntil: at}},
		{"a retry stays before its event, with its count and time", skipped, attempt(store.Retrying), time.Time{},
			outbox.Finish{Past: 5, Counts: true, Attempts: 2, NextAttemptAt: at, Reason: "e"}},
		{"giving up moves on", nil, attempt(store.GaveUp), time.Time{}, outbox.Finish{Past: 11, Counts: true, Reason: "e"}},
		{"410 moves on and disables", nil, attempt(store.Gone), time.Time{}, outbox.Finish{Past: 11, Counts: true, Disable: true, Reason: "e"}},
	} {
		if got := outbox.FinishOf(w, c.skipped, c.a, c.keepUntil); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestTrimRunsUntilARunDeletesFewer(t *testing.T) {
	left := 2*outbox.TrimRows + 7
	runs := 0
	err := outbox.Trim(func(limit int) (int64, error) {
		runs++
		n := min(limit, left)
		left -= n
		return int64(n), nil
	})
	if err != nil || runs != 3 || left != 0 {
		t.Errorf("Trim: %d runs, %d rows left, %v; want 3 runs, none left", runs, left, err)
	}
	boom := errors.New("boom")
	if err := outbox.Trim(func(int) (int64, error) { return outbox.TrimRows, boom }); !errors.Is(err, boom) {
		t.Errorf("Trim's error: %v, want %v", err, boom)
	}
}
