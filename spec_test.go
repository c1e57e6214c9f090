package feedbackd_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd/gen"
)

// The contract loads and validates as OpenAPI 3.0, both as written and as
// embedded in the binary.
func TestSpecIsValidOpenAPI(t *testing.T) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
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

// Every operation is documented, and every response that is not a success
// is the Error body.
func TestEveryOperationIsDocumented(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Summary == "" || op.Description == "" || op.OperationID == "" {
				t.Errorf("%s %s lacks a summary, description or operationId", method, path)
			}
			for status, resp := range op.Responses.Map() {
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
