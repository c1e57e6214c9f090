package server

import (
	"bytes"
	"encoding/json"
	"errors"
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

// builtIn is what CheckFeedback checks by: the built-in spec's
// FeedbackRequest schema and the rules the server reads from it.
var builtIn = sync.OnceValues(func() (checker, error) {
	_, spec, err := contract(nil)
	if err != nil {
		return checker{}, err
	}
	ref := spec.Components.Schemas["FeedbackRequest"]
	if ref == nil || ref.Value == nil {
		return checker{}, errors.New("the spec has no FeedbackRequest schema")
	}
	r, err := loadRules(spec)
	return checker{schema: ref.Value, rules: r}, err
})

type checker struct {
	schema *openapi3.Schema
	rules  rules
}

// CheckFeedback decodes one feedback item, the JSON object of a
// FeedbackRequest (other members are ignored, as the API ignores them), and
// checks it by exactly the rules POST /v1/feedback applies to each item:
// the built-in spec's FeedbackRequest schema and its x-metadata-limits. It takes the API's own way: the fast path's
// decoder when it is sure, the spec's schema otherwise. feedbackd import
// uses it, so no imported row is one the API would have refused.
func CheckFeedback(raw []byte) (gen.FeedbackRequest, error) {
	if !utf8.Valid(raw) {
		return gen.FeedbackRequest{}, &FeedbackError{Message: "is not valid UTF-8"}
	}
	c, err := builtIn()
	if err != nil {
		return gen.FeedbackRequest{}, err
	}
	var it gen.FeedbackRequest
	ok := c.rules.fast != nil
	if ok {
		it, ok = c.rules.fast.item(raw)
	}
	if !ok {
		if it, err = checkFeedbackSlow(c.schema, raw); err != nil {
			return gen.FeedbackRequest{}, err
		}
	}
	if it.Metadata != nil {
		if fe := c.rules.meta.check([]string{"metadata"}, *it.Metadata); fe != nil {
			return gen.FeedbackRequest{}, &FeedbackError{Path: fe.Path, Message: fe.Message}
		}
	}
	return it, nil
}

// checkFeedbackSlow validates an item the fast path declined against the
// spec's schema, as the request validator would, and binds it.
func checkFeedbackSlow(schema *openapi3.Schema, raw []byte) (gen.FeedbackRequest, error) {
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
