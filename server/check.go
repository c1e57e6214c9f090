package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd/gen"
)

// FeedbackError says why CheckFeedback refused an item: the JSON pointer of
// the field within the item and the reason, as the API's field errors say.
type FeedbackError struct {
	Path, Message string
}

// Error implements error.
func (e *FeedbackError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// feedbackRequestSchema is the spec's FeedbackRequest, the schema of each
// item of POST /v1/feedback.
var feedbackRequestSchema = sync.OnceValues(func() (*openapi3.Schema, error) {
	spec, err := gen.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	ref := spec.Components.Schemas["FeedbackRequest"]
	if ref == nil || ref.Value == nil {
		return nil, errors.New("the spec has no FeedbackRequest schema")
	}
	return ref.Value, nil
})

// CheckFeedback decodes one feedback item, the JSON object of a
// FeedbackRequest (other members are ignored, as the API ignores them), and
// checks it by exactly the rules POST /v1/feedback applies to each item:
// the spec's FeedbackRequest schema (trace id length, an integer value
// -10..10, a weight 0..1, a metadata object of at most 64 keys) and the
// metadata limits beyond it. It takes the API's own way: the fast path's
// decoder when it is sure, the spec's schema otherwise. feedbackd import
// uses it, so no imported row is one the API would have refused.
func CheckFeedback(raw []byte) (gen.FeedbackRequest, error) {
	if !utf8.Valid(raw) {
		return gen.FeedbackRequest{}, &FeedbackError{Message: "is not valid UTF-8"}
	}
	it, ok := fastItem(raw)
	if !ok {
		var err error
		if it, err = checkFeedbackSlow(raw); err != nil {
			return gen.FeedbackRequest{}, err
		}
	}
	if it.Metadata != nil {
		if fe := checkMetadata([]string{"metadata"}, *it.Metadata); fe != nil {
			return gen.FeedbackRequest{}, &FeedbackError{Path: fe.Path, Message: fe.Message}
		}
	}
	return it, nil
}

// checkFeedbackSlow validates an item the fast path declined against the
// spec's schema, as the request validator would, and binds it.
func checkFeedbackSlow(raw []byte) (gen.FeedbackRequest, error) {
	schema, err := feedbackRequestSchema()
	if err != nil {
		return gen.FeedbackRequest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return gen.FeedbackRequest{}, &FeedbackError{Message: "is not one JSON value"}
	}
	opts := append(slices.Clone(schemaOptions()), openapi3.VisitAsRequest())
	if err := schema.VisitJSON(v, opts...); err != nil {
		if fes := fieldErrors(err); len(fes) > 0 {
			return gen.FeedbackRequest{}, &FeedbackError{Path: fes[0].Path, Message: fes[0].Message}
		}
		return gen.FeedbackRequest{}, &FeedbackError{Message: err.Error()}
	}
	integralNumbers(schema, v)
	items, err := bindItems([]any{v})
	if err != nil {
		return gen.FeedbackRequest{}, &FeedbackError{Message: err.Error()}
	}
	// Binding decodes numbers into float64; the metadata as validated
	// keeps their spelling (1e21 stays 1e21, 12345678901234567890 exact).
	if m, ok := v.(map[string]any)["metadata"].(map[string]any); ok {
		md := gen.Metadata(m)
		items[0].Metadata = &md
	}
	return items[0], nil
}
