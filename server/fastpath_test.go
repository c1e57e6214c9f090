package server

import (
	"encoding/json"
	"maps"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/feedbackd/feedbackd/gen"
)

// feedbackInputSchema is the spec's schema of the POST /v1/feedback body.
func feedbackInputSchema(t testing.TB) *openapi3.Schema {
	_, spec, err := contract(nil)
	if err != nil {
		t.Fatal(err)
	}
	return spec.Components.Schemas["FeedbackInput"].Value
}

// builtInFastRules are the fast path's rules as the built-in spec gives
// them.
func builtInFastRules(t testing.TB) *fastRules {
	_, spec, err := contract(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := loadFastRules(spec)
	if r == nil {
		t.Fatal("the fast path does not understand the built-in spec")
	}
	return r
}

// kinAccepts validates a body as the full path does: decoded with
// numbers kept, checked against the spec's schema by kin-openapi.
func kinAccepts(t testing.TB, schema *openapi3.Schema, body []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false
	}
	return schema.VisitJSON(v, append(schemaOptions(), openapi3.VisitAsRequest())...) == nil
}

// FuzzFastPath is the differential test of the fast path against
// kin-openapi: every body the fast path accepts, kin-openapi accepts, and
// the fast path's items are the body's items as the spec reads them.
// (What the fast path declines takes kin-openapi's path, so a decline is
// never wrong, only slower.)
func FuzzFastPath(f *testing.F) {
	for _, s := range []string{
		`{"trace_id":"t","value":1}`,
		`{"trace_id":"t","value":-10,"weight":0.5,"metadata":{"_user":"u","n":[1,{"a":null}]}}`,
		`[{"trace_id":"a","value":1},{"trace_id":"b","value":2,"weight":null,"metadata":null,"extra":{"x":1}}]`,
		`{"trace_id":"t","value":1,"value":2}`, `{"trace_id":"t","value":1,"Value":2}`, `{"trace_id":"t","value":1.0}`,
		`{"trace_id":"","value":1}`, `{"trace_id":"t","value":11}`, `{"trace_id":"t","value":-0,"weight":-0}`,
		`{"trace_id":"t","value":1,"weight":1.0000000000000001}`, `{"trace_id":"t","value":1,"weight":1e-400}`,
		`{"trace_id":"t","value":1,"metadata":[]}`, `[]`, `{"0":{"traceID":"a","value":1}}`, `{"trace_id":"\ud800","value":1}`,
		`{"trace_id":"t","value":1,"metadata":{"a":1,"a":2}}`, `{"trace_id":1,"value":1}`, `{"trace_id":"t","value":"1"}`,
		`{"trace_id":"t\u0009","value":1,"metadata":{"a\u0062":"x","b":"\u00e9","c":-1.5e3,"d":true,"e":null,"b":false}}`,
		` [ {"trace_id" : "a" , "value" : 1 , "metadata" : { "k" : "v" , "n" : 0 } } ] `, `{"trace_id":"t","value":1}  x`,
	} {
		f.Add([]byte(s))
	}
	schema, rules := feedbackInputSchema(f), builtInFastRules(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) || !json.Valid(body) {
			return // refused before either path sees it
		}
		d, ok := fastDecode(rules, body)
		if !ok {
			return
		}
		if !kinAccepts(t, schema, body) {
			t.Fatalf("fast path accepts %q, kin-openapi refuses it", body)
		}
		want := expectedItems(t, body)
		if len(want) != len(d.items) {
			t.Fatalf("%q: %d items, want %d", body, len(d.items), len(want))
		}
		for i, it := range d.items {
			w := want[i]
			weight := 1.0
			if it.Weight != nil {
				weight = *it.Weight
			}
			meta := map[string]any{}
			if it.Metadata != nil {
				meta = *it.Metadata
			}
			gotMeta, _ := json.Marshal(normalizeJSON(meta))
			wantMeta, _ := json.Marshal(normalizeJSON(w.metadata))
			if it.TraceID != w.traceID || it.Value != w.value || weight != w.weight || string(gotMeta) != string(wantMeta) {
				t.Fatalf("%q item %d: fast path %s/%d/%v/%s, spec %s/%d/%v/%s", body, i, it.TraceID, it.Value, weight, gotMeta, w.traceID, w.value, w.weight, wantMeta)
			}
		}
	})
}

// The fast path takes the common bodies, so it is worth having.
func TestFastPathTakesTheCommonBodies(t *testing.T) {
	rules := builtInFastRules(t)
	for _, body := range []string{
		`{"trace_id":"trace-1","value":5}`,
		`{"trace_id":"trace-1","value":-1,"weight":0.25,"metadata":{"_user":"user_123","_prompt":"support-v2"}}`,
		`{"trace_id":"t","value":1,"weight":null,"metadata":null}`,
		`[{"trace_id":"a","value":1},{"trace_id":"b","value":-1,"weight":0.5}]`,
		`{"trace_id":"t","value":1,"feedback_id":"ignored"}`,
	} {
		if _, ok := fastDecode(rules, []byte(body)); !ok {
			t.Errorf("the fast path declines %s", body)
		}
	}
}

// The fast path's rules are the loaded spec's, and a schema holding
// anything the fast path does not check turns it off.
func TestFastRulesAreTheSpecs(t *testing.T) {
	got := builtInFastRules(t)
	one := 1.0
	want := &fastRules{minItems: 1, maxItems: 1000, minTrace: 1, maxTrace: 256, minValue: -10, maxValue: 10,
		minWeight: 0, maxWeight: 1, defaultWeight: &one, weightNull: true, metadataNull: true, maxProperties: 64,
		required: [4]bool{true, true, false, false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules from the spec:\n got %+v\nwant %+v", got, want)
	}
	for _, c := range []struct{ name, from, to string }{
		{"a pattern on the trace id", "      minLength: 1\n      maxLength: 256\n      example: support-chat-8f3a2c91\n\n    FeedbackValue:",
			"      minLength: 1\n      maxLength: 256\n      pattern: '^[a-z]+$'\n      example: support-chat-8f3a2c91\n\n    FeedbackValue:"},
		{"a member it does not decode", "        metadata:\n          $ref: '#/components/schemas/Metadata'\n\n    FeedbackUpdate:",
			"        metadata:\n          $ref: '#/components/schemas/Metadata'\n        comment:\n          type: string\n\n    FeedbackUpdate:"},
		{"an exclusive bound", "      type: integer\n      minimum: -10\n      maximum: 10\n", "      type: integer\n      minimum: -10\n      maximum: 10\n      multipleOf: 2\n"},
		{"a metadata value schema", "      maxProperties: 64\n      additionalProperties: true\n", "      maxProperties: 64\n      additionalProperties:\n        type: string\n"},
	} {
		_, spec, err := contract(editSpec(t, c.from, c.to))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r := loadFastRules(spec); r != nil {
			t.Errorf("%s: the fast path keeps rules %+v", c.name, r)
		}
	}
}

// The server routes POST /v1/feedback, and only it, to the fast path.
func TestFastPathServesCreateFeedback(t *testing.T) {
	_, spec, err := contract(nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			want := path == "/feedback" && method == "POST"
			if got := takesFeedbackInput(op); got != want {
				t.Errorf("%s %s: takesFeedbackInput %v, want %v", method, path, got, want)
			}
		}
	}
}

// The fast path's answer is byte for byte the one the generated strict
// handler writes for the same ids: headers, status and body.
func TestFastAnswerIsTheGeneratedOne(t *testing.T) {
	for _, n := range []int{1, 3, 1000} {
		ids := make([]openapi_types.UUID, n)
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7())
		}
		want := httptest.NewRecorder()
		resp := gen.CreateFeedback200JSONResponse{FeedbackAcceptedJSONResponse: accepted(createdMessage, ids...)}
		if err := resp.VisitCreateFeedbackResponse(want); err != nil {
			t.Fatal(err)
		}
		got := httptest.NewRecorder()
		if err := writeCreated(got, ids); err != nil {
			t.Fatal(err)
		}
		if got.Code != want.Code || !maps.EqualFunc(got.Header(), want.Header(), slices.Equal) || got.Body.String() != want.Body.String() {
			t.Errorf("%d ids: fast answer %d %v %q, generated %d %v %q", n, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}
