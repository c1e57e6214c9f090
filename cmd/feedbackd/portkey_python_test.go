package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// Portkey's Python SDK (portkey_ai) cannot be installed here, so the
// requests it makes are replayed byte for byte over a raw TCP connection:
// the request line, its headers as httpx writes them, and the JSON bodies
// its Feedback resource builds. Two body styles are replayed, because the
// SDK's output depends on its dependencies' versions:
//   - httpx before 0.28 serialises with json.dumps defaults (", " and ": "
//     separators, non-ASCII escaped as \uXXXX); 0.28 and later write compact
//     JSON with raw UTF-8;
//   - feedback.create(trace_id=..., value=..., weight=None, metadata=None)
//     sends explicit nulls in SDK versions that post the body as built, and
//     drops them in versions that pass it through remove_empty_values.
// feedback.bulk_create(feedbacks=[...]) posts a bare JSON array, and
// feedback.update(feedback_id=..., value=...) sends PUT /feedback/{id}.
//
// Analytics came in portkey 2.3.0, which sends no Content-Type of its own
// and no body on a GET; its graphs build the query string themselves with
// urllib's urlencode (so ':' is %3A, '+' %2B, ',' %2C), in the order of
// their keyword parameters: the two times first, then ai_org_model.

// pythonRequest writes one request as the Python SDK's Feedback resource
// does and returns the status and body of the answer, checked against the
// spec.
func pythonRequest(t *testing.T, inst *instance, method, path, body string) (int, string) {
	t.Helper()
	return replay(t, inst, method, path, body,
		"User-Agent: python-httpx/0.27.2",
		"x-portkey-api-key: "+inst.key,
		"x-portkey-package-version: portkey-1.8.7",
		"x-portkey-runtime: CPython",
		"x-portkey-runtime-version: 3.11.7",
		"x-portkey-strict-open-ai-compliance: false",
		"Content-Type: application/json",
		fmt.Sprintf("Content-Length: %d", len(body)),
	)
}

// pythonAnalytics writes a GET as the Python SDK's analytics resources do.
func pythonAnalytics(t *testing.T, inst *instance, path string) (int, string) {
	t.Helper()
	return replay(t, inst, "GET", path, "",
		"User-Agent: python-httpx/0.28.1",
		"x-portkey-api-key: "+inst.key,
		"x-portkey-package-version: portkey-2.3.1",
		"x-portkey-runtime: CPython",
		"x-portkey-runtime-version: 3.12.8",
		"x-portkey-strict-open-ai-compliance: false",
	)
}

// replay writes a request with httpx's own headers first, then the SDK's
// (header), then body, and returns the answer checked against the spec.
func replay(t *testing.T, inst *instance, method, path, body string, header ...string) (int, string) {
	t.Helper()
	u, err := url.Parse(inst.base)
	if err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\n", method, path)
	for _, h := range append([]string{
		"Host: " + u.Host,
		"Accept: application/json",
		"Accept-Encoding: gzip, deflate",
		"Connection: keep-alive",
	}, header...) {
		raw.WriteString(h + "\r\n")
	}
	raw.WriteString("\r\n" + body)

	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw.String()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, inst.base+path, nil) // for matching the answer to the spec
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	checked, err := validatingDoer{t, respondWith{resp}}.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(checked.Body)
	return checked.StatusCode, string(b)
}

// respondWith is an HttpRequestDoer that returns a response already read,
// so it can pass through validatingDoer.
type respondWith struct{ resp *http.Response }

func (r respondWith) Do(*http.Request) (*http.Response, error) { return r.resp, nil }

func feedbackIDs(t *testing.T, body string) []client.UUID {
	t.Helper()
	var r client.FeedbackResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		t.Fatalf("not a success response: %s (%v)", body, err)
	}
	return r.FeedbackIds
}

func testPortkeyPythonSDKRequests(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	check := func(t *testing.T, id client.UUID, trace string, value int, weight float64, meta string) {
		t.Helper()
		f, err := c.Feedback.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if f.TraceID != trace || f.Value != value || f.Weight != weight || jsonOf(t, f.Metadata) != meta {
			t.Errorf("stored %s/%d/%v/%s, want %s/%d/%v/%s", f.TraceID, f.Value, f.Weight, jsonOf(t, f.Metadata), trace, value, weight, meta)
		}
	}

	creates := []struct {
		name, body, trace string
		value             int
		weight            float64
		meta              string
	}{
		{"create with None weight and metadata sent as null", `{"trace_id": "py-1", "value": 5, "weight": null, "metadata": null}`, "py-1", 5, 1, `{}`},
		{"create with None arguments dropped", `{"trace_id": "py-2", "value": 5}`, "py-2", 5, 1, `{}`},
		{"create, json.dumps style with escaped non-ASCII", `{"trace_id": "py-3", "value": -3, "weight": 0.75, "metadata": {"_user": "u", "text": "caf\u00e9"}}`, "py-3", -3, 0.75, `{"_user":"u","text":"café"}`},
		{"create, compact httpx style with raw UTF-8", `{"trace_id":"py-4","value":10,"weight":1.0,"metadata":{"_user":"u","text":"café"}}`, "py-4", 10, 1, `{"_user":"u","text":"café"}`},
		{"create with weight 0", `{"trace_id": "py-5", "value": -10, "weight": 0.0}`, "py-5", -10, 0, `{}`},
	}
	for _, tc := range creates {
		t.Run(tc.name, func(t *testing.T) {
			status, body := pythonRequest(t, inst, "POST", "/v1/feedback", tc.body)
			if status != 200 {
				t.Fatalf("got %d %s", status, body)
			}
			ids := feedbackIDs(t, body)
			if len(ids) != 1 {
				t.Fatalf("feedback_ids: got %v", ids)
			}
			check(t, ids[0], tc.trace, tc.value, tc.weight, tc.meta)
		})
	}

	t.Run("bulk_create posts a bare array", func(t *testing.T) {
		status, body := pythonRequest(t, inst, "POST", "/v1/feedback",
			`[{"trace_id": "py-b0", "value": 1}, {"trace_id": "py-b1", "value": -1, "weight": 0.5, "metadata": {"_prompt": "p"}}, {"trace_id": "py-b2", "value": 0, "weight": null, "metadata": null}]`)
		if status != 200 {
			t.Fatalf("got %d %s", status, body)
		}
		ids := feedbackIDs(t, body)
		if len(ids) != 3 {
			t.Fatalf("feedback_ids: got %v", ids)
		}
		check(t, ids[0], "py-b0", 1, 1, `{}`)
		check(t, ids[1], "py-b1", -1, 0.5, `{"_prompt":"p"}`)
		check(t, ids[2], "py-b2", 0, 1, `{}`)
	})

	t.Run("update sends PUT with nulls for arguments left as None", func(t *testing.T) {
		id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "py-u", Value: 3, Weight: client.Ptr(0.5), Metadata: &client.Metadata{"_user": "u"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{`{"value": -2, "weight": null, "metadata": null}`, `{"value": -2}`} {
			status, resp := pythonRequest(t, inst, "PUT", "/v1/feedback/"+id.String(), body)
			if status != 200 || feedbackIDs(t, resp)[0] != id {
				t.Fatalf("%s: got %d %s", body, status, resp)
			}
			check(t, id, "py-u", -2, 0.5, `{"_user":"u"}`)
		}
		status, resp := pythonRequest(t, inst, "PUT", "/v1/feedback/"+id.String(), `{"value": 8, "weight": 0.1, "metadata": {"reason": "r"}}`)
		if status != 200 {
			t.Fatalf("got %d %s", status, resp)
		}
		check(t, id, "py-u", 8, 0.1, `{"reason":"r"}`)
	})

	t.Run("analytics.graphs.feedbacks_ai_models, with and without ai_org_model", func(t *testing.T) {
		// bulk_create: the model in ai_model or model, the provider in
		// ai_provider or provider; gpt-4o from two providers. The other
		// subtests' feedback names no model.
		status, body := pythonRequest(t, inst, "POST", "/v1/feedback",
			`[{"trace_id": "py-m1", "value": 8, "metadata": {"ai_model": "gpt-4o", "ai_provider": "openai"}}, {"trace_id": "py-m2", "value": 4, "weight": 0.5, "metadata": {"ai_model": "gpt-4o", "ai_provider": "azure"}}, {"trace_id": "py-m3", "value": -6, "metadata": {"model": "claude-sonnet-4", "provider": "anthropic"}}]`)
		if status != 200 || len(feedbackIDs(t, body)) != 3 {
			t.Fatalf("got %d %s", status, body)
		}
		// feedbacks_ai_models(time_of_generation_min=..., time_of_generation_max=...[, ai_org_model=...]),
		// the times as a Python caller writes them: isoformat() of aware datetimes.
		ist := time.FixedZone("IST", 5*3600+1800)
		quote := strings.NewReplacer(":", "%3A", "+", "%2B").Replace
		path := "/v1/analytics/graphs/feedbacks/ai-models?time_of_generation_min=" + quote(time.Now().Add(-time.Hour).In(ist).Format("2006-01-02T15:04:05-07:00")) +
			"&time_of_generation_max=" + quote(time.Now().Add(time.Hour).In(ist).Format("2006-01-02T15:04:05-07:00"))
		for _, tc := range []struct {
			query string
			want  client.AIModelGraph
		}{
			{"", client.AIModelGraph{Object: "analytics-graph", Summary: client.TotalSummary{Total: 3}, DataPoints: []client.AIModelPoint{
				{AiModel: "gpt-4o", Total: 2, AvgWeightedFeedback: 5},
				{AiModel: "claude-sonnet-4", Total: 1, AvgWeightedFeedback: -6},
			}}},
			// gpt-4o from openai, not azure; a tie in feedback is ordered by name.
			{"&ai_org_model=openai__gpt-4o%2Canthropic__claude-sonnet-4", client.AIModelGraph{Object: "analytics-graph", Summary: client.TotalSummary{Total: 2}, DataPoints: []client.AIModelPoint{
				{AiModel: "claude-sonnet-4", Total: 1, AvgWeightedFeedback: -6},
				{AiModel: "gpt-4o", Total: 1, AvgWeightedFeedback: 8},
			}}},
		} {
			status, body := pythonAnalytics(t, inst, path+tc.query)
			if status != 200 {
				t.Fatalf("%s: got %d %s", tc.query, status, body)
			}
			var got client.AIModelGraph
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if jsonOf(t, got) != jsonOf(t, tc.want) {
				t.Errorf("ai-models%s: got %s, want %s", tc.query, body, jsonOf(t, tc.want))
			}
		}
	})

	t.Run("an invalid value is a 400 the SDK raises as BadRequestError", func(t *testing.T) {
		status, body := pythonRequest(t, inst, "POST", "/v1/feedback", `{"trace_id": "py-bad", "value": 11, "weight": null, "metadata": null}`)
		if status != 400 || !strings.Contains(body, `"/value"`) {
			t.Errorf("got %d %s", status, body)
		}
	})
}
