package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/feedbackd/feedbackd/server"
)

// CheckFeedback holds an item to what POST /v1/feedback accepts, with the
// failing field named.
func TestCheckFeedback(t *testing.T) {
	long := strings.Repeat("x", 257)
	deep := `{"a":` + strings.Repeat(`[`, 9) + strings.Repeat(`]`, 9) + `}`
	var many strings.Builder
	many.WriteString("{")
	for i := range 65 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
	}
	many.WriteString("}")
	cases := []struct {
		item     string
		wantPath string // "" when the item is valid
	}{
		{`{"trace_id":"t","value":5}`, ""},
		{`{"trace_id":"t","value":-10,"weight":0,"metadata":{"_user":"u","n":1e21}}`, ""},
		{`{"trace_id":"t","value":5.0,"weight":null,"metadata":null}`, ""},
		{`{"trace_id":"t","value":1,"id":"3f1c9a52-7d4e-4b8a-9c21-6e0f5a7b8c9d","workspace":"w","created_at":"2026"}`, ""},
		{`{"trace_id":"t","value":1,"id":"x"}`, "/id"},
		{`{"trace_id":"","value":5}`, "/trace_id"},
		{`{"trace_id":"` + long + `","value":5}`, "/trace_id"},
		{`{"value":5}`, "/trace_id"},
		{`{"trace_id":"t"}`, "/value"},
		{`{"trace_id":"t","value":11}`, "/value"},
		{`{"trace_id":"t","value":1.5}`, "/value"},
		{`{"trace_id":"t","value":"5"}`, "/value"},
		{`{"trace_id":"t","value":1,"weight":1.01}`, "/weight"},
		{`{"trace_id":"t","value":1,"weight":-0.1}`, "/weight"},
		{`{"trace_id":"t","value":1,"metadata":[]}`, "/metadata"},
		{`{"trace_id":"t","value":1,"metadata":` + many.String() + `}`, "/metadata"},
		{`{"trace_id":"t","value":1,"metadata":` + deep + `}`, "/metadata/a/0/0/0/0/0/0/0"},
		{`{"trace_id":"t","value":1,"metadata":{"s":"` + strings.Repeat("é", 8193) + `"}}`, "/metadata/s"},
	}
	for _, c := range cases {
		_, err := server.CheckFeedback([]byte(c.item))
		if c.wantPath == "" {
			if err != nil {
				t.Errorf("%.80s: got %v, want valid", c.item, err)
			}
			continue
		}
		fe, ok := err.(*server.FeedbackError)
		if !ok {
			t.Errorf("%.80s: got %v, want a FeedbackError at %s", c.item, err, c.wantPath)
			continue
		}
		if fe.Path != c.wantPath {
			t.Errorf("%.80s: got path %q (%v), want %q", c.item, fe.Path, fe, c.wantPath)
		}
	}
	if _, err := server.CheckFeedback([]byte("{\"trace_id\":\"\xff\",\"value\":1}")); err == nil {
		t.Error("invalid UTF-8: got valid")
	}
	// Both ways through (the fast decoder; the schema, for 5.0) keep
	// metadata numbers as spelled.
	for _, item := range []string{
		`{"trace_id":"t","value":5,"weight":0.1,"metadata":{"n":1e21}}`,
		`{"trace_id":"t","value":5.0,"weight":0.1,"metadata":{"n":1e21}}`,
	} {
		it, err := server.CheckFeedback([]byte(item))
		if err != nil || it.Value != 5 || it.Weight == nil || *it.Weight != 0.1 || it.Metadata == nil {
			t.Fatalf("%s: got %+v, %v", item, it, err)
		}
		if n := (*it.Metadata)["n"]; n != json.Number("1e21") {
			t.Errorf("%s: metadata n is %#v, want json.Number 1e21", item, n)
		}
	}
}
