// Package storetest is the contract every store.Store backend passes: one
// suite, run by each backend's tests with a constructor for a fresh store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// NewStore returns an empty store for one test; the suite closes it.
type NewStore func(t *testing.T) store.Store

// Run runs the whole contract against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateAndGetRoundTrip", testCreateAndGet},
		{"BulkCreateIsAtomic", testBulkAtomic},
		{"DuplicateIDConflicts", testDuplicateID},
		{"UpdateReplacesSentFieldsOnly", testUpdate},
		{"UpdateAndDeleteUnknownIDNotFound", testUnknownID},
		{"Delete", testDelete},
		{"WorkspacesAreIsolated", testIsolation},
		{"ListFilters", testListFilters},
		{"ListPagesWithoutSkipOrRepeatUnderConcurrentWrites", testListPagingConcurrent},
		{"ListOrdersByTimeThenIDAcrossPages", testListOrderAcrossPages},
		{"ListTimeBoundedPagesUnderConcurrentWrites", testListBoundedPagingConcurrent},
		{"ConcurrentWritersAllCommitted", testConcurrentWrites},
		{"ConcurrentWritesFailAlone", testConcurrentWritesFailAlone},
		{"APIKeys", testAPIKeys},
		{"UpsertTokenFeedbackKeepsOneRowPerToken", testUpsertTokenFeedback},
		{"SecretIsCreatedOnceAndShared", testSecret},
		{"AnalyticsMatchARecomputation", testAnalytics},
		{"IdempotentWritesHappenOnce", testIdempotency},
		{"ListWorkspaces", testListWorkspaces},
		{"ExportWalksOldestFirstInPages", testExportOrderAndPaging},
		{"ExistingFeedbackIDs", testExistingFeedbackIDs},
		{"CommitObserverSeesEachCommit", testCommitObserver},
		{"HotTraceKeepsEveryFirstExact", testHotTrace},
		{"BulkAcrossWorkspacesCountsEachTrace", testBulkAcrossWorkspaces},
		{"PutCreatesOrReplaces", testPutCreatesOrReplaces},
		{"PutPromotesTheNextFirst", testPutPromotes},
		{"PutBulkIsAtomic", testPutBulkIsAtomic},
		{"PutOtherWorkspaceIDConflicts", testPutOtherWorkspace},
		{"PutRecordsItsCountWithTheKey", testPutIdempotency},
		{"PutRacesWithOtherWrites", testPutRaces},
		{"EraseByFilter", testEraseByFilter},
		{"EraseGuard", testEraseGuard},
		{"ModelKeysRebuildTheModelRollups", testModelKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
	RunWebhooks(t, newStore)
}

// RunAnalytics runs the part of the contract about analytics alone, for
// store variants that differ only there.
func RunAnalytics(t *testing.T, newStore NewStore) {
	s := newStore(t)
	t.Cleanup(func() { _ = s.Close() })
	testAnalytics(t, s)
}

var clock = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// feedback returns a new feedback in ws, created at clock plus n seconds.
func feedback(ws string, n int, trace string, value int, meta map[string]any) *store.Feedback {
	at := clock.Add(time.Duration(n) * time.Second)
	return &store.Feedback{
		ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, TraceID: trace,
		Value: value, Weight: 1, Metadata: meta, CreatedAt: at, UpdatedAt: at,
	}
}

func workspace(t *testing.T, s store.Store, name string) string {
	t.Helper()
	w, err := s.EnsureWorkspace(context.Background(), name)
	if err != nil {
		t.Fatalf("EnsureWorkspace(%q): %v", name, err)
	}
	return w.ID
}

// normalize renders metadata as JSON so numbers compare by value whatever Go
// type a backend decodes them into.
func normalize(t *testing.T, m map[string]any) string {
	t.Helper()
	if m == nil {
		m = map[string]any{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(v)
	return string(b)
}

func assertSame(t *testing.T, got, want *store.Feedback) {
	t.Helper()
	if got.ID != want.ID || got.WorkspaceID != want.WorkspaceID || got.TraceID != want.TraceID ||
		got.Value != want.Value || got.Weight != want.Weight ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if g, w := normalize(t, got.Metadata), normalize(t, want.Metadata); g != w {
		t.Errorf("metadata: got %s, want %s", g, w)
	}
}

func testCreateAndGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	f := feedback(ws, 0, "trace-1", -7, map[string]any{
		"_user": "u1", "n": json.Number("12345678901234567"), "nested": map[string]any{"x": []any{true, nil, "é"}},
	})
	f.Weight = 0.1
	f.CreatedAt = f.CreatedAt.Add(123456 * time.Microsecond)
	empty := feedback(ws, 1, "trace-2", 10, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f, empty}, nil); err != nil {
		t.Fatalf("CreateFeedback: %v", err)
	}
	got, err := s.GetFeedback(ctx, ws, f.ID)
	if err != nil {
		t.Fatalf("GetFeedback: %v", err)
	}
	assertSame(t, got, f)
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location: got %v, want UTC", got.CreatedAt.Location())
	}
	if n, ok := got.Metadata["n"].(json.Number); !ok || n.String() != "12345678901234567" {
		t.Errorf("large integer metadata: got %#v, want exact json.Number 12345678901234567", got.Metadata["n"])
	}
	got, err = s.GetFeedback(ctx, ws, empty.ID)
	if err != nil {
		t.Fatalf("GetFeedback: %v", err)
	}
	if got.Metadata == nil || len(got.Metadata) != 0 {
		t.Errorf("nil metadata: got %#v, want empty non-nil map", got.Metadata)
	}
}

func testBulkAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	existing := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{existing}, nil); err != nil {
		t.Fatal(err)
	}
	// The third item reuses an id, so the whole bulk must be refused.
	bulk := []*store.Feedback{feedback(ws, 1, "t", 1, nil), feedback(ws, 2, "t", 2, nil), feedback(ws, 3, "t", 3, nil)}
	bulk[2].ID = existing.ID
	if err := s.CreateFeedback(ctx, bulk, nil); store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("CreateFeedback with duplicate: got %v, want %s", err, store.ECONFLICT)
	}
	for _, f := range bulk[:2] {
		if _, err := s.GetFeedback(ctx, ws, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
			t.Errorf("item %s of refused bulk: got err %v, want not found", f.ID, err)
		}
	}
	page, err := s.ListFeedback(ctx, ws, store.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Errorf("rows after refused bulk: got %d, want 1", len(page.Items))
	}
}

func testDuplicateID(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	f := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("second create: got %v, want %s", err, store.ECONFLICT)
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	f := feedback(ws, 0, "t", 1, map[string]any{"_user": "u1"})
	f.Weight = 0.5
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	later := clock.Add(time.Hour)
	got, err := s.UpdateFeedback(ctx, ws, f.ID, store.Update{Value: -3, UpdatedAt: later}, nil)
	if err != nil {
		t.Fatalf("UpdateFeedback value only: %v", err)
	}
	want := *f
	want.Value, want.UpdatedAt = -3, later
	assertSame(t, got, &want)

	w := 0.25
	got, err = s.UpdateFeedback(ctx, ws, f.ID, store.Update{
		Value: 4, Weight: &w, Metadata: map[string]any{"reason": "typo"}, MetadataSet: true, UpdatedAt: later,
	}, nil)
	if err != nil {
		t.Fatalf("UpdateFeedback all fields: %v", err)
	}
	want.Value, want.Weight, want.Metadata = 4, 0.25, map[string]any{"reason": "typo"}
	assertSame(t, got, &want)
	stored, err := s.GetFeedback(ctx, ws, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, stored, &want)

	got, err = s.UpdateFeedback(ctx, ws, f.ID, store.Update{Value: 4, MetadataSet: true, UpdatedAt: later}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Metadata) != 0 {
		t.Errorf("metadata set to nil: got %v, want empty", got.Metadata)
	}
}

func testUnknownID(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := s.GetFeedback(ctx, ws, id); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Get unknown: got %v, want %s", err, store.ENOTFOUND)
	}
	if _, err := s.UpdateFeedback(ctx, ws, id, store.Update{Value: 1, UpdatedAt: clock}, nil); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Update unknown: got %v, want %s", err, store.ENOTFOUND)
	}
	if err := s.DeleteFeedback(ctx, ws, id); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Delete unknown: got %v, want %s", err, store.ENOTFOUND)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	f := feedback(ws, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFeedback(ctx, ws, f.ID); err != nil {
		t.Fatalf("DeleteFeedback: %v", err)
	}
	if _, err := s.GetFeedback(ctx, ws, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Get after delete: got %v, want %s", err, store.ENOTFOUND)
	}
	if err := s.DeleteFeedback(ctx, ws, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("second delete: got %v, want %s", err, store.ENOTFOUND)
	}
}

func testIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	if a == b {
		t.Fatal("two workspace names gave one id")
	}
	if again := workspace(t, s, "a"); again != a {
		t.Errorf("EnsureWorkspace twice: got %s then %s", a, again)
	}
	f := feedback(a, 0, "t", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetFeedback(ctx, b, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Get from other workspace: got %v, want %s", err, store.ENOTFOUND)
	}
	if _, err := s.UpdateFeedback(ctx, b, f.ID, store.Update{Value: 9, UpdatedAt: clock}, nil); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Update from other workspace: got %v, want %s", err, store.ENOTFOUND)
	}
	if err := s.DeleteFeedback(ctx, b, f.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("Delete from other workspace: got %v, want %s", err, store.ENOTFOUND)
	}
	page, err := s.ListFeedback(ctx, b, store.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("List of other workspace: got %d items, want 0", len(page.Items))
	}
	got, err := s.GetFeedback(ctx, a, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, got, f)
}

func testListFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	other := workspace(t, s, "b")
	all := []*store.Feedback{
		feedback(ws, 0, "t1", -10, map[string]any{"_user": "u1", "n": json.Number("5")}),
		feedback(ws, 1, "t1", 0, map[string]any{"_user": "u2", "flag": true}),
		feedback(ws, 2, "t2", 5, map[string]any{"_user": "u1", "n": json.Number("5.0"), "flag": false}),
		feedback(ws, 3, "t3", 10, map[string]any{"_user": "u1", "n": "5", "_prompt": "p"}),
		feedback(ws, 4, "t,4", 7, map[string]any{`we"ird\key`: "x", "a.b": "dotted", "$": true}),
	}
	if err := s.CreateFeedback(ctx, all, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(other, 0, "t1", 1, map[string]any{"_user": "u1"})}, nil); err != nil {
		t.Fatal(err)
	}
	ptr := func(v int) *int { return &v }
	at := func(n int) *time.Time { x := clock.Add(time.Duration(n) * time.Second); return &x }
	cases := []struct {
		name   string
		filter store.Filter
		want   []int // indexes into all, newest first
	}{
		{"none", store.Filter{}, []int{4, 3, 2, 1, 0}},
		{"one trace", store.Filter{TraceIDs: []string{"t1"}}, []int{1, 0}},
		{"two traces", store.Filter{TraceIDs: []string{"t2", "t3"}}, []int{3, 2}},
		{"trace with comma", store.Filter{TraceIDs: []string{"t,4"}}, []int{4}},
		{"string metadata", store.Filter{Metadata: map[string]any{"_user": "u1"}}, []int{3, 2, 0}},
		{"number metadata matches 5 and 5.0, not \"5\"", store.Filter{Metadata: map[string]any{"n": 5.0}}, []int{2, 0}},
		{"string metadata does not match number", store.Filter{Metadata: map[string]any{"n": "5"}}, []int{3}},
		{"bool true", store.Filter{Metadata: map[string]any{"flag": true}}, []int{1}},
		{"bool false", store.Filter{Metadata: map[string]any{"flag": false}}, []int{2}},
		{"all pairs must match", store.Filter{Metadata: map[string]any{"_user": "u1", "_prompt": "p"}}, []int{3}},
		{"missing key", store.Filter{Metadata: map[string]any{"nope": "x"}}, nil},
		{"key with a quote and a backslash", store.Filter{Metadata: map[string]any{`we"ird\key`: "x"}}, []int{4}},
		{"key with a dot is one key", store.Filter{Metadata: map[string]any{"a.b": "dotted"}}, []int{4}},
		{"key that looks like a path", store.Filter{Metadata: map[string]any{"$": true}}, []int{4}},
		{"value min", store.Filter{ValueMin: ptr(5)}, []int{4, 3, 2}},
		{"value max", store.Filter{ValueMax: ptr(0)}, []int{1, 0}},
		{"value range", store.Filter{ValueMin: ptr(0), ValueMax: ptr(7)}, []int{4, 2, 1}},
		{"created after is inclusive", store.Filter{CreatedAfter: at(3)}, []int{4, 3}},
		{"created before is exclusive", store.Filter{CreatedBefore: at(1)}, []int{0}},
		{"combined", store.Filter{TraceIDs: []string{"t1", "t2", "t3"}, Metadata: map[string]any{"_user": "u1"}, ValueMin: ptr(0), CreatedBefore: at(3)}, []int{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.filter.Limit = 100
			page, err := s.ListFeedback(ctx, ws, c.filter)
			if err != nil {
				t.Fatalf("ListFeedback: %v", err)
			}
			var got, want []string
			for _, f := range page.Items {
				got = append(got, f.ID)
			}
			for _, i := range c.want {
				want = append(want, all[i].ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if page.HasMore {
				t.Errorf("HasMore: got true, want false")
			}
		})
	}
	if _, err := s.ListFeedback(ctx, ws, store.Filter{Limit: 1, Metadata: map[string]any{"x": []any{1}}}); store.ErrorCode(err) != store.EINVALID {
		t.Errorf("array filter value: got %v, want %s", err, store.EINVALID)
	}
}

func testListPagingConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	var before []*store.Feedback
	for i := range 95 {
		before = append(before, feedback(ws, i, fmt.Sprint("t", i), i%21-10, nil))
	}
	if err := s.CreateFeedback(ctx, before, nil); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws, 1000+i, "new", 0, nil)}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[string]int{}
	var after *store.Cursor
	for pages := 0; ; pages++ {
		page, err := s.ListFeedback(ctx, ws, store.Filter{Limit: 10, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Items {
			seen[f.ID]++
		}
		if !page.HasMore {
			break
		}
		after = store.CursorOf(page.Items[len(page.Items)-1])
		if pages > 1000 {
			t.Fatal("listing does not end")
		}
	}
	close(stop)
	wg.Wait()
	for _, f := range before {
		if seen[f.ID] != 1 {
			t.Errorf("item %s seen %d times, want 1", f.ID, seen[f.ID])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("item %s repeated %d times", id, n)
		}
	}
}

// tiedRows returns rows of ws in groups that share a created_at (group g
// at clock plus g seconds), 5 per group, whose ids (random, version 4)
// follow neither the groups nor the order within one: the listing order
// must come from the times, and among equal times from the ids alone.
// Values, users and traces vary so every index a listing may walk is
// exercised.
func tiedRows(ws string, groups int) []*store.Feedback {
	var rows []*store.Feedback
	for g := range groups {
		for i := range 5 {
			f := feedback(ws, g, fmt.Sprint("trace-", (g+i)%4), (g*5+i)%21-10, map[string]any{"_user": fmt.Sprint("u", i%2), "region": fmt.Sprint("r", g%3)})
			f.ID = uuid.NewString()
			rows = append(rows, f)
		}
	}
	return rows
}

// listingOrder sorts rows as listings return them: newest first, equal
// times by id, descending (canonical UUID text sorts as the UUID bytes).
func listingOrder(rows []*store.Feedback) []string {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b *store.Feedback) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	ids := make([]string, len(rows))
	for i, f := range rows {
		ids[i] = f.ID
	}
	return ids
}

// listAll pages through a listing with filter f and returns the ids, in
// the order the pages gave them.
func listAll(t *testing.T, s store.Store, ws string, f store.Filter) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		page, err := s.ListFeedback(context.Background(), ws, f)
		if err != nil {
			t.Fatalf("ListFeedback: %v", err)
		}
		if len(page.Items) > f.Limit || (page.HasMore && len(page.Items) != f.Limit) {
			t.Fatalf("page of %d items with HasMore %v, limit %d", len(page.Items), page.HasMore, f.Limit)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if !page.HasMore {
			return ids
		}
		f.After = store.CursorOf(page.Items[len(page.Items)-1])
		if pages > 1000 {
			t.Fatal("listing does not end")
		}
	}
}

// Listings are ordered by created_at, then id, both descending, whatever
// order the ids were issued or stored in; pages of any size, bounded in
// time or not, alone or with other filters, continue exactly where the last
// one ended, also in the middle of rows that share a time.
func testListOrderAcrossPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	rows := tiedRows(ws, 8)
	shuffled := slices.Clone(rows)
	rand.New(rand.NewPCG(8, 8)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); i += 7 {
		if err := s.CreateFeedback(ctx, shuffled[i:min(i+7, len(shuffled))], nil); err != nil {
			t.Fatal(err)
		}
	}
	at := func(n int) *time.Time { x := clock.Add(time.Duration(n) * time.Second); return &x }
	in := func(from, to int) func(f *store.Feedback) bool {
		return func(f *store.Feedback) bool { return !f.CreatedAt.Before(*at(from)) && f.CreatedAt.Before(*at(to)) }
	}
	ptr := func(v int) *int { return &v }
	justAfter4 := at(4).Add(time.Microsecond)
	cases := []struct {
		name   string
		filter store.Filter
		keep   func(f *store.Feedback) bool
	}{
		{"no bounds", store.Filter{}, in(0, 8)},
		{"bounds on tied times", store.Filter{CreatedAfter: at(2), CreatedBefore: at(6)}, in(2, 6)},
		{"created_after alone", store.Filter{CreatedAfter: at(5)}, in(5, 8)},
		{"created_before alone", store.Filter{CreatedBefore: at(3)}, in(0, 3)},
		{"one instant", store.Filter{CreatedAfter: at(4), CreatedBefore: &justAfter4}, in(4, 5)},
		{"empty range", store.Filter{CreatedAfter: at(4), CreatedBefore: at(4)}, in(4, 4)},
		{"bounds and value", store.Filter{CreatedAfter: at(1), CreatedBefore: at(7), ValueMin: ptr(-5)},
			func(f *store.Feedback) bool { return in(1, 7)(f) && f.Value >= -5 }},
		{"bounds and special key", store.Filter{CreatedAfter: at(1), CreatedBefore: at(7), Metadata: map[string]any{"_user": "u0"}},
			func(f *store.Feedback) bool { return in(1, 7)(f) && f.Metadata["_user"] == "u0" }},
		{"special key alone", store.Filter{Metadata: map[string]any{"_user": "u1"}},
			func(f *store.Feedback) bool { return f.Metadata["_user"] == "u1" }},
		{"bounds and other key", store.Filter{CreatedAfter: at(1), CreatedBefore: at(7), Metadata: map[string]any{"region": "r1"}},
			func(f *store.Feedback) bool { return in(1, 7)(f) && f.Metadata["region"] == "r1" }},
		{"bounds and traces", store.Filter{CreatedAfter: at(1), CreatedBefore: at(7), TraceIDs: []string{"trace-0", "trace-3"}},
			func(f *store.Feedback) bool { return in(1, 7)(f) && (f.TraceID == "trace-0" || f.TraceID == "trace-3") }},
		{"traces and special key", store.Filter{TraceIDs: []string{"trace-1", "trace-2"}, Metadata: map[string]any{"_user": "u0"}},
			func(f *store.Feedback) bool {
				return (f.TraceID == "trace-1" || f.TraceID == "trace-2") && f.Metadata["_user"] == "u0"
			}},
	}
	for _, c := range cases {
		want := listingOrder(slices.DeleteFunc(slices.Clone(rows), func(f *store.Feedback) bool { return !c.keep(f) }))
		for _, limit := range []int{1, 2, 3, 7, 100} {
			t.Run(fmt.Sprintf("%s/limit=%d", c.name, limit), func(t *testing.T) {
				f := c.filter
				f.Limit = limit
				if got := listAll(t, s, ws, f); !slices.Equal(got, want) {
					t.Errorf("got  %v\nwant %v", got, want)
				}
			})
		}
	}
}

// A listing bounded in time, paged while rows are written inside its range
// (at the very times of rows it has, with ids that fall anywhere among
// theirs) and outside it, lists every row it had when it began exactly
// once, never a row twice, and no row out of its range.
func testListBoundedPagingConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	rows := tiedRows(ws, 12)
	if err := s.CreateFeedback(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	from, to := clock.Add(3*time.Second), clock.Add(9*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := feedback(ws, i%12, "new", 0, nil) // a time of the existing rows
			f.ID = uuid.NewString()
			if err := s.CreateFeedback(ctx, []*store.Feedback{f}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var listings [][]string
	for range 3 { // several listings, so some pages are read while the writer is busy
		listings = append(listings, listAll(t, s, ws, store.Filter{CreatedAfter: &from, CreatedBefore: &to, Limit: 3}))
	}
	close(stop)
	wg.Wait()
	for l, ids := range listings {
		count := map[string]int{}
		for _, id := range ids {
			count[id]++
		}
		for _, f := range rows {
			want := 0
			if !f.CreatedAt.Before(from) && f.CreatedAt.Before(to) {
				want = 1
			}
			if count[f.ID] != want {
				t.Errorf("listing %d: row %s at %s seen %d times, want %d", l, f.ID, f.CreatedAt.Format(time.TimeOnly), count[f.ID], want)
			}
		}
		for id, n := range count {
			if n > 1 {
				t.Errorf("listing %d: row %s repeated %d times", l, id, n)
			}
			f, err := s.GetFeedback(ctx, ws, id)
			if err != nil {
				t.Fatal(err)
			}
			if f.CreatedAt.Before(from) || !f.CreatedAt.Before(to) {
				t.Errorf("listing %d: row %s at %s is out of range", l, id, f.CreatedAt.Format(time.TimeOnly))
			}
		}
	}
}

func testConcurrentWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	const writers, each = 16, 20
	ids := make(chan string, writers*each*3)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				bulk := []*store.Feedback{feedback(ws, i, fmt.Sprint("w", w), 1, nil)}
				if i%4 == 0 {
					bulk = append(bulk, feedback(ws, i, fmt.Sprint("w", w), 2, nil), feedback(ws, i, fmt.Sprint("w", w), 3, nil))
				}
				if err := s.CreateFeedback(ctx, bulk, nil); err != nil {
					t.Error(err)
					return
				}
				for _, f := range bulk {
					ids <- f.ID
				}
			}
		}()
	}
	wg.Wait()
	close(ids)
	n := 0
	for id := range ids {
		n++
		if _, err := s.GetFeedback(ctx, ws, id); err != nil {
			t.Errorf("acknowledged %s: %v", id, err)
		}
	}
	if want := writers * (each + 2*each/4); n != want {
		t.Errorf("acknowledged rows: got %d, want %d", n, want)
	}
}

// testConcurrentWritesFailAlone: stores may write concurrent writes
// together (a group commit), but each write still succeeds or fails as a
// whole, on its own: among many concurrent writes, a bulk holding a taken
// id, a write under a used idempotency key and writes whose callers left
// before they were made store nothing, and every other write is stored
// whole, once.
func testConcurrentWritesFailAlone(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	idem := func(key string) *store.Idempotency {
		return &store.Idempotency{Scope: ws, Key: key, Fingerprint: []byte(key), Message: "m", At: clock}
	}
	taken := feedback(ws, 0, "taken", 1, nil)
	if err := s.CreateFeedback(ctx, []*store.Feedback{taken}, idem("used")); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()

	type write struct {
		ctx  context.Context
		fs   []*store.Feedback
		idem *store.Idempotency
		want func(error) bool // the outcome this write must get
	}
	ok := func(err error) bool { return err == nil }
	var writes []write
	for i := range 240 {
		w := write{ctx: ctx, fs: []*store.Feedback{feedback(ws, i, fmt.Sprint("t", i), 1, map[string]any{"_user": fmt.Sprint("u", i)})}, want: ok}
		switch {
		case i%4 == 1:
			w.fs = append(w.fs, feedback(ws, i, fmt.Sprint("t", i), 2, nil))
		case i%4 == 2:
			w.idem = idem(fmt.Sprint("k", i))
		}
		switch i {
		case 60: // a bulk with a taken id
			dup := *taken
			w.fs = append(w.fs, &dup)
			w.want = func(err error) bool { return store.ErrorCode(err) == store.ECONFLICT }
		case 120: // a key already used
			w.idem = idem("used")
			w.want = func(err error) bool { return errors.Is(err, store.ErrIdempotencyKeyUsed) }
		case 30, 90, 180: // the caller left
			w.ctx = gone
			w.want = func(err error) bool { return err != nil }
		}
		writes = append(writes, w)
	}
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = s.CreateFeedback(w.ctx, w.fs, w.idem) })
	}
	wg.Wait()

	stored := 0
	for i, w := range writes {
		if !w.want(errs[i]) {
			t.Errorf("write %d: got %v", i, errs[i])
		}
		for _, f := range w.fs {
			if f.ID == taken.ID {
				continue
			}
			got, err := s.GetFeedback(ctx, ws, f.ID)
			switch {
			case errs[i] != nil && store.ErrorCode(err) != store.ENOTFOUND:
				t.Errorf("write %d failed (%v), yet its %s is there: %v", i, errs[i], f.TraceID, err)
			case errs[i] == nil && err != nil:
				t.Errorf("write %d succeeded, yet its %s is not stored: %v", i, f.TraceID, err)
			case errs[i] == nil:
				stored++
				assertSame(t, got, f)
			}
		}
		if w.idem != nil && errs[i] == nil {
			if r, err := s.IdempotentResult(ctx, ws, w.idem.Key); err != nil || fmt.Sprint(r.IDs) != fmt.Sprint(feedbackIDs(w.fs)) {
				t.Errorf("write %d: its key records %+v, %v", i, r, err)
			}
		}
	}
	// Nothing was stored twice, and nothing else.
	all := listAll(t, s, ws, store.Filter{Limit: 100})
	if len(all) != stored+1 {
		t.Errorf("%d rows in the workspace, want the %d acknowledged and the taken one", len(all), stored)
	}
}

func feedbackIDs(fs []*store.Feedback) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "team")
	if n, err := s.CountAPIKeys(ctx); err != nil || n != 0 {
		t.Fatalf("CountAPIKeys on empty store: got %d, %v; want 0", n, err)
	}
	exp := clock.Add(24 * time.Hour)
	k := &store.APIKey{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, Name: "ci", Hash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: clock, ExpiresAt: &exp}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	dup := *k
	dup.ID = uuid.Must(uuid.NewV7()).String()
	if err := s.CreateAPIKey(ctx, &dup); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("same hash twice: got %v, want %s", err, store.ECONFLICT)
	}
	got, err := s.APIKeyByHash(ctx, k.Hash)
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if got.ID != k.ID || got.WorkspaceID != ws || got.WorkspaceName != "team" || got.Name != "ci" ||
		!got.CreatedAt.Equal(clock) || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.RevokedAt != nil {
		t.Errorf("APIKeyByHash: got %+v", got)
	}
	if _, err := s.APIKeyByHash(ctx, []byte("nope")); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("unknown hash: got %v, want %s", err, store.ENOTFOUND)
	}
	if err := s.RevokeAPIKey(ctx, k.ID, clock.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	got, err = s.APIKeyByHash(ctx, k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(clock.Add(time.Minute)) {
		t.Errorf("RevokedAt: got %v", got.RevokedAt)
	}
	if err := s.RevokeAPIKey(ctx, uuid.Must(uuid.NewV7()).String(), clock); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("revoke unknown: got %v, want %s", err, store.ENOTFOUND)
	}
	keys, err := s.ListAPIKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Errorf("ListAPIKeys: got %v, %v", keys, err)
	}
	if n, err := s.CountAPIKeys(ctx); err != nil || n != 1 {
		t.Errorf("CountAPIKeys: got %d, %v; want 1", n, err)
	}

	byID, err := s.APIKeyByID(ctx, k.ID)
	if err != nil || byID.ID != k.ID || byID.WorkspaceName != "team" || byID.RevokedAt == nil {
		t.Errorf("APIKeyByID: got %+v, %v", byID, err)
	}
	if _, err := s.APIKeyByID(ctx, uuid.Must(uuid.NewV7()).String()); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("APIKeyByID unknown: got %v, want %s", err, store.ENOTFOUND)
	}
	used := clock.Add(2 * time.Hour)
	if err := s.TouchAPIKey(ctx, k.ID, used); err != nil {
		t.Fatalf("TouchAPIKey: %v", err)
	}
	if err := s.TouchAPIKey(ctx, k.ID, clock); err != nil { // an older use never moves it back
		t.Fatalf("TouchAPIKey: %v", err)
	}
	if got, _ := s.APIKeyByID(ctx, k.ID); got == nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("LastUsedAt: got %+v, want %v", got, used)
	}
	if err := s.TouchAPIKey(ctx, uuid.Must(uuid.NewV7()).String(), used); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("TouchAPIKey unknown: got %v, want %s", err, store.ENOTFOUND)
	}
}

func testUpsertTokenFeedback(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := workspace(t, s, "a"), workspace(t, s, "b")
	first := feedback(a, 0, "trace", 1, map[string]any{"_user": "u"})
	got, err := s.UpsertTokenFeedback(ctx, "tok-1", first, nil)
	if err != nil {
		t.Fatalf("first UpsertTokenFeedback: %v", err)
	}
	assertSame(t, got, first)

	// The re-vote: new value, weight and metadata, same row.
	second := feedback(a, 60, "other-trace-ignored", -1, map[string]any{"_user": "u", "reason": "changed"})
	second.Weight = 0.5
	got, err = s.UpsertTokenFeedback(ctx, "tok-1", second, nil)
	if err != nil {
		t.Fatalf("second UpsertTokenFeedback: %v", err)
	}
	want := *first
	want.Value, want.Weight, want.Metadata, want.UpdatedAt = -1, 0.5, second.Metadata, second.UpdatedAt
	assertSame(t, got, &want)
	if stored, err := s.GetFeedback(ctx, a, first.ID); err != nil {
		t.Fatal(err)
	} else {
		assertSame(t, stored, &want)
	}
	if _, err := s.GetFeedback(ctx, a, second.ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("the re-vote's own id: got %v, want not found", err)
	}

	// Another token, or the same token id in another workspace, is another row.
	other := feedback(a, 1, "trace", 3, nil)
	if got, err := s.UpsertTokenFeedback(ctx, "tok-2", other, nil); err != nil || got.ID != other.ID {
		t.Errorf("second token: got %+v, %v", got, err)
	}
	inB := feedback(b, 1, "trace", 3, nil)
	if got, err := s.UpsertTokenFeedback(ctx, "tok-1", inB, nil); err != nil || got.ID != inB.ID {
		t.Errorf("same token id in another workspace: got %+v, %v", got, err)
	}
	page, err := s.ListFeedback(ctx, a, store.Filter{Limit: 10})
	if err != nil || len(page.Items) != 2 {
		t.Errorf("workspace a holds %d rows (%v), want 2", len(page.Items), err)
	}
}

func testSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Secret(ctx, "signing", func() []byte { return []byte(fmt.Sprint("candidate-", i)) })
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		}()
	}
	wg.Wait()
	for i := range got {
		if string(got[i]) != string(got[0]) || len(got[0]) == 0 {
			t.Fatalf("callers got different secrets: %q", got)
		}
	}
	other, err := s.Secret(ctx, "other", func() []byte { return []byte("x") })
	if err != nil || string(other) != "x" {
		t.Errorf("a second name: got %q, %v", other, err)
	}
}

func testIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	ws := workspace(t, s, "a")
	idem := func(key string) *store.Idempotency {
		return &store.Idempotency{Scope: ws, Key: key, Fingerprint: []byte("fp-" + key), Message: "feedback recorded", At: clock}
	}
	first := []*store.Feedback{feedback(ws, 0, "t", 1, nil), feedback(ws, 1, "t", 2, nil)}
	if err := s.CreateFeedback(ctx, first, idem("k1")); err != nil {
		t.Fatalf("CreateFeedback with a key: %v", err)
	}
	r, err := s.IdempotentResult(ctx, ws, "k1")
	if err != nil {
		t.Fatalf("IdempotentResult: %v", err)
	}
	if string(r.Fingerprint) != "fp-k1" || r.Message != "feedback recorded" || fmt.Sprint(r.IDs) != fmt.Sprint([]string{first[0].ID, first[1].ID}) || !r.CreatedAt.Equal(clock) {
		t.Errorf("IdempotentResult: got %+v", r)
	}
	// The same key again: refused, and nothing of the second write stays.
	again := []*store.Feedback{feedback(ws, 2, "t", 3, nil)}
	if err := s.CreateFeedback(ctx, again, idem("k1")); !errors.Is(err, store.ErrIdempotencyKeyUsed) {
		t.Fatalf("second write under k1: got %v, want ErrIdempotencyKeyUsed", err)
	}
	if _, err := s.GetFeedback(ctx, ws, again[0].ID); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("the refused write was stored: %v", err)
	}
	// The same key in another scope is another key.
	other := &store.Idempotency{Scope: "elsewhere", Key: "k1", Fingerprint: []byte("x"), Message: "m", At: clock}
	if err := s.CreateFeedback(ctx, again, other); err != nil {
		t.Errorf("k1 in another scope: %v", err)
	}
	if _, err := s.IdempotentResult(ctx, ws, "nope"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("unknown key: got %v, want %s", err, store.ENOTFOUND)
	}

	// Concurrent writes under one key: exactly one is stored.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws, 10+i, "race", 1, nil)}, idem("race"))
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
			case !errors.Is(err, store.ErrIdempotencyKeyUsed):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	page, err := s.ListFeedback(ctx, ws, store.Filter{TraceIDs: []string{"race"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if won != 1 || len(page.Items) != 1 {
		t.Errorf("concurrent writes under one key: %d succeeded, %d stored; want 1 and 1", won, len(page.Items))
	}

	// Updates and token upserts record their key too.
	upd, err := s.UpdateFeedback(ctx, ws, first[0].ID, store.Update{Value: 9, UpdatedAt: clock}, idem("u1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFeedback(ctx, ws, first[0].ID, store.Update{Value: -9, UpdatedAt: clock}, idem("u1")); !errors.Is(err, store.ErrIdempotencyKeyUsed) {
		t.Errorf("second update under u1: got %v", err)
	}
	if got, _ := s.GetFeedback(ctx, ws, upd.ID); got == nil || got.Value != 9 {
		t.Errorf("the refused update changed the row: %+v", got)
	}
	tok, err := s.UpsertTokenFeedback(ctx, "tok", feedback(ws, 3, "t", 4, nil), idem("tk"))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.IdempotentResult(ctx, ws, "tk"); r == nil || len(r.IDs) != 1 || r.IDs[0] != tok.ID {
		t.Errorf("token upsert result: %+v", r)
	}

	// Purging forgets keys older than the given time, and only those.
	late := &store.Idempotency{Scope: ws, Key: "late", Fingerprint: []byte("x"), Message: "m", At: clock.Add(48 * time.Hour)}
	if err := s.CreateFeedback(ctx, []*store.Feedback{feedback(ws, 4, "t", 1, nil)}, late); err != nil {
		t.Fatal(err)
	}
	if err := s.PurgeIdempotency(ctx, clock.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IdempotentResult(ctx, ws, "k1"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("k1 after purge: got %v, want gone", err)
	}
	if _, err := s.IdempotentResult(ctx, ws, "late"); err != nil {
		t.Errorf("late after purge: %v", err)
	}
}
