package store_test

import (
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// An export page has one lower bound on time, the later of Since and the
// position it continues after, so that it seeks straight to its rows.
func TestExportQueryFromIsTheLaterBound(t *testing.T) {
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	later := &store.ExportPosition{CreatedAt: since.Add(time.Hour), ID: "b"}
	earlier := &store.ExportPosition{CreatedAt: since.Add(-time.Hour), ID: "a"}
	for _, tc := range []struct {
		name string
		q    store.ExportQuery
		want time.Time
	}{
		{"nothing", store.ExportQuery{}, time.Time{}},
		{"since only", store.ExportQuery{Since: since}, since},
		{"after only", store.ExportQuery{After: later}, later.CreatedAt},
		{"after past since", store.ExportQuery{Since: since, After: later}, later.CreatedAt},
		{"after before since", store.ExportQuery{Since: since, After: earlier}, since},
	} {
		if got := tc.q.From(); !got.Equal(tc.want) {
			t.Errorf("%s: From() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
