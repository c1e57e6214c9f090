package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/gen"
)

// The fast path decodes the common POST /v1/feedback bodies (one feedback
// object, or an array of them, with the spec's members) in one pass and
// checks exactly the rules the spec's FeedbackInput schema states, so the
// request skips kin-openapi's generic validation and the decode, re-encode
// and decode that binding its result costs. It is deliberately narrow:
// anything it is not sure of (the Node SDK's index-keyed form, a member
// spelled in another case, a number written with a fraction or an exponent,
// any rule broken) makes it decline, and the request takes the full path,
// which also writes the error. A differential fuzz test (FuzzFastPath)
// holds it to that: whatever it accepts, kin-openapi accepts, with the same
// values.

// Spec limits the fast path checks, mirrored from openapi.yaml's
// FeedbackRequest and FeedbackRequestList (TestFastPathLimitsMatchSpec
// compares them with the embedded spec).
const (
	fastMinItems      = 1
	fastMaxItems      = 1000
	fastMinTrace      = 1
	fastMaxTrace      = 256
	fastMinValue      = -10
	fastMaxValue      = 10
	fastMaxProperties = 64
)

type fastItemsKey struct{}

// fastItems returns the items the fast path decoded for this request.
func fastItems(ctx context.Context) ([]gen.FeedbackRequest, bool, bool) {
	d, ok := ctx.Value(fastItemsKey{}).(*fastDecoded)
	if !ok {
		return nil, false, false
	}
	return d.items, d.bulk, true
}

type fastDecoded struct {
	items []gen.FeedbackRequest
	bulk  bool
}

// fastDecode decodes body if it is certainly a valid FeedbackInput of the
// common shapes, and reports false otherwise (the caller then validates it
// the general way).
func fastDecode(body []byte) (*fastDecoded, bool) {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 {
		return nil, false
	}
	switch body[0] {
	case '{':
		it, ok := fastItem(body)
		if !ok {
			return nil, false
		}
		return &fastDecoded{items: []gen.FeedbackRequest{it}}, true
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil || len(raws) < fastMinItems || len(raws) > fastMaxItems {
			return nil, false
		}
		items := make([]gen.FeedbackRequest, len(raws))
		for i, raw := range raws {
			var ok bool
			if items[i], ok = fastItem(raw); !ok {
				return nil, false
			}
		}
		return &fastDecoded{items: items, bulk: true}, true
	}
	return nil, false
}

// fastItem decodes one FeedbackRequest object.
func fastItem(raw json.RawMessage) (gen.FeedbackRequest, bool) {
	var it gen.FeedbackRequest
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return it, false
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return it, false
	}
	var haveTrace, haveValue bool
	for name, v := range members {
		switch name {
		case "trace_id":
			var s string
			if !isString(v) || json.Unmarshal(v, &s) != nil {
				return it, false
			}
			if n := utf8.RuneCountInString(s); n < fastMinTrace || n > fastMaxTrace {
				return it, false
			}
			it.TraceID, haveTrace = s, true
		case "value":
			n, ok := plainInteger(v)
			if !ok || n < fastMinValue || n > fastMaxValue {
				return it, false
			}
			it.Value, haveValue = n, true
		case "weight":
			if isNull(v) {
				continue
			}
			w, ok := plainNumber(v)
			if !ok || w < 0 || w > 1 {
				return it, false
			}
			it.Weight = &w
		case "metadata":
			if isNull(v) {
				continue
			}
			if len(bytes.TrimSpace(v)) == 0 || bytes.TrimSpace(v)[0] != '{' {
				return it, false
			}
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			m := gen.Metadata{}
			if err := dec.Decode(&m); err != nil || len(m) > fastMaxProperties {
				return it, false
			}
			it.Metadata = &m
		default:
			// Unknown members are ignored, as the spec says, unless they
			// are a spec member in another case: Go's decoder would match
			// those, and whether the validator does is its business.
			for _, known := range []string{"trace_id", "value", "weight", "metadata"} {
				if strings.EqualFold(name, known) {
					return it, false
				}
			}
		}
	}
	return it, haveTrace && haveValue
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

func isString(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '"'
}

// plainInteger reads a JSON number written as a plain integer (no fraction,
// no exponent: those take the full path).
func plainInteger(v json.RawMessage) (int, bool) {
	s := string(bytes.TrimSpace(v))
	if s == "" || strings.ContainsAny(s, ".eE\"") {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && len(s) <= 4
}

// plainNumber reads a JSON number (not a string, not null).
func plainNumber(v json.RawMessage) (float64, bool) {
	s := string(bytes.TrimSpace(v))
	if s == "" || s[0] == '"' || s == "null" || s == "true" || s == "false" || s[0] == '{' || s[0] == '[' {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}
