package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// The numbers themselves are checked against a recomputation by the store
// contract suite, over data spread in time; here the endpoints are driven
// over HTTP with feedback recorded now: shapes, buckets and zero-filling,
// time zones, filters, paging, isolation, and what is refused.
func testAnalyticsEndpoints(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)

	type sent struct {
		value  int
		weight float64
		user   string
		trace  string
	}
	var all []sent
	var reqs []client.FeedbackRequest
	for i := range 30 {
		s := sent{value: i%7 - 3, weight: []float64{1, 0.5, 0.25}[i%3], user: fmt.Sprint("u", i%4), trace: fmt.Sprint("trace-", i%10)}
		all = append(all, s)
		reqs = append(reqs, client.FeedbackRequest{TraceID: s.trace, Value: s.value, Weight: client.Ptr(s.weight),
			Metadata: &client.Metadata{"_user": s.user, "team": []string{"red", "blue"}[i%2]}})
	}
	sentAt := time.Now().Truncate(time.Second)
	ids, err := c.Feedback.BulkCreate(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	now := time.Now().In(ist)
	from, to := now.Add(-3*time.Hour), now.Add(time.Hour)

	// Hourly buckets (a 4-hour range) at whole hours of +05:30, empty ones
	// listed with 0, all 30 in the bucket of now.
	g, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil {
		t.Fatalf("FeedbackGraph: %v", err)
	}
	if g.Object != "analytics-graph" || g.Summary.Total != 30 || len(g.DataPoints) < 4 || len(g.DataPoints) > 5 {
		t.Fatalf("graph: %+v", g)
	}
	sum := 0
	for i, p := range g.DataPoints {
		if _, off := p.Timestamp.Zone(); off != 5*3600+1800 || p.Timestamp.Minute() != 0 || p.Timestamp.Second() != 0 {
			t.Errorf("bucket %d starts at %s, want a whole hour in +05:30", i, p.Timestamp.Format(time.RFC3339))
		}
		if i > 0 && !p.Timestamp.Equal(g.DataPoints[i-1].Timestamp.Add(time.Hour)) {
			t.Errorf("buckets %d and %d are not an hour apart", i-1, i)
		}
		sum += p.Total
	}
	last := g.DataPoints[len(g.DataPoints)-1]
	nowBucket := g.DataPoints[len(g.DataPoints)-2]
	if now.Truncate(time.Hour).Equal(last.Timestamp) || now.Sub(last.Timestamp) >= time.Hour {
		nowBucket = last
	}
	if sum != 30 || nowBucket.Total != 30 {
		t.Errorf("bucket totals %+v, want 30 in the bucket of now", g.DataPoints)
	}

	// Days over 10 days: local midnights, zero-filled.
	days, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: now.Add(-9 * 24 * time.Hour), TimeOfGenerationMax: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(days.DataPoints) != 10 {
		t.Errorf("10 days gave %d buckets", len(days.DataPoints))
	}
	for _, p := range days.DataPoints {
		if p.Timestamp.Hour() != 0 || p.Timestamp.Minute() != 0 {
			t.Errorf("day bucket starts at %s, want local midnight", p.Timestamp.Format(time.RFC3339))
		}
	}
	if days.DataPoints[9].Total != 30 || days.DataPoints[0].Total != 0 {
		t.Errorf("day totals %+v", days.DataPoints)
	}
	weeks, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: now.Add(-200 * 24 * time.Hour), TimeOfGenerationMax: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range weeks.DataPoints {
		if p.Timestamp.Weekday() != time.Monday || p.Timestamp.Hour() != 0 {
			t.Errorf("week bucket starts %s, want a Monday midnight", p.Timestamp.Format(time.RFC3339))
		}
	}
	hours := client.GetFeedbackGraphParamsGranularityHour
	forced, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: now.Add(-5 * 24 * time.Hour), TimeOfGenerationMax: now, Granularity: &hours})
	if err != nil || len(forced.DataPoints) < 120 {
		t.Errorf("granularity=hour over 5 days: %v, %d buckets", err, len(forced.DataPoints))
	}

	// Scores and the weighted average, recomputed from what was sent.
	scores, err := c.Analytics.ScoreGraph(ctx, client.GetFeedbackScoreGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil {
		t.Fatal(err)
	}
	wantScores := map[int]int{}
	var wsum float64
	for _, s := range all {
		wantScores[s.value]++
		wsum += float64(s.value) * s.weight
	}
	if scores.Summary.Total != 30 || len(scores.DataPoints) != len(wantScores) {
		t.Errorf("scores: %+v", scores)
	}
	for i, p := range scores.DataPoints {
		if p.Total != wantScores[p.Score] || (i > 0 && p.Score <= scores.DataPoints[i-1].Score) {
			t.Errorf("score point %+v, want total %d, ascending", p, wantScores[p.Score])
		}
	}
	weighted, err := c.Analytics.WeightedGraph(ctx, client.GetWeightedFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(weighted.Summary.Avg-wsum/30) > 1e-9 {
		t.Errorf("weighted avg %v, want %v", weighted.Summary.Avg, wsum/30)
	}
	for _, p := range weighted.DataPoints {
		if p.Avg != 0 && math.Abs(p.Avg-wsum/30) > 1e-9 {
			t.Errorf("weighted point %+v", p)
		}
	}

	// Filters.
	u1 := 0
	for _, s := range all {
		if s.user == "u1" {
			u1++
		}
	}
	filtered, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: client.Ptr(`{"_user":"u1"}`)})
	if err != nil || filtered.Summary.Total != u1 {
		t.Errorf("_user filter: %v, total %d, want %d", err, filtered.Summary.Total, u1)
	}
	red, err := c.Analytics.ScoreGraph(ctx, client.GetFeedbackScoreGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: client.Ptr(`{"team":"red","_user":"u0"}`), WorkspaceSlug: client.Ptr("ignored")})
	if err != nil || red.Summary.Total != 8 {
		t.Errorf("two-pair filter: %v, %+v, want 8", err, red)
	}
	traces, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, TraceID: client.Ptr("trace-1,trace-2")})
	if err != nil || traces.Summary.Total != 6 {
		t.Errorf("trace filter: %v, %+v, want 6", err, traces.Summary)
	}
	pos, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, WeightedFeedbackMin: client.Ptr(0.5)})
	wantPos := 0
	for _, s := range all {
		if float64(s.value)*s.weight >= 0.5 {
			wantPos++
		}
	}
	if err != nil || pos.Summary.Total != wantPos {
		t.Errorf("weighted filter: %v, %+v, want %d", err, pos.Summary, wantPos)
	}

	// Groups by _user, paged.
	groups, err := c.Analytics.MetadataGroups(ctx, "_user", client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, PageSize: client.Ptr(3)})
	if err != nil {
		t.Fatal(err)
	}
	if groups.Object != "list" || groups.Total != 4 || len(groups.Data) != 3 {
		t.Fatalf("groups: %+v", groups)
	}
	for _, gr := range groups.Data {
		var n int
		var sum float64
		traces := map[string]bool{}
		for _, s := range all {
			if s.user == gr.MetadataValue {
				n++
				sum += float64(s.value) * s.weight
				traces[s.trace] = true
			}
		}
		if gr.Object != "analytics-group" || gr.Requests != len(traces) || gr.RequestsWithFeedback != len(traces) ||
			math.Abs(gr.AvgWeightedFeedback-sum/float64(n)) > 1e-9 || gr.LastSeen.Before(sentAt) || gr.LastSeen.After(time.Now()) {
			t.Errorf("group %+v: want %d requests, avg %v, last seen since %s", gr, len(traces), sum/float64(n), sentAt)
		}
	}
	page2, err := c.Analytics.MetadataGroups(ctx, "_user", client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, PageSize: client.Ptr(3), CurrentPage: client.Ptr(1)})
	if err != nil || page2.Total != 4 || len(page2.Data) != 1 {
		t.Errorf("second page: %v, %+v", err, page2)
	}
	teams, err := c.Analytics.MetadataGroups(ctx, "team", client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil || teams.Total != 2 {
		t.Errorf("groups by an arbitrary key: %v, %+v", err, teams)
	}

	// Updates and deletes show at once.
	if err := c.Feedback.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Feedback.Update(ctx, ids[1], client.FeedbackUpdate{Value: 10, Metadata: &client.Metadata{"_user": "u-new"}}); err != nil {
		t.Fatal(err)
	}
	g, _ = c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	moved, _ := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, Metadata: client.Ptr(`{"_user":"u-new"}`)})
	if g.Summary.Total != 29 || moved.Summary.Total != 1 {
		t.Errorf("after delete and update: total %d (want 29), u-new %d (want 1)", g.Summary.Total, moved.Summary.Total)
	}

	// Another workspace sees none of it.
	out, err := runCLI(t, nil, "keys", "create", "--db", inst.db, "--workspace", "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	other := inst.client(t, strings.TrimSpace(out))
	og, err := other.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil || og.Summary.Total != 0 {
		t.Errorf("other workspace graph: %v, %+v", err, og.Summary)
	}
	ogr, err := other.Analytics.MetadataGroups(ctx, "_user", client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil || ogr.Total != 0 || len(ogr.Data) != 0 {
		t.Errorf("other workspace groups: %v, %+v", err, ogr)
	}
	osc, err := other.Analytics.ScoreGraph(ctx, client.GetFeedbackScoreGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to})
	if err != nil || osc.Summary.Total != 0 || len(osc.DataPoints) != 0 {
		t.Errorf("other workspace scores: %v, %+v", err, osc)
	}

	// What is refused, with a 400 naming the parameter.
	q := func(min, max string, extra ...string) string {
		v := url.Values{}
		if min != "" {
			v.Set("time_of_generation_min", min)
		}
		if max != "" {
			v.Set("time_of_generation_max", max)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return "/v1/analytics/graphs/feedbacks?" + v.Encode()
	}
	key := map[string]string{"x-portkey-api-key": inst.key}
	bad := map[string]string{
		"max before min":        q("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z"),
		"offset not a quarter":  q("2026-11-01T00:00:00+05:17", "2026-11-02T00:00:00Z"),
		"too many hour buckets": q("2020-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "granularity", "hour"),
		"no min":                q("", "2026-11-02T00:00:00Z"),
		"no max":                q("2026-11-01T00:00:00Z", ""),
		"not a date":            q("yesterday", "2026-11-02T00:00:00Z"),
		"no offset":             q("2026-11-01T00:00:00", "2026-11-02T00:00:00Z"),
		"unknown granularity":   q("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "granularity", "month"),
		"metadata not JSON":     q("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "metadata", "x"),
		"weighted out of range": q("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "weighted_feedback_min", "11"),
	}
	for name, path := range bad {
		if status, body := inst.do(t, "GET", path, key, ""); status != 400 {
			t.Errorf("%s: got %d %s, want 400", name, status, body)
		}
	}
	if status, _ := inst.do(t, "GET", "/v1/analytics/groups/metadata/_user?"+strings.SplitN(q("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "page_size", "0"), "?", 2)[1], key, ""); status != 400 {
		t.Errorf("page_size 0: got %d, want 400", status)
	}
	if status, _ := inst.do(t, "GET", q("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"), nil, ""); status != 401 {
		t.Errorf("analytics without a key: got %d, want 401", status)
	}
	_, err = c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: to, TimeOfGenerationMax: from})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || len(apiErr.Fields) == 0 {
		t.Errorf("client with max before min: %v", err)
	}
}

// Averages print as decimals: three scores of 2 x 0.7 average 1.4 in the
// weighted graph and in groups, not 1.3999999999999997 (what their binary
// sum divides to).
func testAveragesPrintAsDecimals(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	key := map[string]string{"x-portkey-api-key": inst.key}
	body := `[` + strings.Repeat(`{"trace_id":"t","value":2,"weight":0.7,"metadata":{"_user":"u","_prompt":"p"}},`, 2) +
		`{"trace_id":"t","value":2,"weight":0.7,"metadata":{"_user":"u","_prompt":"p"}}]`
	if status, out := inst.do(t, "POST", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}, body); status != 200 {
		t.Fatalf("POST: %d %s", status, out)
	}
	v := url.Values{}
	v.Set("time_of_generation_min", time.Now().Add(-time.Hour).Format(time.RFC3339))
	v.Set("time_of_generation_max", time.Now().Add(time.Hour).Format(time.RFC3339))
	for _, path := range []string{"/v1/analytics/graphs/feedbacks/weighted?", "/v1/analytics/groups/metadata/_user?", "/v1/analytics/groups/metadata/_prompt?"} {
		status, out := inst.do(t, "GET", path+v.Encode(), key, "")
		if status != 200 || !strings.Contains(out, ":1.4,") && !strings.Contains(out, ":1.4}") || strings.Contains(out, "1.39999") {
			t.Errorf("%s: %d %s, want every average printed as 1.4", path, status, out)
		}
	}
}
