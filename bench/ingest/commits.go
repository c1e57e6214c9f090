package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// commits are feedbackd's store commits so far, from its /metrics (served
// by default): how many, and the feedback rows they stored. Between two
// readings they tell how many rows shared a commit, which is what the
// SQLite writer's cost per row depends on.
type commits struct{ count, rows float64 }

// readCommits reads the commit counters of the feedbackd at base.
func readCommits(ctx context.Context, base string) (commits, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return commits{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return commits{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return commits{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return commits{}, fmt.Errorf("GET /metrics: %w", err)
	}
	f, ok := families["feedbackd_store_commit_rows"]
	if !ok || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetHistogram() == nil {
		return commits{}, fmt.Errorf("GET /metrics: no feedbackd_store_commit_rows histogram")
	}
	h := f.GetMetric()[0].GetHistogram()
	return commits{count: float64(h.GetSampleCount()), rows: h.GetSampleSum()}, nil
}

// rowsPerCommit is the mean rows of the commits between two readings; 0
// when there were none.
func rowsPerCommit(before, after commits) float64 {
	if after.count <= before.count {
		return 0
	}
	return (after.rows - before.rows) / (after.count - before.count)
}
