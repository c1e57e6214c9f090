package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
)

// rules are the request rules the server applies itself, read from the
// spec it serves when it starts, so that an edited and regenerated spec is
// what the server enforces, with no Go constant repeating it: the fast
// path's (nil when the spec says anything it does not understand, which
// turns it off) and the metadata limits JSON Schema cannot state.
type rules struct {
	fast *fastRules
	meta metadataLimits
}

func loadRules(doc *openapi3.T) (rules, error) {
	meta, err := loadMetadataLimits(doc)
	if err != nil {
		return rules{}, err
	}
	return rules{fast: loadFastRules(doc), meta: meta}, nil
}

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

// fastRules are the rules of FeedbackRequestList and FeedbackRequest that
// the fast path checks, as the loaded spec states them.
type fastRules struct {
	minItems, maxItems   int
	minTrace, maxTrace   int
	minValue, maxValue   int
	minWeight, maxWeight float64
	// defaultWeight is the weight of an item without one, as the validator
	// fills it in; nil when the spec gives no default.
	defaultWeight *float64
	weightNull    bool // weight may be null
	metadataNull  bool // metadata may be null
	maxProperties int  // of metadata
	// required are the members an item must have, in fastMembers order.
	required [len(fastMembers)]bool
	// closed is additionalProperties: false: other members are refused.
	closed bool
}

// loadFastRules reads the fast path's rules from doc, or returns nil when
// the schemas hold anything the fast path does not check (a member it does
// not decode, a pattern, a format, an exclusive bound, ...): it then
// declines every body and kin-openapi validates them all.
func loadFastRules(doc *openapi3.T) *fastRules {
	schemas := doc.Components.Schemas
	list, item := schemaOf(schemas["FeedbackRequestList"]), schemaOf(schemas["FeedbackRequest"])
	if list == nil || item == nil || list.Items == nil || list.Items.Value != item {
		return nil
	}
	r := &fastRules{minItems: int(list.MinItems), maxItems: limit(list.MaxItems)}
	if !only(list, "array", "minItems", "maxItems", "items") ||
		!only(item, "object", "required", "properties", "additionalProperties") {
		return nil
	}
	switch ap := item.AdditionalProperties; {
	case ap.Schema != nil:
		return nil
	case ap.Has != nil && !*ap.Has:
		r.closed = true
	}
	for _, name := range item.Required {
		k := slices.Index(fastMembers[:], name)
		if k < 0 {
			return nil
		}
		r.required[k] = true
	}
	if !r.required[0] || !r.required[1] {
		return nil // the generated item type holds trace_id and value as values
	}
	for name, ref := range item.Properties {
		s := schemaOf(ref)
		if s == nil {
			return nil
		}
		switch name {
		case "trace_id":
			if !only(s, "string", "minLength", "maxLength") {
				return nil
			}
			r.minTrace, r.maxTrace = int(s.MinLength), limit(s.MaxLength)
		case "value":
			if !only(s, "integer", "minimum", "maximum") || s.Min == nil || s.Max == nil {
				return nil
			}
			r.minValue, r.maxValue = int(math.Ceil(*s.Min)), int(math.Floor(*s.Max))
		case "weight":
			if !only(s, "number", "format", "minimum", "maximum", "nullable", "default") || s.Min == nil || s.Max == nil ||
				(s.Format != "" && s.Format != "double") {
				return nil
			}
			r.minWeight, r.maxWeight, r.weightNull = *s.Min, *s.Max, s.Nullable
			if s.Default != nil {
				d, ok := s.Default.(float64)
				if !ok {
					return nil
				}
				r.defaultWeight = &d
			}
		case "metadata":
			if !only(s, "object", "nullable", "maxProperties", "additionalProperties", "x-metadata-limits") ||
				s.AdditionalProperties.Schema != nil || (s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has) {
				return nil
			}
			r.metadataNull, r.maxProperties = s.Nullable, limit(s.MaxProps)
		default:
			return nil // a member the fast path does not decode
		}
	}
	return r
}

func schemaOf(ref *openapi3.SchemaRef) *openapi3.Schema {
	if ref == nil {
		return nil
	}
	return ref.Value
}

// limit is an optional upper bound, math.MaxInt when absent.
func limit(n *uint64) int {
	if n == nil || *n > math.MaxInt32 {
		return math.MaxInt
	}
	return int(*n)
}

// only says whether s has exactly type typ and no keyword but keywords
// (and the ones that change nothing: description, title, example).
func only(s *openapi3.Schema, typ string, keywords ...string) bool {
	if s.Type == nil || !s.Type.Is(typ) || len(s.Type.Slice()) != 1 {
		return false
	}
	y, err := s.MarshalYAML()
	m, ok := y.(map[string]any)
	if err != nil || !ok {
		return false
	}
	for k := range m {
		switch k {
		case "type", "description", "title", "example", "examples":
		default:
			if !slices.Contains(keywords, k) {
				return false
			}
		}
	}
	return true
}
