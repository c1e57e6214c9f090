package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/feedbackd/feedbackd/client"
)

// The log, in either format and at debug level, names every request by
// the id its answer carries and never holds an API key or a feedback
// token, wherever the request carried them: either key header, the token's
// path, a query string.
func TestLogsNameRequestsAndHoldNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx := context.Background()
			inst := start(t, backends[0], "", map[string]string{"FEEDBACKD_LOG_LEVEL": "debug", "FEEDBACKD_LOG_FORMAT": format})
			c := inst.client(t, inst.key)
			tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "s"})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			send := func(method, path, body string, header map[string]string) {
				t.Helper()
				var r io.Reader
				if body != "" {
					r = strings.NewReader(body)
				}
				req, err := http.NewRequest(method, inst.base+path, r)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				for k, v := range header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				id := resp.Header.Get("X-Request-Id")
				if id == "" {
					t.Fatalf("%s %s: no X-Request-Id", method, path)
				}
				ids = append(ids, id)
			}
			send("POST", "/v1/feedback", `{"trace_id":"s","value":1}`, map[string]string{"x-portkey-api-key": inst.key})
			send("GET", "/v1/feedback", "", map[string]string{"Authorization": "Bearer " + inst.key})
			send("GET", "/v1/feedback?cursor="+inst.key, "", map[string]string{"Authorization": "Bearer " + inst.key})
			send("GET", "/v1/feedback", "", map[string]string{"x-portkey-api-key": inst.key + "x"})
			send("POST", "/v1/feedback/tokens/"+tok.Token, `{"value":1}`, nil)
			send("POST", "/v1/feedback/tokens/"+tok.Token+"x", `{"value":1}`, nil)
			send("GET", "/no/such/"+inst.key, "", nil)
			inst.stop()

			logs := inst.stderr.String()
			for _, secret := range []string{inst.key, tok.Token, strings.TrimPrefix(inst.key, "fbk_"), strings.TrimPrefix(tok.Token, "fbt_")} {
				if strings.Contains(logs, secret) {
					t.Errorf("the log holds a secret %.12s...:\n%s", secret, logs)
				}
			}
			var requests int
			for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
				if format == "json" {
					var rec map[string]any
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Errorf("a JSON log line is not JSON: %q", line)
						continue
					}
					if rec["msg"] == "request" {
						requests++
						if rec["route"] == nil || rec["request_id"] == nil || rec["status"] == nil {
							t.Errorf("access log line lacks route, request_id or status: %s", line)
						}
					}
				} else if strings.Contains(line, "msg=request ") {
					requests++
				}
			}
			if requests < len(ids) {
				t.Errorf("%d access log lines, want at least %d:\n%s", requests, len(ids), logs)
			}
			for _, id := range ids {
				want := "request_id=" + id
				if format == "json" {
					want = `"request_id":"` + id + `"`
				}
				if !strings.Contains(logs, want) {
					t.Errorf("no log line with %s", want)
				}
			}
		})
	}
}

// serve exports Prometheus metrics at /metrics on its own address, the
// store's commits included, unless --metrics=false.
func TestServeMetrics(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inst := start(t, b, "", nil)
			if _, err := inst.client(t, inst.key).Feedback.BulkCreate(context.Background(), []client.FeedbackRequest{{TraceID: "m", Value: 1}, {TraceID: "m", Value: 2}}); err != nil {
				t.Fatal(err)
			}
			status, page := getPlain(t, inst.base+"/metrics")
			if status != 200 {
				t.Fatalf("GET /metrics: %d", status)
			}
			for _, want := range []string{
				`feedbackd_http_requests_total{method="POST",route="/v1/feedback",status="200"} 1`,
				`feedbackd_feedback_stored_total{source="create"} 2`,
				`feedbackd_store_commit_rows_sum 2`,
				`feedbackd_store_commit_duration_seconds_count `,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		})
	}
	off := start(t, backends[0], "", map[string]string{"FEEDBACKD_METRICS": "false"})
	if status, _ := getPlain(t, off.base+"/metrics"); status != 404 {
		t.Errorf("GET /metrics with FEEDBACKD_METRICS=false: got %d, want 404", status)
	}
}

// --log-format takes auto, text or json only.
func TestLogFormatFlag(t *testing.T) {
	if _, err := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", t.TempDir()+"/x.db", "--log-format", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format xml: got %v, want an error naming the flag", err)
	}
}

// getPlain GETs a URL outside the API's spec and returns status and body.
func getPlain(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
