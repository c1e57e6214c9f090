package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd/gen"
)

// The metadata limits beyond what the spec's schema can say, read from its
// x-metadata-limits when the server starts, so that an edited and
// regenerated spec is what the server enforces, with no Go constant
// repeating it: nesting, key and string lengths, total size. They keep one
// feedback from costing the store, the indexes and every later reader more
// than a feedback should.

// metadataLimits are the Metadata schema's x-metadata-limits; 0 is no
// limit.
type metadataLimits struct {
	MaxDepth        int `json:"maxDepth"`
	MaxKeyLength    int `json:"maxKeyLength"`
	MaxStringLength int `json:"maxStringLength"`
	MaxBytes        int `json:"maxBytes"`
}

// loadMetadataLimits reads x-metadata-limits, refusing a member it does
// not know: a misspelt limit must not silently be no limit.
func loadMetadataLimits(doc *openapi3.T) (metadataLimits, error) {
	var l metadataLimits
	ref := doc.Components.Schemas["Metadata"]
	if ref == nil || ref.Value == nil {
		return l, nil
	}
	raw, ok := ref.Value.Extensions["x-metadata-limits"]
	if !ok {
		return l, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return l, fmt.Errorf("server: x-metadata-limits: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("server: x-metadata-limits: %w", err)
	}
	if l.MaxDepth < 0 || l.MaxKeyLength < 0 || l.MaxStringLength < 0 || l.MaxBytes < 0 {
		return l, fmt.Errorf("server: x-metadata-limits: a limit is negative: %+v", l)
	}
	return l, nil
}

// check returns a field error for metadata over a limit, with path the
// JSON pointer of the metadata object in the request body.
func (l metadataLimits) check(path []string, m map[string]any) *gen.FieldError {
	_, fe := l.encode(path, m)
	return fe
}

// encode is check that also returns the metadata as JSON
// (store.EncodeMetadata's encoding), which the check has to make anyway.
func (l metadataLimits) encode(path []string, m map[string]any) (string, *gen.FieldError) {
	if m == nil {
		return "", nil
	}
	if fe := l.checkValue(path, m, 1); fe != nil {
		return "", fe
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", &gen.FieldError{Path: pointer(path), Message: "cannot be stored as JSON"}
	}
	if l.MaxBytes > 0 && len(b) > l.MaxBytes {
		return "", &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("is %d bytes as JSON, more than %d", len(b), l.MaxBytes)}
	}
	return string(b), nil
}

func (l metadataLimits) checkValue(path []string, v any, depth int) *gen.FieldError {
	switch v := v.(type) {
	case string:
		if n := utf8.RuneCountInString(v); l.MaxStringLength > 0 && n > l.MaxStringLength {
			return &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("string of %d characters, more than %d", n, l.MaxStringLength)}
		}
	case map[string]any:
		if l.MaxDepth > 0 && depth > l.MaxDepth {
			return &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("nested deeper than %d levels", l.MaxDepth)}
		}
		for k, item := range v {
			p := append(path[:len(path):len(path)], k)
			if l.MaxKeyLength > 0 && utf8.RuneCountInString(k) > l.MaxKeyLength {
				return &gen.FieldError{Path: pointer(p), Message: fmt.Sprintf("key longer than %d characters", l.MaxKeyLength)}
			}
			if fe := l.checkValue(p, item, depth+1); fe != nil {
				return fe
			}
		}
	case []any:
		if l.MaxDepth > 0 && depth > l.MaxDepth {
			return &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("nested deeper than %d levels", l.MaxDepth)}
		}
		for i, item := range v {
			if fe := l.checkValue(append(path[:len(path):len(path)], strconv.Itoa(i)), item, depth+1); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// metadataError is the 400 for metadata over a limit.
func metadataError(fe *gen.FieldError) error {
	return &requestError{status: http.StatusBadRequest, message: "request body is invalid", fields: []gen.FieldError{*fe}}
}
