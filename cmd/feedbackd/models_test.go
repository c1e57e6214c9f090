package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// Portkey's ai-models graph, its ai_org_model filter on every analytics
// operation, and --model-keys, over HTTP with answers checked against the
// spec: the model comes from metadata ai_model, else model; a restart with
// other keys rebuilds the graph from the rows.
func testAIModels(t *testing.T, b backend) {
	ctx := context.Background()
	db := b.newDB(t)
	inst := start(t, b, db, nil)
	c := inst.client(t, inst.key)
	meta := []client.Metadata{
		{"ai_model": "gpt-4o", "provider": "openai"},
		{"ai_model": "gpt-4o", "provider": "azure", "model": "claude"},
		{"model": "claude"},
		{"ai_model": 4, "model": "claude", "ai_provider": "anthropic"},
		{"model": "openai__gpt-4o"},
		{"_user": "no model"},
	}
	var reqs []client.FeedbackRequest
	for i, m := range meta {
		reqs = append(reqs, client.FeedbackRequest{TraceID: "t", Value: i + 1, Weight: client.Ptr(0.5), Metadata: &m})
	}
	if _, err := c.Feedback.BulkCreate(ctx, reqs); err != nil {
		t.Fatal(err)
	}
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	graph := func(c *client.Client, orgModel string) []client.AIModelPoint {
		t.Helper()
		p := client.GetFeedbackAIModelGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to}
		if orgModel != "" {
			p.AiOrgModel = &orgModel
		}
		g, err := c.Analytics.AIModelGraph(ctx, p)
		if err != nil {
			t.Fatalf("AIModelGraph(%q): %v", orgModel, err)
		}
		total := 0
		for _, p := range g.DataPoints {
			total += p.Total
		}
		if g.Object != "analytics-graph" || g.Summary.Total != total {
			t.Errorf("graph %+v: summary must count the points' feedback", g)
		}
		return g.DataPoints
	}
	same := func(what string, got, want []client.AIModelPoint) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %+v, want %+v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %+v, want %+v", what, got, want)
			}
		}
	}
	// Most feedback first, then by name; the feedback without a model is
	// left out.
	same("ai-models", graph(c, ""), []client.AIModelPoint{
		{AiModel: "claude", Total: 2, AvgWeightedFeedback: 1.75},
		{AiModel: "gpt-4o", Total: 2, AvgWeightedFeedback: 0.75},
		{AiModel: "openai__gpt-4o", Total: 1, AvgWeightedFeedback: 2.5},
	})
	// openai__gpt-4o: gpt-4o from openai (not azure), and the literal name.
	same("ai-models by openai__gpt-4o", graph(c, "openai__gpt-4o"), []client.AIModelPoint{
		{AiModel: "gpt-4o", Total: 1, AvgWeightedFeedback: 0.5},
		{AiModel: "openai__gpt-4o", Total: 1, AvgWeightedFeedback: 2.5},
	})
	// Every analytics operation takes it, Portkey's comma-separated list.
	two := "openai__gpt-4o,anthropic__claude"
	fg, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, AiOrgModel: &two})
	if err != nil || fg.Summary.Total != 4 {
		t.Errorf("feedback graph by %s: %+v, %v; want 4 feedback", two, fg, err)
	}
	sg, err := c.Analytics.ScoreGraph(ctx, client.GetFeedbackScoreGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, AiOrgModel: &two})
	if err != nil || sg.Summary.Total != 4 {
		t.Errorf("score graph by %s: %+v, %v; want 4 feedback", two, sg, err)
	}
	wg, err := c.Analytics.WeightedGraph(ctx, client.GetWeightedFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, AiOrgModel: &two})
	if err != nil || wg.Summary.Avg != 1.625 {
		t.Errorf("weighted graph by %s: %+v, %v; want an average of 1.625", two, wg, err)
	}
	mg, err := c.Analytics.MetadataGroups(ctx, "provider", client.GetMetadataGroupsParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, AiOrgModel: &two})
	if err != nil || mg.Total != 1 || mg.Data[0].MetadataValue != "openai" {
		t.Errorf("groups by provider under %s: %+v, %v; want openai alone", two, mg, err)
	}
	spaced := " openai__gpt-4o , anthropic__claude"
	if fg, err := c.Analytics.FeedbackGraph(ctx, client.GetFeedbackGraphParams{TimeOfGenerationMin: from, TimeOfGenerationMax: to, AiOrgModel: &spaced}); err != nil || fg.Summary.Total != 4 {
		t.Errorf("feedback graph by %q: %+v, %v; want the spaces ignored", spaced, fg, err)
	}
	for _, bad := range []string{",", "openai__", "__gpt-4o", "gpt-4o,openai__"} {
		v := url.Values{"time_of_generation_min": {from.Format(time.RFC3339)}, "time_of_generation_max": {to.Format(time.RFC3339)}, "ai_org_model": {bad}}
		if status, body := inst.do(t, "GET", "/v1/analytics/graphs/feedbacks/ai-models?"+v.Encode(), map[string]string{"x-portkey-api-key": inst.key}, ""); status != 400 || !strings.Contains(body, "ai_org_model") {
			t.Errorf("ai_org_model %q: %d %s, want 400 naming it", bad, status, body)
		}
	}
	inst.stop()

	// Other model keys: the restart rebuilds the model rollups.
	key := inst.key
	inst = start(t, b, db, map[string]string{"FEEDBACKD_MODEL_KEYS": "model,ai_model"})
	if !strings.Contains(inst.stderr.String(), "model rollups rebuilt") {
		t.Errorf("no rebuild logged: %s", inst.stderr.String())
	}
	same("ai-models by model, then ai_model", graph(inst.client(t, key), ""), []client.AIModelPoint{
		{AiModel: "claude", Total: 3, AvgWeightedFeedback: 1.5},
		{AiModel: "gpt-4o", Total: 1, AvgWeightedFeedback: 0.5},
		{AiModel: "openai__gpt-4o", Total: 1, AvgWeightedFeedback: 2.5},
	})
	inst.stop()
	if err := run(ctx, []string{"feedbackd", "serve", "--addr", "127.0.0.1:0", "--db", db, "--model-keys", "model,it's"}, func(string) string { return "" }, &syncBuffer{}, &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "--model-keys") {
		t.Errorf("serve with a model key SQL cannot spell: %v, want an error naming --model-keys", err)
	}
}
