package feedbackd

import _ "embed"

// openAPI is openapi.yaml exactly as committed.
//
//go:embed openapi.yaml
var openAPI string

// OpenAPI returns the contract, openapi.yaml, byte for byte as it is in the
// repository. The server parses these bytes into the document it validates
// requests against and serves the same bytes at /openapi.yaml, so what a
// client reads is exactly what the server enforces. (The spec that
// oapi-codegen embeds in gen/ is a re-encoding with renamed operationIds,
// which is why it is not used for either.) Each call returns a new copy.
func OpenAPI() []byte { return []byte(openAPI) }
