package server

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/gen"
)

// The fast path decodes the common POST /v1/feedback bodies (one feedback
// object, or an array of them, with the spec's members) in one pass and
// checks exactly the rules the spec's FeedbackInput schema states, so the
// request skips kin-openapi's generic decode into maps and validation, and
// binding their result. It is deliberately narrow: anything it is not sure of (the Node SDK's index-keyed form, a member
// spelled in another case, a number written with a fraction or an exponent,
// any rule broken) makes it decline, and the request takes the full path,
// which also writes the error. A differential fuzz test (FuzzFastPath)
// holds it to that: whatever it accepts, kin-openapi accepts, with the same
// values. Its rules are the loaded spec's (fastRules): after any edit of the
// spec it enforces exactly that, or declines everything.

// fastDecode decodes body if it is certainly a valid FeedbackInput of the
// common shapes, and reports false otherwise (the caller then validates it
// the general way).
//
// It walks the body once with the small scanner below rather than
// decoding it into maps of raw members: body is one valid JSON value
// (readBody checked), so finding where each member and item ends is all
// the scanner does, and anything it does not expect is a decline.
func fastDecode(r *fastRules, body []byte) (*feedbackBody, bool) {
	i := skipSpace(body, 0)
	if r == nil {
		return nil, false
	}
	if i == len(body) {
		return nil, false
	}
	switch body[i] {
	case '{':
		end, ok := valueEnd(body, i)
		if !ok || skipSpace(body, end) != len(body) {
			return nil, false
		}
		it, ok := r.item(body[i:end])
		if !ok {
			return nil, false
		}
		return &feedbackBody{items: []gen.FeedbackRequest{it}}, true
	case '[':
		items := make([]gen.FeedbackRequest, 0, 16)
		end, ok := elements(body, i, func(raw []byte) bool {
			if len(items) == r.maxItems {
				return false
			}
			it, ok := r.item(raw)
			items = append(items, it)
			return ok
		})
		if !ok || skipSpace(body, end) != len(body) || len(items) < r.minItems {
			return nil, false
		}
		return &feedbackBody{items: items, bulk: true}, true
	}
	return nil, false
}

// fastMembers are the members of a FeedbackRequest.
var fastMembers = [...]string{"trace_id", "value", "weight", "metadata"}

// item decodes one FeedbackRequest object, raw.
func (r *fastRules) item(raw []byte) (gen.FeedbackRequest, bool) {
	var it gen.FeedbackRequest
	if len(raw) == 0 || raw[0] != '{' {
		return it, false
	}
	var seen [len(fastMembers)]bool
	_, ok := members(raw, 0, func(name, v []byte) bool {
		// A member named twice is declined rather than resolved: which
		// one counts is the full path's business.
		for k, known := range fastMembers {
			if string(name) == known {
				if seen[k] {
					return false
				}
				seen[k] = true
			}
		}
		switch string(name) {
		case "trace_id":
			if !isString(v) {
				return false
			}
			var s string
			if bytes.IndexByte(v, '\\') < 0 {
				s = string(v[1 : len(v)-1])
			} else if json.Unmarshal(v, &s) != nil {
				return false
			}
			if n := utf8.RuneCountInString(s); n < r.minTrace || n > r.maxTrace {
				return false
			}
			it.TraceID = s
		case "value":
			n, ok := plainInteger(v)
			if !ok || n < r.minValue || n > r.maxValue {
				return false
			}
			it.Value = n
		case "weight":
			if isNull(v) {
				return r.weightNull
			}
			w, ok := plainNumber(v)
			if !ok || w < r.minWeight || w > r.maxWeight {
				return false
			}
			it.Weight = &w
		case "metadata":
			if isNull(v) {
				return r.metadataNull
			}
			m, ok := fastMetadata(v)
			if !ok || len(m) > r.maxProperties {
				return false
			}
			it.Metadata = &m
		default:
			// Unknown members are ignored, as the spec says, unless it
			// closes the object, or they are a spec member in another
			// case: Go's decoder would match those, and whether the
			// validator does is its business.
			if r.closed {
				return false
			}
			for _, known := range fastMembers {
				if strings.EqualFold(string(name), known) {
					return false
				}
			}
		}
		return true
	})
	if !ok {
		return it, false
	}
	for k, req := range r.required {
		if req && !seen[k] {
			return it, false
		}
	}
	if !seen[2] && r.defaultWeight != nil {
		w := *r.defaultWeight
		it.Weight = &w
	}
	return it, true
}

// fastMetadata decodes a metadata object as the general path's decoder
// does (numbers kept as written, the last of a repeated key wins). Flat
// metadata of plain strings, numbers, booleans and nulls, the usual kind,
// is read by the scanner; anything else by encoding/json.
func fastMetadata(v []byte) (gen.Metadata, bool) {
	if v[0] != '{' {
		return nil, false
	}
	m := gen.Metadata{}
	_, flat := members(v, 0, func(name, val []byte) bool {
		switch c := val[0]; {
		case c == '"':
			if bytes.IndexByte(val, '\\') >= 0 {
				return false
			}
			m[string(name)] = string(val[1 : len(val)-1])
		case c == '-' || ('0' <= c && c <= '9'):
			m[string(name)] = json.Number(val)
		case string(val) == "true":
			m[string(name)] = true
		case string(val) == "false":
			m[string(name)] = false
		case string(val) == "null":
			m[string(name)] = nil
		default:
			return false
		}
		return true
	})
	if flat {
		return m, true
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	m = gen.Metadata{}
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

// The scanner. Each function takes b and the index i of where it starts,
// returns the index just past what it read, and false for anything that
// is not JSON as it expects it.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringEnd reads the string starting at b[i] ('"').
func stringEnd(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// valueEnd reads the value starting at b[i].
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, ok := stringEnd(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	// A number or a literal runs to the next delimiter.
	j := i
	for ; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j, j > i
		}
	}
	return j, j > i
}

// members reads the object starting at b[i] ('{'), calling f with each
// member's name (declining names with escapes, which would need decoding)
// and raw value, and stops with false when f returns false.
func members(b []byte, i int, f func(name, value []byte) bool) (int, bool) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for i < len(b) && b[i] == '"' {
		end, ok := stringEnd(b, i)
		if !ok {
			return 0, false
		}
		name := b[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			return 0, false
		}
		if i = skipSpace(b, end); i == len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		if end, ok = valueEnd(b, i); !ok || !f(name, b[i:end]) {
			return 0, false
		}
		next, done, ok := afterValue(b, end, '}')
		if !ok || done {
			return next, ok
		}
		i = next
	}
	return 0, false
}

// elements reads the array starting at b[i] ('['), calling f with each
// element's raw value, and stops with false when f returns false.
func elements(b []byte, i int, f func(value []byte) bool) (int, bool) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for i < len(b) {
		end, ok := valueEnd(b, i)
		if !ok || !f(b[i:end]) {
			return 0, false
		}
		next, done, ok := afterValue(b, end, ']')
		if !ok || done {
			return next, ok
		}
		i = next
	}
	return 0, false
}

// afterValue reads what follows a member or an element ending at b[end]:
// a comma, and next is where the following one starts; or the closing
// bracket, done, and next is just past it.
func afterValue(b []byte, end int, closing byte) (next int, done, ok bool) {
	i := skipSpace(b, end)
	switch {
	case i == len(b):
		return 0, false, false
	case b[i] == ',':
		return skipSpace(b, i+1), false, true
	case b[i] == closing:
		return i + 1, true, true
	}
	return 0, false, false
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
