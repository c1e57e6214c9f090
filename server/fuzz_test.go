package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/store"
)

// The fuzz targets below run their seed corpus (testdata/fuzz) in every
// go test; make fuzz explores beyond it.

// FuzzParseMetadataFilter: any query string either parses into an object of
// strings, numbers and booleans, or is refused with a 400; never a panic.
func FuzzParseMetadataFilter(f *testing.F) {
	for _, s := range []string{`{"_user":"u1"}`, `{"n":5,"b":true}`, `{}`, `[]`, `{"a":{}}`, `{"a":1} {}`, `nul`, `{"a":1e999}`, "{\"\xff\":1}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetadataFilter(s)
		if err != nil {
			var re *requestError
			if !asRequestError(err, &re) || re.status != http.StatusBadRequest {
				t.Fatalf("parseMetadataFilter(%q): error %v is not a 400", s, err)
			}
			return
		}
		for k, v := range m {
			switch v.(type) {
			case string, bool, json.Number:
			default:
				t.Fatalf("parseMetadataFilter(%q): value of %q is a %T", s, k, v)
			}
		}
	})
}

// FuzzDecodeCursor: a cursor either decodes to a position (a UUID and a
// time RFC 3339 can write) whose own cursor is exactly the input (one
// spelling per position), or is refused with a 400. The seeds hold
// positions at both ends of the time range and just beyond, other formats
// and lengths, and cursors of the earlier id-only format.
func FuzzDecodeCursor(f *testing.F) {
	now, err := encodeCursor(&store.Cursor{CreatedAt: time.Now(), ID: uuid.NewString()})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{now, "bogus", "", "AAAA", "MDFhMjE4ZDItNTgzMC03M2QxLWI1NjQtNDFkZTA2MDA2MDJm", "AQAGYTDfumZAAaIYzLr7fE6aHT9bfiyNQA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			var re *requestError
			if !asRequestError(err, &re) || re.status != http.StatusBadRequest {
				t.Fatalf("decodeCursor(%q): error %v is not a 400", s, err)
			}
			return
		}
		if _, err := uuid.Parse(c.ID); err != nil {
			t.Fatalf("decodeCursor(%q): id %q is not a UUID", s, c.ID)
		}
		if y := c.CreatedAt.Year(); y < 0 || y > 9999 {
			t.Fatalf("decodeCursor(%q): time %v is out of RFC 3339's range", s, c.CreatedAt)
		}
		if again, err := encodeCursor(c); err != nil || again != s {
			t.Fatalf("decodeCursor(%q) = %+v, which encodes back as %q, %v", s, c, again, err)
		}
	})
}

// FuzzCreateFeedback drives the whole body path (read, validate, decode,
// store) of POST /v1/feedback with arbitrary bytes. Every answer is 200 or
// a 4xx with the Error body, never a 5xx; a 200 stored exactly the items
// of the body, read by exact member names as the spec defines them; any
// other answer stored nothing.
func FuzzCreateFeedback(f *testing.F) {
	for _, s := range []string{
		`{"trace_id":"t","value":1}`,
		`{"trace_id":"t","value":-10,"weight":0.5,"metadata":{"_user":"u","n":[1,{"a":null}]}}`,
		`[{"trace_id":"a","value":1},{"trace_id":"b","value":2,"weight":null,"metadata":null}]`,
		`{"0":{"traceID":"a","value":3},"1":{"trace_id":"b","value":4}}`,
		`{"trace_id":"t","value":1,"VALUE":99,"value":2}`,
		`{"trace_id":"t","value":1.0,"weight":1e-3}`,
		`{"trace_id":"t","value":11}`, `[]`, `"x"`, `{"trace_id":"\ud800","value":1}`, "{\"trace_id\":\"\xff\",\"value\":1}",
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	api := newTestAPI(f)
	e, st, key := api.e, api.store, api.key
	ws := api.ws
	count := func(t *testing.T) int {
		n := 0
		var after *store.Cursor
		for {
			page, err := st.ListFeedback(ctx, ws, store.Filter{Limit: 1000, After: after})
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Items)
			if !page.HasMore {
				return n
			}
			after = store.CursorOf(page.Items[len(page.Items)-1])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := count(t)
		req := httptest.NewRequest(http.MethodPost, "/v1/feedback", strings.NewReader(string(body)))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set("x-portkey-api-key", key)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			var fail struct{ Status, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &fail); err != nil || fail.Status != "failure" || fail.Message == "" {
				t.Fatalf("body %q: %d answer is not the Error body: %s", body, rec.Code, rec.Body)
			}
			if after := count(t); after != before {
				t.Fatalf("body %q: refused with %d but stored %d rows", body, rec.Code, after-before)
			}
			return
		}
		var ok struct {
			FeedbackIDs []string `json:"feedback_ids"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ok); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		items := expectedItems(t, body)
		if len(items) != len(ok.FeedbackIDs) {
			t.Fatalf("body %q: %d ids for %d items", body, len(ok.FeedbackIDs), len(items))
		}
		for i, id := range ok.FeedbackIDs {
			got, err := st.GetFeedback(ctx, ws, id)
			if err != nil {
				t.Fatalf("body %q: id %s: %v", body, id, err)
			}
			want := items[i]
			gotMeta, _ := json.Marshal(normalizeJSON(got.Metadata))
			wantMeta, _ := json.Marshal(normalizeJSON(want.metadata))
			if got.TraceID != want.traceID || got.Value != want.value || math.Abs(got.Weight-want.weight) > 0 || string(gotMeta) != string(wantMeta) {
				t.Fatalf("body %q item %d: stored %s/%d/%v/%s, want %s/%d/%v/%s", body, i,
					got.TraceID, got.Value, got.Weight, gotMeta, want.traceID, want.value, want.weight, wantMeta)
			}
		}
	})
}

type item struct {
	traceID  string
	value    int
	weight   float64
	metadata map[string]any
}

// expectedItems reads an accepted body the way the spec defines it, by
// exact member names and independently of the server's code: the items in
// order, weight 1 and empty metadata where absent or null.
func expectedItems(t *testing.T, body []byte) []item {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("accepted body %q does not decode: %v", body, err)
	}
	var objs []map[string]any
	switch v := v.(type) {
	case []any:
		for _, o := range v {
			objs = append(objs, o.(map[string]any))
		}
	case map[string]any:
		if _, single := v["trace_id"].(string); single {
			objs = []map[string]any{v}
			break
		}
		for i := range len(v) {
			o := v[fmt.Sprint(i)].(map[string]any)
			if tr, ok := o["traceID"]; ok {
				o["trace_id"] = tr
			}
			objs = append(objs, o)
		}
	}
	out := make([]item, len(objs))
	for i, o := range objs {
		n, _ := o["value"].(json.Number).Float64()
		out[i] = item{traceID: o["trace_id"].(string), value: int(n), weight: 1, metadata: map[string]any{}}
		if w, ok := o["weight"].(json.Number); ok {
			out[i].weight, _ = w.Float64()
		}
		if m, ok := o["metadata"].(map[string]any); ok {
			out[i].metadata = m
		}
	}
	return out
}

// normalizeJSON turns numbers into float64, so that the stored and the sent
// metadata compare by JSON value.
func normalizeJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = normalizeJSON(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalizeJSON(x)
		}
		return out
	case json.Number:
		f, _ := v.Float64()
		return f
	}
	return v
}

func asRequestError(err error, target **requestError) bool {
	re, ok := err.(*requestError)
	if ok {
		*target = re
	}
	return ok
}
