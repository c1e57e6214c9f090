package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/gen"
)

// Limits on metadata beyond what the spec's schema can say (its Metadata
// description states them): nesting, key and string lengths, total size.
// They keep one feedback from costing the store, the indexes and every
// later reader more than a feedback should.
const (
	maxMetadataDepth  = 8
	maxMetadataKey    = 256
	maxMetadataString = 8192
	maxMetadataBytes  = 32768
)

// checkMetadata returns a field error for metadata over a limit, with path
// the JSON pointer of the metadata object in the request body.
func checkMetadata(path []string, m map[string]any) *gen.FieldError {
	_, fe := encodeMetadata(path, m)
	return fe
}

// encodeMetadata is checkMetadata that also returns the metadata as JSON
// (store.EncodeMetadata's encoding), which the check has to make anyway.
func encodeMetadata(path []string, m map[string]any) (string, *gen.FieldError) {
	if m == nil {
		return "", nil
	}
	if fe := checkValue(path, m, 1); fe != nil {
		return "", fe
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", &gen.FieldError{Path: pointer(path), Message: "cannot be stored as JSON"}
	}
	if len(b) > maxMetadataBytes {
		return "", &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("is %d bytes as JSON, more than %d", len(b), maxMetadataBytes)}
	}
	return string(b), nil
}

func checkValue(path []string, v any, depth int) *gen.FieldError {
	switch v := v.(type) {
	case string:
		if n := utf8.RuneCountInString(v); n > maxMetadataString {
			return &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("string of %d characters, more than %d", n, maxMetadataString)}
		}
	case map[string]any:
		if depth > maxMetadataDepth {
			return &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("nested deeper than %d levels", maxMetadataDepth)}
		}
		for k, item := range v {
			p := append(path[:len(path):len(path)], k)
			if utf8.RuneCountInString(k) > maxMetadataKey {
				return &gen.FieldError{Path: pointer(p), Message: fmt.Sprintf("key longer than %d characters", maxMetadataKey)}
			}
			if fe := checkValue(p, item, depth+1); fe != nil {
				return fe
			}
		}
	case []any:
		if depth > maxMetadataDepth {
			return &gen.FieldError{Path: pointer(path), Message: fmt.Sprintf("nested deeper than %d levels", maxMetadataDepth)}
		}
		for i, item := range v {
			if fe := checkValue(append(path[:len(path):len(path)], strconv.Itoa(i)), item, depth+1); fe != nil {
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
