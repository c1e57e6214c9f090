package sqlite

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// The group cells always equal the cells of the filed rows computed from
// scratch, through partial folds, updates that move rows between values,
// deletes and token upserts; and groups read from them equal groups
// counted from the rows, for ranges that cut chains anywhere.
func TestGroupCellsFollowEveryWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "feedbackd.db"), Options{FoldAfter: -1, FoldRows: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rng := rand.New(rand.NewPCG(3, 5))
	ws, err := s.EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.EnsureWorkspace(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	prompt := func() map[string]any {
		m := map[string]any{"_prompt": fmt.Sprint("p", rng.IntN(3)), "_organisation": fmt.Sprint("o", rng.IntN(2)),
			"_environment": fmt.Sprint("e", rng.IntN(2))}
		if rng.IntN(4) == 0 {
			delete(m, "_prompt")
		}
		return m
	}
	var ids []string
	for batch := range 6 {
		var fs []*store.Feedback
		for range 80 {
			// Chains of a trace mostly within minutes, some days apart.
			at := base.Add(time.Duration(rng.IntN(4))*24*time.Hour + time.Duration(rng.Int64N(int64(3*time.Hour))))
			w := ws.ID
			if rng.IntN(8) == 0 {
				w = other.ID
			}
			f := &store.Feedback{ID: fmt.Sprintf("f%d-%03d", batch, len(fs)), WorkspaceID: w, TraceID: fmt.Sprint("t", rng.IntN(25)),
				Value: rng.IntN(21) - 10, Weight: float64(rng.IntN(5)) / 4, Metadata: prompt(), CreatedAt: at, UpdatedAt: at}
			fs = append(fs, f)
			ids = append(ids, f.ID)
		}
		if err := s.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
		if batch%2 == 1 {
			if err := s.Fold(ctx); err != nil {
				t.Fatal(err)
			}
		}
		checkGroups(t, s, ws.ID, base, rng)
	}
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i, id := range ids[:120] {
		workspace := ws.ID
		if _, err := s.GetFeedback(ctx, ws.ID, id); err != nil {
			workspace = other.ID
		}
		switch i % 3 {
		case 0:
			if err := s.DeleteFeedback(ctx, workspace, id); err != nil {
				t.Fatal(err)
			}
		default:
			w := float64(rng.IntN(5)) / 4
			u := store.Update{Value: rng.IntN(21) - 10, Weight: &w, UpdatedAt: base}
			if i%3 == 1 {
				u.Metadata, u.MetadataSet = prompt(), true
			}
			if _, err := s.UpdateFeedback(ctx, workspace, id, u, nil); err != nil {
				t.Fatal(err)
			}
		}
		if i%40 == 39 {
			checkGroups(t, s, ws.ID, base, rng)
		}
	}
	for i := range 3 {
		at := base.Add(time.Duration(i) * time.Hour)
		f := &store.Feedback{ID: fmt.Sprint("tok-", i), WorkspaceID: ws.ID, TraceID: "t3", Value: i, Weight: 1, Metadata: prompt(), CreatedAt: at, UpdatedAt: at}
		if _, err := s.UpsertTokenFeedback(ctx, "token", f, nil); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := s.Fold(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkGroups(t, s, ws.ID, base, rng)
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	checkGroups(t, s, ws.ID, base, rng)
}

// checkGroups compares the stored group cells with the cells of the filed
// rows, and groups of random ranges with groups counted from the rows.
func checkGroups(t *testing.T, s *Store, workspaceID string, base time.Time, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	var mark int64
	if err := s.read.QueryRowContext(ctx, `SELECT folded FROM group_fold`).Scan(&mark); err != nil {
		t.Fatal(err)
	}
	rows, rowids, err := scanChains(s.read.QueryContext(ctx, `SELECT `+chainColumns+` FROM feedback AS f`))
	if err != nil {
		t.Fatal(err)
	}
	want := store.GroupCells{}
	want.AddChains(upTo(rows, rowids, mark), 1)
	stored, err := s.read.QueryContext(ctx, `SELECT workspace_id, dim, span, unit, dim_value, prev_slot, n, sum_weighted FROM feedback_group_cells`)
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	storetest.EqualGroupCells(t, stored, want)

	for range 12 {
		from := base.Add(time.Duration(rng.Int64N(int64(4 * 24 * time.Hour))))
		if rng.IntN(4) == 0 {
			from = from.Truncate(15 * time.Minute)
		}
		to := from.Add(time.Duration(rng.Int64N(int64(3 * 24 * time.Hour))))
		for dim, key := range store.RollupKeys {
			// Unfiltered, and under a filter on _environment (for the
			// other keys): the cells of each.
			for _, env := range []string{"", "e1"} {
				q := store.AnalyticsQuery{From: from, To: to, BucketSize: 900}
				selected := rows
				if env != "" && key != "_environment" {
					q.Metadata = map[string]any{"_environment": env}
					selected = nil
					for _, r := range rows {
						if r.Values[2] != nil && *r.Values[2] == env {
							selected = append(selected, r)
						}
					}
				}
				exact := store.GroupTallies{}
				exact.AddExact(selected, workspaceID, dim, from.UnixMicro(), to.UnixMicro(), 1)
				groups, total, err := s.MetadataGroups(ctx, workspaceID, key, q, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				if total != len(exact) {
					t.Fatalf("%s %v over [%v, %v]: %d groups, want %d", key, q.Metadata, from, to, total, len(exact))
				}
				for _, g := range groups {
					e := exact[g.Value]
					if e == nil || e.Requests != g.Requests || math.Abs(e.SumWeighted/float64(e.N)-g.AvgWeighted) > 1e-9 {
						t.Fatalf("%s %v over [%v, %v], mark %d: got %+v, want %+v", key, q.Metadata, from, to, mark, g, e)
					}
				}
			}
		}
	}
}

// Rows the writer has not filed in the group cells yet, more of them than
// groups read whole (a database upgraded with rows in it, before it has
// caught up), make groups read the rows instead; filing them, a chunk per
// transaction, then gives the same answers from the cells.
func TestGroupsBeforeAndAfterCatchingUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "feedbackd.db"), Options{FoldAfter: -1, FoldRows: 1 << 30, groupChunk: 700, groupLag: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ws, err := s.EnsureWorkspace(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for b := range 3 {
		fs := make([]*store.Feedback, 500)
		for i := range fs {
			at := base.Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
			fs[i] = &store.Feedback{ID: fmt.Sprintf("f%02d-%04d", b, i), WorkspaceID: ws.ID, TraceID: fmt.Sprint("t", rng.IntN(300)),
				Value: rng.IntN(21) - 10, Weight: 1, Metadata: map[string]any{"_prompt": fmt.Sprint("p", rng.IntN(4))}, CreatedAt: at, UpdatedAt: at}
		}
		if err := s.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
	}
	q := store.AnalyticsQuery{From: base.Add(7 * time.Hour), To: base.Add(31 * time.Hour), BucketSize: 900}
	gq, ok := q.GroupCellsServe("_prompt")
	if !ok {
		t.Fatal("group cells do not serve unfiltered groups by _prompt")
	}
	if _, _, ok, err := s.groupsFromCells(ctx, ws.ID, gq, q, 0, 10); ok || err != nil {
		t.Fatalf("groups read the cells with every row unfiled (ok %v, %v)", ok, err)
	}
	before, total, err := s.MetadataGroups(ctx, ws.ID, "_prompt", q, 0, 10)
	if err != nil || total != 4 {
		t.Fatalf("%d groups, %v", total, err)
	}
	if err := s.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	after, _, ok, err := s.groupsFromCells(ctx, ws.ID, gq, q, 0, 10)
	if !ok || err != nil {
		t.Fatalf("groups did not read the cells once every row was filed (ok %v, %v)", ok, err)
	}
	for i := range before {
		if b, a := before[i], after[i]; b.Value != a.Value || b.Requests != a.Requests || math.Abs(b.AvgWeighted-a.AvgWeighted) > 1e-9 || !b.LastSeen.Equal(a.LastSeen) {
			t.Errorf("group %d: %+v from the rows, %+v from the cells", i, b, a)
		}
	}
	checkGroups(t, s, ws.ID, base, rng)
}
