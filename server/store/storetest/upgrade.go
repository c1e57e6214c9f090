package storetest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// v010Answers is what feedbackd 0.1.0 answered on the databases it made
// for the upgrade tests (sqlite/testdata/v0.1.0.db and
// postgres/testdata/v0.1.0.sql); testdata/v0.1.0-fixture.go.txt is the
// program that made both, and says how.
//
//go:embed testdata/v0.1.0-answers.json
var v010Answers []byte

// Upgrade is how a backend's test reaches a database an earlier release
// made.
type Upgrade struct {
	// Open opens the database with the current store, which migrates it
	// in place. It is called twice: the second time finds it migrated.
	Open func(t *testing.T) store.Store
	// CheckDerived checks that the database's derived data is exactly
	// what its rows give (EqualDerived). It is called with the store
	// closed.
	CheckDerived func(t *testing.T)
}

// CheckUpgradeFrom010 checks that a database made by feedbackd 0.1.0
// opens with the current store and answers as 0.1.0 did: every recorded
// analytics answer and listing, the feedback, keys, secret and
// idempotency record it holds; that its derived data is what its rows
// give; and that writes on its traces through the current store (rows
// before and after the existing ones, an update and a delete of a
// trace's first feedback, a token's new vote) keep the derived data so.
//
// Failures are reported at the step that failed, not at the caller.
func CheckUpgradeFrom010(t *testing.T, u Upgrade) {
	var a upgradeAnswers
	d := json.NewDecoder(bytes.NewReader(v010Answers))
	d.DisallowUnknownFields()
	if err := d.Decode(&a); err != nil {
		t.Fatalf("read the 0.1.0 answers: %v", err)
	}

	s := u.Open(t)
	ws := workspaceIDs(t, s, a)
	for _, w := range a.Workspaces {
		checkWorkspaceAnswers(t, s, ws[w.Name], a.Query, w)
	}
	checkStoredFeedback(t, s, ws, a)
	checkKeys(t, s, ws, a)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	u.CheckDerived(t)
	if t.Failed() {
		return
	}

	s = u.Open(t)
	writeOn010Traces(t, s, ws, a)
	// The other workspace was not written to: it answers as before.
	for _, w := range a.Workspaces {
		if w.Name != a.Token.Workspace {
			checkWorkspaceAnswers(t, s, ws[w.Name], a.Query, w)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	u.CheckDerived(t)
}

// upgradeAnswers is the answers file (see v0.1.0-fixture.go.txt, which
// writes it).
type upgradeAnswers struct {
	MadeBy string        `json:"made_by"`
	Query  answeredQuery `json:"query"`
	// BigTrace is the trace with hundreds of rows (in each workspace).
	BigTrace   string             `json:"big_trace"`
	Workspaces []workspaceAnswers `json:"workspaces"`
	Feedback   []answeredFeedback `json:"feedback"`
	Deleted    []answeredFeedback `json:"deleted"`
	APIKeys    []answeredKey      `json:"api_keys"`
	Secret     struct {
		Name  string `json:"name"`
		Value []byte `json:"value"`
	} `json:"secret"`
	Idempotent struct {
		Scope       string    `json:"scope"`
		Key         string    `json:"key"`
		Fingerprint []byte    `json:"fingerprint"`
		Message     string    `json:"message"`
		IDs         []string  `json:"ids"`
		CreatedAt   time.Time `json:"created_at"`
	} `json:"idempotent"`
	Token struct {
		Workspace  string `json:"workspace"`
		TokenID    string `json:"token_id"`
		FeedbackID string `json:"feedback_id"`
		TraceID    string `json:"trace_id"`
	} `json:"token"`
}

// answeredQuery is the range and buckets of every recorded analytics
// answer: the fixture's whole range, in UTC days.
type answeredQuery struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	BucketSize  int64     `json:"bucket_size"`
	BucketShift int64     `json:"bucket_shift"`
}

type workspaceAnswers struct {
	Name   string `json:"name"`
	Groups []struct {
		Key    string          `json:"key"`
		Offset int             `json:"offset"`
		Limit  int             `json:"limit"`
		Total  int             `json:"total"`
		Groups []answeredGroup `json:"groups"`
	} `json:"groups"`
	Cells []struct {
		Filter map[string]any `json:"filter"`
		Cells  []struct {
			Bucket      int64   `json:"bucket"`
			Value       int     `json:"value"`
			Count       int64   `json:"count"`
			SumWeighted float64 `json:"sum_weighted"`
		} `json:"cells"`
	} `json:"cells"`
	List struct {
		TraceID string `json:"trace_id"`
		Limit   int    `json:"limit"`
		Pages   []struct {
			Items   []answeredFeedback `json:"items"`
			HasMore bool               `json:"has_more"`
		} `json:"pages"`
	} `json:"list"`
}

type answeredGroup struct {
	MetaValue   string    `json:"value"`
	Requests    int64     `json:"requests"`
	AvgWeighted float64   `json:"avg_weighted"`
	LastSeen    time.Time `json:"last_seen"`
}

// answeredFeedback is a feedback as the answers keep it: its workspace by
// name (empty in a listing, which is of one workspace), its metadata
// with numbers as JSON values (normalizeJSON).
type answeredFeedback struct {
	Workspace string          `json:"workspace"`
	ID        string          `json:"id"`
	TraceID   string          `json:"trace_id"`
	Value     int             `json:"value"`
	Weight    float64         `json:"weight"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

type answeredKey struct {
	Workspace  string     `json:"workspace"`
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Secret     string     `json:"secret"`
	Hash       []byte     `json:"hash"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// workspaceIDs maps the fixture's workspace names to their ids (each
// store made its own).
func workspaceIDs(t *testing.T, s store.Store, a upgradeAnswers) map[string]string {
	t.Helper()
	list, err := s.ListWorkspaces(context.Background())
	if err != nil {
		t.Fatalf("ListWorkspaces: %v", err)
	}
	ws := map[string]string{}
	for _, w := range list {
		ws[w.Name] = w.ID
	}
	if len(ws) != len(a.Workspaces) {
		t.Errorf("workspaces %v, want %d", ws, len(a.Workspaces))
	}
	for _, w := range a.Workspaces {
		if ws[w.Name] == "" {
			t.Fatalf("workspace %q is missing (have %v)", w.Name, ws)
		}
	}
	return ws
}

// checkWorkspaceAnswers asks s what 0.1.0 was asked about a workspace
// and compares the answers: groups by each recorded key, day cells with
// and without a filter, and a big trace's listing page by page.
func checkWorkspaceAnswers(t *testing.T, s store.Store, wsID string, r answeredQuery, w workspaceAnswers) {
	t.Helper()
	ctx := context.Background()
	q := store.AnalyticsQuery{From: r.From, To: r.To, BucketSize: r.BucketSize, BucketShift: r.BucketShift}
	for _, want := range w.Groups {
		got, total, err := s.MetadataGroups(ctx, wsID, want.Key, q, want.Offset, want.Limit)
		if err != nil {
			t.Errorf("%s: groups by %s: %v", w.Name, want.Key, err)
			continue
		}
		if total != want.Total {
			t.Errorf("%s: groups by %s: total %d, want %d", w.Name, want.Key, total, want.Total)
		}
		if len(got) != len(want.Groups) {
			t.Errorf("%s: groups by %s: got %d groups %+v, want %d %+v", w.Name, want.Key, len(got), got, len(want.Groups), want.Groups)
			continue
		}
		for i, g := range got {
			wg := want.Groups[i]
			if g.MetaValue != wg.MetaValue || g.Requests != wg.Requests || math.Abs(g.AvgWeighted-wg.AvgWeighted) > 1e-9 || !g.LastSeen.Equal(wg.LastSeen) {
				t.Errorf("%s: groups by %s, #%d: got %+v, want %+v", w.Name, want.Key, i, g, wg)
			}
		}
	}
	for _, want := range w.Cells {
		cq := q
		cq.Metadata = want.Filter
		got, err := s.FeedbackCells(ctx, wsID, cq)
		if err != nil {
			t.Errorf("%s: cells filtered by %v: %v", w.Name, want.Filter, err)
			continue
		}
		slices.SortFunc(got, func(a, b store.Cell) int {
			if a.Bucket != b.Bucket {
				return int(a.Bucket - b.Bucket)
			}
			return a.Value - b.Value
		})
		if len(got) != len(want.Cells) {
			t.Errorf("%s: cells filtered by %v: got %d cells, want %d", w.Name, want.Filter, len(got), len(want.Cells))
			continue
		}
		for i, c := range got {
			wc := want.Cells[i]
			if c.Bucket != wc.Bucket || c.Value != wc.Value || c.Count != wc.Count || math.Abs(c.SumWeighted-wc.SumWeighted) > 1e-9 {
				t.Errorf("%s: cells filtered by %v, #%d: got %+v, want %+v", w.Name, want.Filter, i, c, wc)
			}
		}
	}
	f := store.Filter{TraceIDs: []string{w.List.TraceID}, Limit: w.List.Limit}
	for i, want := range w.List.Pages {
		p, err := s.ListFeedback(ctx, wsID, f)
		if err != nil {
			t.Errorf("%s: list %s, page %d: %v", w.Name, w.List.TraceID, i, err)
			return
		}
		if p.HasMore != want.HasMore || len(p.Items) != len(want.Items) {
			t.Errorf("%s: list %s, page %d: got %d items (more: %v), want %d (more: %v)",
				w.Name, w.List.TraceID, i, len(p.Items), p.HasMore, len(want.Items), want.HasMore)
			return
		}
		for j, got := range p.Items {
			checkFeedback(t, got, wsID, want.Items[j])
		}
		if !p.HasMore {
			return
		}
		f.After = store.CursorOf(p.Items[len(p.Items)-1])
	}
}

// checkFeedback compares a stored feedback with an answered one.
func checkFeedback(t *testing.T, got *store.Feedback, wsID string, want answeredFeedback) {
	t.Helper()
	if got.ID != want.ID || got.WorkspaceID != wsID || got.TraceID != want.TraceID || got.Value != want.Value ||
		got.Weight != want.Weight || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("feedback %s: got %+v, want %+v (workspace %s)", want.ID, got, want, wsID)
	}
	if g, w := normalizeJSON(t, got.Metadata), normalizeJSON(t, want.Metadata); g != w {
		t.Errorf("feedback %s: metadata %s, want %s", want.ID, g, w)
	}
}

// normalizeJSON renders v as JSON with every number a float64, so that
// metadata compares by JSON value (jsonb respells 1e2 as 100).
func normalizeJSON(t *testing.T, v any) string {
	t.Helper()
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var value any
	if err := json.Unmarshal(b, &value); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// checkStoredFeedback gets the recorded feedback by id, and the deleted
// ones not.
func checkStoredFeedback(t *testing.T, s store.Store, ws map[string]string, a upgradeAnswers) {
	t.Helper()
	ctx := context.Background()
	for _, want := range a.Feedback {
		got, err := s.GetFeedback(ctx, ws[want.Workspace], want.ID)
		if err != nil {
			t.Errorf("GetFeedback(%s, %s): %v", want.Workspace, want.ID, err)
			continue
		}
		checkFeedback(t, got, ws[want.Workspace], want)
	}
	for _, d := range a.Deleted {
		if _, err := s.GetFeedback(ctx, ws[d.Workspace], d.ID); store.ErrorCode(err) != store.ENOTFOUND {
			t.Errorf("GetFeedback(%s, %s) of a deleted feedback: got %v, want %s", d.Workspace, d.ID, err, store.ENOTFOUND)
		}
	}
	r, err := s.IdempotentResult(ctx, a.Idempotent.Scope, a.Idempotent.Key)
	if err != nil {
		t.Fatalf("IdempotentResult: %v", err)
	}
	want := a.Idempotent
	if !bytes.Equal(r.Fingerprint, want.Fingerprint) || r.Message != want.Message || !slices.Equal(r.IDs, want.IDs) || !r.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("IdempotentResult: got %+v, want %+v", r, want)
	}
}

// checkKeys finds each key by its hash and the secret by its name.
func checkKeys(t *testing.T, s store.Store, ws map[string]string, a upgradeAnswers) {
	t.Helper()
	ctx := context.Background()
	sameTime := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
	for _, want := range a.APIKeys {
		got, err := s.APIKeyByHash(ctx, want.Hash)
		if err != nil {
			t.Errorf("APIKeyByHash(key %s): %v", want.Name, err)
			continue
		}
		if got.ID != want.ID || got.WorkspaceID != ws[want.Workspace] || got.WorkspaceName != want.Workspace || got.Name != want.Name ||
			!bytes.Equal(got.Hash, want.Hash) || !got.CreatedAt.Equal(want.CreatedAt) ||
			!sameTime(got.ExpiresAt, want.ExpiresAt) || !sameTime(got.RevokedAt, want.RevokedAt) || !sameTime(got.LastUsedAt, want.LastUsedAt) {
			t.Errorf("APIKeyByHash(key %s): got %+v, want %+v", want.Name, got, want)
		}
	}
	// A store may generate a value before it looks (it then keeps the
	// stored one): only the answer tells.
	secret, err := s.Secret(ctx, a.Secret.Name, func() []byte { return []byte("a value that is not the stored one") })
	if err != nil {
		t.Errorf("Secret: %v", err)
	} else if !bytes.Equal(secret, a.Secret.Value) {
		t.Errorf("Secret(%q) = %q, want %q", a.Secret.Name, secret, a.Secret.Value)
	}
}

// writeOn010Traces writes through s on the rows 0.1.0 wrote, whose
// first-feedback flags 0.1.0 set: on the big trace, an update and a
// delete of its first feedback, rows before, at the time of and after
// its rows, then an update and a delete of the new first; and a new vote
// through the fixture's feedback token.
func writeOn010Traces(t *testing.T, s store.Store, ws map[string]string, a upgradeAnswers) {
	t.Helper()
	ctx := context.Background()
	name := a.Token.Workspace
	wsID := ws[name]
	var rows []answeredFeedback // the big trace, newest first
	for _, w := range a.Workspaces {
		if w.Name == name {
			for _, p := range w.List.Pages {
				rows = append(rows, p.Items...)
			}
		}
	}
	if len(rows) < 3 {
		t.Fatalf("the answers list %d rows of %s in %s, want hundreds", len(rows), a.BigTrace, name)
	}
	oldest, next, newest := rows[len(rows)-1], rows[len(rows)-2], rows[0]
	meta := func(raw json.RawMessage) map[string]any {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		m := map[string]any{}
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	at := a.Query.To // the time of the updates, after every fixture write
	update := func(id string, u store.Update) {
		t.Helper()
		got, err := s.UpdateFeedback(ctx, wsID, id, u, nil)
		if err != nil {
			t.Fatalf("UpdateFeedback(%s): %v", id, err)
		}
		if got.ID != id || got.Value != u.Value || (u.Weight != nil && got.Weight != *u.Weight) || !got.UpdatedAt.Equal(u.UpdatedAt) {
			t.Errorf("UpdateFeedback(%s) = %+v, want %+v applied", id, got, u)
		}
	}
	remove := func(id string) {
		t.Helper()
		if err := s.DeleteFeedback(ctx, wsID, id); err != nil {
			t.Fatalf("DeleteFeedback(%s): %v", id, err)
		}
		if _, err := s.GetFeedback(ctx, wsID, id); store.ErrorCode(err) != store.ENOTFOUND {
			t.Errorf("GetFeedback(%s) after its delete: got %v, want %s", id, err, store.ENOTFOUND)
		}
	}

	// The trace's first feedback, as 0.1.0 flagged it, takes other values
	// of the special keys (a new one, a number, none), then the next
	// one is deleted: the values they held move to later rows.
	m := meta(oldest.Metadata)
	m["_organisation"], m["_prompt"] = "umbrella", json.Number("1e2")
	delete(m, "_environment")
	w := 0.25
	update(oldest.ID, store.Update{Value: -7, Weight: &w, Metadata: m, MetadataSet: true, UpdatedAt: at})
	remove(next.ID)

	// New rows: before every row, at the first row's time with a smaller
	// id (so the id decides which is first), and after every row, with
	// values the trace has and values it has not.
	tie := oldest.ID[:14] + "7000-8000-000000000000"
	if tie >= oldest.ID {
		t.Fatalf("tie id %s is not below %s", tie, oldest.ID)
	}
	add := []*store.Feedback{
		{ID: "019ab000-0000-7000-8000-000000000001", CreatedAt: oldest.CreatedAt.Add(-time.Hour), Value: 4, Weight: 1,
			Metadata: map[string]any{"_user": "u-new", "_organisation": "acme", "_environment": "production", "topic": "login"}},
		{ID: tie, CreatedAt: oldest.CreatedAt, Value: -2, Weight: 0.5,
			Metadata: map[string]any{"_organisation": "umbrella", "_prompt": "summarize", "_environment": json.Number("1")}},
		{ID: "019ab000-0000-7000-8000-000000000003", CreatedAt: newest.CreatedAt.Add(time.Hour), Value: 10, Weight: 0.3,
			Metadata: map[string]any{"_organisation": "globex", "_prompt": true, "_environment": "staging", "session": "s-1"}},
	}
	for _, f := range add {
		f.WorkspaceID, f.TraceID, f.UpdatedAt = wsID, a.BigTrace, f.CreatedAt
	}
	if err := s.CreateFeedback(ctx, add, nil); err != nil {
		t.Fatalf("CreateFeedback: %v", err)
	}
	for _, f := range add {
		got, err := s.GetFeedback(ctx, wsID, f.ID)
		if err != nil {
			t.Fatalf("GetFeedback(%s): %v", f.ID, err)
		}
		assertSame(t, got, f)
	}

	// The new first (the earliest row) changes its values, then goes.
	m = meta(mustJSON(t, add[0].Metadata))
	m["_organisation"], m["_environment"] = "initech", "staging"
	update(add[0].ID, store.Update{Value: 1, Metadata: m, MetadataSet: true, UpdatedAt: at.Add(time.Second)})
	remove(add[0].ID)

	// The token votes again: its row keeps its id, trace and time.
	before, err := s.GetFeedback(ctx, wsID, a.Token.FeedbackID)
	if err != nil {
		t.Fatalf("GetFeedback(token row %s): %v", a.Token.FeedbackID, err)
	}
	vote := &store.Feedback{ID: "019ab000-0000-7000-8000-000000000004", WorkspaceID: wsID, TraceID: a.Token.TraceID, Value: -10, Weight: 1,
		Metadata: map[string]any{"_user": "u-99", "_organisation": "umbrella", "_prompt": "translate"}, CreatedAt: at, UpdatedAt: at}
	got, err := s.UpsertTokenFeedback(ctx, a.Token.TokenID, vote, nil)
	if err != nil {
		t.Fatalf("UpsertTokenFeedback: %v", err)
	}
	if got.ID != before.ID || got.TraceID != before.TraceID || !got.CreatedAt.Equal(before.CreatedAt) || got.Value != -10 || !got.UpdatedAt.Equal(at) {
		t.Errorf("UpsertTokenFeedback = %+v, want the row %+v with value -10, updated at %v", got, before, at)
	}

	// The trace lists what is left, and groups count it once per value.
	left := len(rows) - 1 + len(add) - 1
	if n := len(listAll(t, s, wsID, store.Filter{TraceIDs: []string{a.BigTrace}, Limit: 100})); n != left {
		t.Errorf("%s lists %d rows, want %d", a.BigTrace, n, left)
	}
	q := store.AnalyticsQuery{From: a.Query.From, To: a.Query.To, BucketSize: a.Query.BucketSize, TraceIDs: []string{a.BigTrace}}
	for _, key := range []string{"_organisation", "_prompt", "_environment"} {
		groups, _, err := s.MetadataGroups(ctx, wsID, key, q, 0, 100)
		if err != nil {
			t.Fatalf("MetadataGroups(%s): %v", key, err)
		}
		for _, g := range groups {
			if g.Requests != 1 {
				t.Errorf("groups by %s of one trace: %+v counts %d requests, want 1", key, g, g.Requests)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
