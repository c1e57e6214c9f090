package main

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// checkAnalytics checks what the analytics endpoints answer over all the
// feedback a client can list against a recomputation from that listing:
// the feedback graph's total, and groups by key (a string value), where a
// trace counts once, in the group of each value, for its first feedback
// with it (by time, then id).
func checkAnalytics(t *testing.T, c *client.Client, key string) {
	t.Helper()
	ctx := context.Background()
	rows := collect(t, c, client.ListFeedbackParams{Limit: client.Ptr(1000)})
	if len(rows) == 0 {
		t.Fatal("checkAnalytics: no feedback")
	}
	from, to := rows[0].CreatedAt, rows[0].CreatedAt
	type group struct {
		requests, n int
		sum         float64
	}
	want := map[string]*group{}
	firsts := map[[2]string]client.Feedback{}
	for _, f := range rows {
		from, to = minTime(from, f.CreatedAt), maxTime(to, f.CreatedAt)
		v, ok := f.Metadata[key].(string)
		if !ok {
			continue
		}
		k := [2]string{f.TraceID, v}
		if have, seen := firsts[k]; !seen || f.CreatedAt.Before(have.CreatedAt) || (f.CreatedAt.Equal(have.CreatedAt) && f.ID.String() < have.ID.String()) {
			firsts[k] = f
		}
		g := want[v]
		if g == nil {
			g = &group{}
			want[v] = g
		}
		g.n++
		g.sum += float64(f.Value) * f.Weight
	}
	for k := range firsts {
		want[k[1]].requests++
	}
	// Whole UTC days around the rows, so that the stores answer from their
	// derived data, not from the rows.
	day := 24 * time.Hour
	from, to = from.UTC().Truncate(day).Add(-day), to.UTC().Truncate(day).Add(2*day-time.Microsecond)

	g, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil {
		t.Fatal(err)
	}
	if g.Summary.Total != len(rows) {
		t.Errorf("feedback graph total %d, want the %d rows listed", g.Summary.Total, len(rows))
	}
	got := map[string]client.MetadataGroup{}
	for page := 0; ; page++ {
		p, err := c.Analytics.MetadataGroups(ctx, key, client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to,
			CurrentPage: client.Ptr(page), PageSize: client.Ptr(100)})
		if err != nil {
			t.Fatal(err)
		}
		for _, mg := range p.Data {
			got[mg.MetadataValue] = mg
		}
		if len(p.Data) < 100 {
			break
		}
	}
	if len(got) != len(want) {
		t.Errorf("groups by %s: %d, want %d", key, len(got), len(want))
	}
	for v, w := range want {
		mg, ok := got[v]
		if !ok || mg.Requests != w.requests || mg.RequestsWithFeedback != w.requests || math.Abs(mg.AvgWeightedFeedback-w.sum/float64(w.n)) > 1e-9 {
			t.Errorf("group %s=%s: got %s, want %d requests, average %.4f", key, v, describeGroup(mg, ok), w.requests, w.sum/float64(w.n))
		}
	}
}

func describeGroup(g client.MetadataGroup, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%d requests, average %.4f", g.Requests, g.AvgWeightedFeedback)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
