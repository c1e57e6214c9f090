package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// editSpec returns the built-in spec with from replaced by to, where from
// occurs exactly once.
func editSpec(t testing.TB, edits ...string) []byte {
	t.Helper()
	s := string(feedbackd.OpenAPI())
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(s, edits[i]); n != 1 {
			t.Fatalf("edit %q: found %d times in openapi.yaml, want once", edits[i], n)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return []byte(s)
}

// Spec edits a contract-first user makes, as pairs of (text, replacement).
var (
	valueMax    = []string{"      type: integer\n      minimum: -10\n      maximum: 10\n", "      type: integer\n      minimum: -10\n      maximum: 5\n"}
	traceMax    = []string{"      minLength: 1\n      maxLength: 256\n      example: support-chat-8f3a2c91\n\n    FeedbackValue:", "      minLength: 1\n      maxLength: 100\n      example: support-chat-8f3a2c91\n\n    FeedbackValue:"}
	bulkMax     = []string{"      minItems: 1\n      maxItems: 1000\n      items:\n        $ref: '#/components/schemas/FeedbackRequest'", "      minItems: 1\n      maxItems: 300\n      items:\n        $ref: '#/components/schemas/FeedbackRequest'"}
	keysMax     = []string{"      maxProperties: 64\n      additionalProperties: true\n", "      maxProperties: 8\n      additionalProperties: true\n"}
	stringMax   = []string{"        maxStringLength: 8192\n", "        maxStringLength: 20\n"}
	commentRule = []string{"        metadata:\n          $ref: '#/components/schemas/Metadata'\n\n    FeedbackUpdate:", "        metadata:\n          $ref: '#/components/schemas/Metadata'\n        comment:\n          type: string\n          maxLength: 10\n\n    FeedbackUpdate:"}
	keysLoose   = []string{"      maxProperties: 64\n      additionalProperties: true\n", "      maxProperties: 100\n      additionalProperties: true\n"}
	bulkLoose   = []string{"      minItems: 1\n      maxItems: 1000\n      items:\n        $ref: '#/components/schemas/FeedbackRequest'", "      minItems: 1\n      maxItems: 1500\n      items:\n        $ref: '#/components/schemas/FeedbackRequest'"}
	stringLoose = []string{"        maxStringLength: 8192\n", "        maxStringLength: 10000\n"}
)

func join(edits ...[]string) []string {
	var out []string
	for _, e := range edits {
		out = append(out, e...)
	}
	return out
}

// A spec whose default or example breaks its own schema is refused when
// the server starts, naming the value: with a weight default of 1 over a
// maximum of 0.5, every body that leaves the weight out would be refused.
func TestASpecBreakingItsOwnRulesIsRefused(t *testing.T) {
	weight := "      minimum: 0\n      maximum: 1\n      nullable: true\n      default: 1\n      example: 1\n"
	for name, edit := range map[string][]string{
		"default": {weight, strings.Replace(weight, "maximum: 1", "maximum: 1\n      exclusiveMaximum: true", 1)},
		"example": {"      maxLength: 256\n      example: support-chat-8f3a2c91\n", "      maxLength: 8\n      example: support-chat-8f3a2c91\n"},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "feedbackd.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_, err = New(context.Background(), Config{Store: st, Spec: editSpec(t, edit...)})
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("New: %v, want a refusal naming the %s", err, name)
			}
		})
	}
}

// A server built from an edited spec enforces the edited rules on every
// way feedback comes in (one object, an array, the Node SDK's indexed
// object, PUT, a token's submission), with no Go changed: tightened,
// loosened, and a new member with a rule of its own.
func TestAnEditedSpecIsWhatTheServerEnforces(t *testing.T) {
	item := func(trace string, value int, meta map[string]any, extra string) string {
		m, _ := json.Marshal(meta)
		return fmt.Sprintf(`{"trace_id":%q,"value":%d,"metadata":%s%s}`, trace, value, m, extra)
	}
	keys := func(n int) map[string]any {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprint("k", i)] = "v"
		}
		return m
	}
	str := func(n int) map[string]any { return map[string]any{"_user": strings.Repeat("u", n)} }
	bulk := func(n int, one string) string { return "[" + strings.Repeat(one+",", n-1) + one + "]" }
	ok := item("t", 1, nil, "")

	type call struct {
		name   string
		method string // "" is POST /v1/feedback
		body   string
		want   int
	}
	for _, c := range []struct {
		name  string
		edits []string
		calls []call
	}{
		{"tightened", join(valueMax, traceMax, bulkMax, keysMax, stringMax), []call{
			{"value at the new maximum", "", item("t", 5, nil, ""), 200},
			{"value over it", "", item("t", 6, nil, ""), 400},
			{"trace id of 100", "", item(strings.Repeat("t", 100), 1, nil, ""), 200},
			{"trace id of 101", "", item(strings.Repeat("t", 101), 1, nil, ""), 400},
			{"8 metadata keys", "", item("t", 1, keys(8), ""), 200},
			{"9 metadata keys", "", item("t", 1, keys(9), ""), 400},
			{"a string of 20", "", item("t", 1, str(20), ""), 200},
			{"a string of 21", "", item("t", 1, str(21), ""), 400},
			{"a bulk of 300", "", bulk(300, ok), 200},
			{"a bulk of 301", "", bulk(301, ok), 400},
			{"a bulk item over the value", "", "[" + ok + "," + item("t", 6, nil, "") + "]", 400},
			{"an indexed item over the value", "", `{"0":{"traceID":"t","value":6}}`, 400},
			{"an indexed item at it", "", `{"0":{"traceID":"t","value":5}}`, 200},
			{"PUT over the value", "PUT", `{"value":6}`, 400},
			{"PUT with 9 keys", "PUT", `{"value":1,"metadata":` + mustJSON(keys(9)) + `}`, 400},
			{"PUT at the value", "PUT", `{"value":5}`, 200},
			{"a token's value over it", "TOKEN", `{"value":6}`, 400},
			{"a token's string of 21", "TOKEN", `{"value":1,"metadata":` + mustJSON(str(21)) + `}`, 400},
			{"a token's value at it", "TOKEN", `{"value":5}`, 200},
		}},
		{"loosened", join(keysLoose, bulkLoose, stringLoose), []call{
			{"65 metadata keys", "", item("t", 1, keys(65), ""), 200},
			{"101 metadata keys", "", item("t", 1, keys(101), ""), 400},
			{"a bulk of 1001", "", bulk(1001, ok), 200},
			{"a bulk of 1501", "", bulk(1501, ok), 400},
			{"a string of 9000", "", item("t", 1, str(9000), ""), 200},
			{"a string of 10001", "", item("t", 1, str(10001), ""), 400},
			{"PUT with 65 keys", "PUT", `{"value":1,"metadata":` + mustJSON(keys(65)) + `}`, 200},
			{"a token's 65 keys", "TOKEN", `{"value":1,"metadata":` + mustJSON(keys(65)) + `}`, 200},
		}},
		{"a new member", commentRule, []call{
			{"a comment of 10", "", item("t", 1, nil, `,"comment":"0123456789"`), 200},
			{"a comment of 11", "", item("t", 1, nil, `,"comment":"0123456789a"`), 400},
			{"a numeric comment", "", item("t", 1, nil, `,"comment":7`), 400},
			{"a bulk item's comment of 11", "", "[" + ok + "," + item("t", 1, nil, `,"comment":"0123456789a"`) + "]", 400},
			{"no comment", "", ok, 200},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := editSpec(t, c.edits...)
			api := newTestAPIWith(t, Config{Spec: spec})
			served := api.do(t, "GET", "/openapi.yaml", "", nil)
			if served.Body.String() != string(spec) {
				t.Fatal("the server does not serve the spec it was given")
			}
			created := api.do(t, "POST", "/v1/feedback", ok, nil)
			var ids struct {
				FeedbackIDs []string `json:"feedback_ids"`
			}
			if err := json.Unmarshal(created.Body.Bytes(), &ids); err != nil || len(ids.FeedbackIDs) != 1 {
				t.Fatalf("create: %d %s", created.Code, created.Body)
			}
			tok := api.do(t, "POST", "/v1/feedback/tokens", `{"trace_id":"t"}`, nil)
			var token struct{ Token string }
			if err := json.Unmarshal(tok.Body.Bytes(), &token); err != nil || token.Token == "" {
				t.Fatalf("token: %d %s", tok.Code, tok.Body)
			}
			for _, call := range c.calls {
				var rec *httptest.ResponseRecorder
				switch call.method {
				case "":
					rec = api.do(t, "POST", "/v1/feedback", call.body, nil)
				case "PUT":
					rec = api.do(t, "PUT", "/v1/feedback/"+ids.FeedbackIDs[0], call.body, nil)
				case "TOKEN":
					rec = api.do(t, "POST", "/v1/feedback/tokens/"+token.Token, call.body, map[string]string{"x-portkey-api-key": ""})
				}
				if rec.Code != call.want {
					t.Errorf("%s: %d %s, want %d", call.name, rec.Code, truncated(rec.Body.String()), call.want)
				}
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func truncated(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// do sends one request in process with the test's key (a header set to ""
// is left out) and returns the recorded answer.
func (a *testAPI) do(t testing.TB, method, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	req.Header.Set("x-portkey-api-key", a.key)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, req)
	if rec.Code == http.StatusInternalServerError {
		t.Errorf("%s %s: 500 %s", method, path, rec.Body)
	}
	return rec
}
