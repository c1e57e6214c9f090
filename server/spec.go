package server

import (
	"context"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd"
)

// contract parses raw (openapi.yaml as embedded by the root package, when
// empty) into the document requests are validated against, and refuses
// one that is not valid OpenAPI, examples and defaults included: a default
// that breaks its own schema would refuse every body that leaves the
// member out, so the server does not start with it. The bytes it returns
// are the ones parsed, for serving at /openapi.yaml: clients read exactly
// the contract that is enforced.
func contract(raw []byte) ([]byte, *openapi3.T, error) {
	if len(raw) == 0 {
		raw = feedbackd.OpenAPI()
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("server: load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("server: openapi.yaml is not valid: %w", err)
	}
	return raw, doc, nil
}
