package store

import (
	"context"
	"sync/atomic"
	"time"
)

// Exporter is what moving data in and out of feedbackd (feedbackd export
// and import) needs of a store beyond the API's methods. Every Store is one.
type Exporter interface {
	// ListWorkspaces returns every workspace, by name.
	ListWorkspaces(ctx context.Context) ([]*Workspace, error)
	// ExportFeedback returns up to q.Limit feedback of one workspace,
	// oldest first: by CreatedAt, then by ID. A caller walks a whole
	// workspace by passing the last item of a page as q.After of the next,
	// so each page is an index range, however large the workspace.
	ExportFeedback(ctx context.Context, workspaceID string, q ExportQuery) ([]*Feedback, error)
	// ExistingFeedbackIDs returns those of ids that are stored, in any
	// workspace, in no particular order.
	ExistingFeedbackIDs(ctx context.Context, ids []string) ([]string, error)
}

// ExportQuery selects one page of ExportFeedback.
type ExportQuery struct {
	// Since keeps feedback created at or after it; zero keeps all.
	Since time.Time
	// After continues after this position (exclusive): feedback created
	// later, or at the same time with a greater ID. Nil starts at the
	// beginning.
	After *ExportPosition
	// Limit is the page size, 1..10000.
	Limit int
}

// From is the page's one lower bound on CreatedAt: the later of Since and
// After's time (zero for none). A query given both as separate bounds may
// seek to the earlier one and walk every row before the page, so that each
// page of a large export would cost more than the last.
func (q ExportQuery) From() time.Time {
	if q.After != nil && q.After.CreatedAt.After(q.Since) {
		return q.After.CreatedAt
	}
	return q.Since
}

// ExportPosition is a place in the export order.
type ExportPosition struct {
	CreatedAt time.Time
	ID        string
}

// PositionOf returns f's place in the export order.
func PositionOf(f *Feedback) *ExportPosition {
	return &ExportPosition{CreatedAt: f.CreatedAt, ID: f.ID}
}

// Before says whether a comes before b in the export order.
func (a ExportPosition) Before(b ExportPosition) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

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
