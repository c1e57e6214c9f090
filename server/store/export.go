package store

import (
	"context"
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
