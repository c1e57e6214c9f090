package feedbackd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd"
	"github.com/feedbackd/feedbackd/gen"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	return doc
}

// The contract loads and validates as OpenAPI 3.0, both as written and as
// embedded in the binary.
func TestSpecIsValidOpenAPI(t *testing.T) {
	ctx := context.Background()
	doc := loadSpec(t)
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi version: got %s, want 3.0.3", doc.OpenAPI)
	}
	embedded, err := gen.GetSwagger()
	if err != nil {
		t.Fatalf("embedded spec: %v", err)
	}
	if err := embedded.Validate(ctx); err != nil {
		t.Fatalf("embedded spec is not valid: %v", err)
	}
	if got, want := len(embedded.Paths.Map()), len(doc.Paths.Map()); got != want {
		t.Errorf("embedded spec has %d paths, openapi.yaml %d: regenerate", got, want)
	}
}

// The spec the server validates with and serves is openapi.yaml, byte for
// byte.
func TestOpenAPIIsTheFile(t *testing.T) {
	file, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(feedbackd.OpenAPI(), file) {
		t.Error("feedbackd.OpenAPI() differs from openapi.yaml")
	}
}

// Every operation is documented: a summary, a description, an example for
// every request and response body, and every response that is not a
// success is the Error body.
func TestEveryOperationIsDocumented(t *testing.T) {
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Summary == "" || op.Description == "" || op.OperationID == "" {
				t.Errorf("%s %s lacks a summary, description or operationId", method, path)
			}
			if op.RequestBody != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					if mt.Example == nil && len(mt.Examples) == 0 {
						t.Errorf("%s %s: request body %s has no example", method, path, ct)
					}
				}
			}
			for status, resp := range op.Responses.Map() {
				for ct, mt := range resp.Value.Content {
					if mt.Example == nil && len(mt.Examples) == 0 {
						t.Errorf("%s %s %s: response body %s has no example", method, path, status, ct)
					}
				}
				if status[0] == '2' {
					continue
				}
				mt := resp.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Error" {
					t.Errorf("%s %s %s is not the Error body", method, path, status)
				}
			}
		}
	}
}

// Every example in the spec (of a request or response body, a parameter, a
// header or a schema) is valid against its schema, checked by kin-openapi
// as the server checks requests: formats included (uuid as RFC 9562, which
// kin-openapi leaves unchecked by default), bodies as requests or responses.
// The reference at /docs shows these examples, and integrators copy them.
// So is every default: a spec edit that makes a default break its own rule
// (weight's default 1 under a maximum of 0.5) would otherwise pass and then
// refuse every request that leaves the member out.
func TestEveryExampleMatchesItsSchema(t *testing.T) {
	examples := specExamples(loadSpec(t))
	if len(examples) < 50 {
		t.Fatalf("found only %d examples: is the walk broken?", len(examples))
	}
	for _, ex := range examples {
		if err := ex.check(); err != nil {
			t.Errorf("example %s does not match its schema:\n%v", ex.where, err)
		}
	}
}

// The walk finds every kind of example, and a broken one fails it.
func TestExampleWalkCatchesBrokenExamples(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// One broken example of each kind: a response body's, a request body's,
	// a parameter's and a schema property's, and a default. The uuid is wrong only in its
	// version digit, which only a uuid format check notices.
	breaks := []struct{ where, old, new string }{
		{"FeedbackAccepted recorded", "feedback_ids: [01a218cc-bafb-7c4e-9a1d-3f5b7e2c8d40]\n            bulk:", "feedback_ids: [01a218cc-bafb-9c4e-9a1d-3f5b7e2c8d40]\n            bulk:"},
		{"createFeedback single", "                  value: 5\n                  weight: 1\n", "                  value: 11\n                  weight: 1\n"},
		{"limit parameter", "            default: 100\n          example: 50", "            default: 100\n          example: 5000"},
		{"Feedback.weight", "          description: How much the feedback counts.\n          example: 1", "          description: How much the feedback counts.\n          example: 2"},
		{"limit parameter default", "            default: 100\n          example: 50", "            default: 5000\n          example: 50"},
	}
	for _, b := range breaks {
		t.Run(b.where, func(t *testing.T) {
			if bytes.Count(raw, []byte(b.old)) != 1 {
				t.Fatalf("the text to break is not in openapi.yaml exactly once: %q", b.old)
			}
			doc, err := openapi3.NewLoader().LoadFromData(bytes.Replace(raw, []byte(b.old), []byte(b.new), 1))
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, ex := range specExamples(doc) {
				if ex.check() != nil {
					failed = append(failed, ex.where)
				}
			}
			if len(failed) != 1 {
				t.Errorf("broken example: got failures %v, want exactly one", failed)
			}
		})
	}
}

// Portkey's Node SDK names the trace id traceID; its schema must keep the
// limits of TraceID (it cannot $ref it: the Go field needs its own name).
func TestCamelTraceIDHasTraceIDLimits(t *testing.T) {
	s := loadSpec(t).Components.Schemas
	camel := s["NodeSDKFeedbackRequest"].Value.Properties["traceID"].Value
	trace := s["TraceID"].Value
	if camel.MinLength != trace.MinLength || *camel.MaxLength != *trace.MaxLength || !camel.Type.Is(openapi3.TypeString) {
		t.Errorf("traceID: type %v length %d..%d, TraceID %d..%d", camel.Type, camel.MinLength, *camel.MaxLength, trace.MinLength, *trace.MaxLength)
	}
}

// example is one example found in the spec, with the schema it must match.
type example struct {
	where  string
	schema *openapi3.Schema
	value  any
	// as is openapi3.VisitAsRequest, VisitAsResponse or nil.
	as openapi3.SchemaValidationOption
}

func (ex example) check() error {
	if ex.schema == nil {
		return errors.New("no schema")
	}
	opts := []openapi3.SchemaValidationOption{
		openapi3.MultiErrors(),
		openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
			"uuid": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
		}),
	}
	if ex.as != nil {
		opts = append(opts, ex.as)
	}
	return ex.schema.VisitJSON(ex.value, opts...)
}

// specExamples walks doc and returns every example in it, sorted by place.
// An example reached twice (through an operation and as a component, which
// kin-openapi resolves to the same value) is listed once.
func specExamples(doc *openapi3.T) []example {
	var out []example
	found := map[string]bool{}
	add := func(key string, ex example) {
		if !found[key] {
			found[key] = true
			out = append(out, ex)
		}
	}
	seen := map[*openapi3.Schema]bool{}
	var walkSchema func(where string, s *openapi3.SchemaRef)
	walkSchema = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if ref.Ref != "" {
			where = ref.Ref
		}
		if s.Example != nil {
			add(fmt.Sprintf("schema %p", s), example{where: where + " example", schema: s, value: s.Example})
		}
		// A default is what the server fills in for a member left out: one
		// that breaks its own schema would refuse every such request.
		if s.Default != nil {
			add(fmt.Sprintf("default %p", s), example{where: where + " default", schema: s, value: s.Default})
		}
		for name, p := range s.Properties {
			walkSchema(where+"/properties/"+name, p)
		}
		walkSchema(where+"/items", s.Items)
		walkSchema(where+"/additionalProperties", s.AdditionalProperties.Schema)
		for i, sub := range slices.Concat(s.OneOf, s.AnyOf, s.AllOf) {
			walkSchema(fmt.Sprintf("%s/of/%d", where, i), sub)
		}
	}
	mediaTypes := func(where string, content openapi3.Content, as openapi3.SchemaValidationOption) {
		for ct, mt := range content {
			if mt.Schema == nil {
				continue
			}
			if mt.Example != nil {
				add(fmt.Sprintf("media %p", mt), example{where: where + " " + ct + " example", schema: mt.Schema.Value, value: mt.Example, as: as})
			}
			for name, ex := range mt.Examples {
				add(fmt.Sprintf("media %p %s", mt, name), example{where: where + " " + ct + " examples/" + name, schema: mt.Schema.Value, value: ex.Value.Value, as: as})
			}
			walkSchema(where+" "+ct, mt.Schema)
		}
	}
	parameters := func(where string, params openapi3.Parameters) {
		for _, p := range params {
			pw := where + " parameter " + p.Value.Name
			if p.Value.Schema == nil {
				continue
			}
			if p.Value.Example != nil {
				add(fmt.Sprintf("parameter %p", p.Value), example{where: pw + " example", schema: p.Value.Schema.Value, value: p.Value.Example, as: openapi3.VisitAsRequest()})
			}
			for name, ex := range p.Value.Examples {
				add(fmt.Sprintf("parameter %p %s", p.Value, name), example{where: pw + " examples/" + name, schema: p.Value.Schema.Value, value: ex.Value.Value, as: openapi3.VisitAsRequest()})
			}
			walkSchema(pw, p.Value.Schema)
		}
	}
	responses := func(where string, resp *openapi3.Response) {
		mediaTypes(where, resp.Content, openapi3.VisitAsResponse())
		for name, h := range resp.Headers {
			if h.Value.Schema != nil && h.Value.Example != nil {
				add(fmt.Sprintf("header %p", h.Value), example{where: where + " header " + name + " example", schema: h.Value.Schema.Value, value: h.Value.Example, as: openapi3.VisitAsResponse()})
			}
		}
	}

	for path, item := range doc.Paths.Map() {
		parameters(path, item.Parameters)
		for method, op := range item.Operations() {
			where := method + " " + path
			parameters(where, op.Parameters)
			if op.RequestBody != nil {
				mediaTypes(where+" request", op.RequestBody.Value.Content, openapi3.VisitAsRequest())
			}
			for status, resp := range op.Responses.Map() {
				responses(where+" "+status, resp.Value)
			}
		}
	}
	// Components too, so that nothing unused hides a broken example.
	for name, p := range doc.Components.Parameters {
		parameters("#/components/parameters/"+name, openapi3.Parameters{p})
	}
	for name, rb := range doc.Components.RequestBodies {
		mediaTypes("#/components/requestBodies/"+name, rb.Value.Content, openapi3.VisitAsRequest())
	}
	for name, r := range doc.Components.Responses {
		responses("#/components/responses/"+name, r.Value)
	}
	for name, s := range doc.Components.Schemas {
		walkSchema("#/components/schemas/"+name, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].where < out[j].where })
	return out
}
