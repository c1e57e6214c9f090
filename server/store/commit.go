package store

import (
	"sync/atomic"
	"time"
)

// CommitObserver is told about each commit of writes of feedback (creates,
// updates, deletes, token votes) a store makes: how many writes shared it,
// how many feedback rows they wrote (0 when it failed), how long it took,
// and its error (nil when it committed). Commits of nothing but keys,
// secrets or readiness checks are not told. Stores call it from the
// committing goroutine, so it must be quick; metrics use it.
type CommitObserver func(writes, rows int, took time.Duration, err error)

// CommitObservers holds a store's commit observer: each store embeds one,
// which gives it SetCommitObserver, and calls ObserveCommit.
type CommitObservers struct {
	o atomic.Pointer[CommitObserver]
}

// SetCommitObserver has o told about every commit of feedback; nil stops
// that. It may be called at any time.
func (c *CommitObservers) SetCommitObserver(o CommitObserver) { c.o.Store(&o) }

// ObserveCommit tells the observer, if any, about one commit.
func (c *CommitObservers) ObserveCommit(writes, rows int, took time.Duration, err error) {
	if o := c.o.Load(); o != nil && *o != nil {
		if err != nil {
			rows = 0
		}
		(*o)(writes, rows, took, err)
	}
}

// EventRecording holds whether a store records events for webhooks: each
// store embeds one, which gives it SetRecordEvents, and asks
// RecordsEvents before it writes a change's events.
type EventRecording struct {
	off atomic.Bool
}

// SetRecordEvents turns the recording of events on or off; it is on
// until turned off.
func (e *EventRecording) SetRecordEvents(on bool) { e.off.Store(!on) }

// RecordsEvents says whether events are recorded.
func (e *EventRecording) RecordsEvents() bool { return !e.off.Load() }
