package server

import (
	"context"
	"errors"
	"sync"

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
// FeedbackRequest schema as a request body, and its metadata limits.
var builtIn = sync.OnceValues(func() (checker, error) {
	_, spec, err := contract(nil)
	if err != nil {
		return checker{}, err
	}
	ref := spec.Components.Schemas["FeedbackRequest"]
	if ref == nil || ref.Value == nil {
		return checker{}, errors.New("the spec has no FeedbackRequest schema")
	}
	l, err := loadMetadataLimits(spec)
	body := &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
	return checker{body: body, limits: l}, err
})

type checker struct {
	body   *openapi3.RequestBodyRef
	limits metadataLimits
}

// CheckFeedback decodes one feedback item, the JSON object of a
// FeedbackRequest (other members are ignored, as the API ignores them), and
// checks it by exactly the rules POST /v1/feedback applies to each item,
// the same way: the request validator's openapi3filter check (validateBody) of the built-in spec's
// FeedbackRequest, and its x-metadata-limits. feedbackd import uses it, so
// no imported row is one the API would have refused.
func CheckFeedback(raw []byte) (gen.FeedbackRequest, error) {
	if msg := badJSON(raw); msg != "" {
		return gen.FeedbackRequest{}, &FeedbackError{Message: msg}
	}
	c, err := builtIn()
	if err != nil {
		return gen.FeedbackRequest{}, err
	}
	v, err := validateBody(context.Background(), c.body, raw)
	if err != nil {
		return gen.FeedbackRequest{}, feedbackError(err)
	}
	items, err := bindItems([]any{v})
	if err != nil {
		return gen.FeedbackRequest{}, err
	}
	it := items[0]
	if it.Metadata != nil {
		if fe := c.limits.check([]string{"metadata"}, *it.Metadata); fe != nil {
			return gen.FeedbackRequest{}, &FeedbackError{Path: fe.Path, Message: fe.Message}
		}
	}
	return it, nil
}

// feedbackError is the first field error of a refused item, as the API
// would list it.
func feedbackError(err error) error {
	var re *requestError
	if !errors.As(err, &re) {
		return err
	}
	if len(re.fields) > 0 {
		return &FeedbackError{Path: re.fields[0].Path, Message: re.fields[0].Message}
	}
	return &FeedbackError{Message: re.message}
}
