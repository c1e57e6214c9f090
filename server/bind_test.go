package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// exactNumbers are metadata numbers a float64 would change: what is stored
// and answered is what was sent, however the body travelled.
const exactNumbers = `{"huge":12345678901234567890,"big":1e21,"small":0.1,"neg":-0,"nested":{"a":[1.50,{"b":98765432109876543210}]}}`

// Every way a body reaches the store (an object, an array, the
// index-keyed form, a fraction-spelled integer, PUT, the POST update,
// token submissions and the token's own metadata) binds the value that
// was validated, so metadata numbers keep their spelling.
func TestEveryBodyFormKeepsMetadataNumbersAsSent(t *testing.T) {
	api := newTestAPI(t)
	create := func(body string) string {
		t.Helper()
		rec := api.do(t, http.MethodPost, "/v1/feedback", body, nil)
		var got struct {
			FeedbackIDs []string `json:"feedback_ids"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got.FeedbackIDs) == 0 {
			t.Fatalf("create %s: %d %s", body, rec.Code, rec.Body)
		}
		return got.FeedbackIDs[0]
	}
	item := `{"trace_id":"t","value":1,"metadata":` + exactNumbers + `}`
	ids := map[string]string{
		"object":               create(item),
		"array":                create(`[` + item + `]`),
		"value 1.0":            create(`{"trace_id":"t","value":1.0,"metadata":` + exactNumbers + `}`),
		"array with value 1.0": create(`[{"trace_id":"t","value":1.0,"metadata":` + exactNumbers + `}]`),
		"index-keyed":          create(`{"0":` + item + `}`),
	}
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		id := create(`{"trace_id":"t","value":1}`)
		if rec := api.do(t, method, "/v1/feedback/"+id, `{"value":2,"metadata":`+exactNumbers+`}`, nil); rec.Code != http.StatusOK {
			t.Fatalf("%s update: %d %s", method, rec.Code, rec.Body)
		}
		ids[method+" update"] = id
	}
	for name, tokenMeta := range map[string]string{"token submission": `{}`, "token's metadata": exactNumbers} {
		rec := api.do(t, http.MethodPost, "/v1/feedback/tokens", `{"trace_id":"t","metadata":`+tokenMeta+`}`, nil)
		var tok struct{ Token string }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tok) != nil {
			t.Fatalf("token: %d %s", rec.Code, rec.Body)
		}
		body := `{"value":1,"metadata":` + exactNumbers + `}`
		if tokenMeta != `{}` {
			body = `{"value":1}`
		}
		rec = api.do(t, http.MethodPost, "/v1/feedback/tokens/"+tok.Token, body, map[string]string{"x-portkey-api-key": ""})
		var got struct {
			FeedbackIDs []string `json:"feedback_ids"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
		ids[name] = got.FeedbackIDs[0]
	}
	for form, id := range ids {
		rec := api.do(t, http.MethodGet, "/v1/feedback/"+id, "", nil)
		var got struct{ Metadata json.RawMessage }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("%s: get %d %s", form, rec.Code, rec.Body)
		}
		for _, want := range []string{`"huge":12345678901234567890`, `"big":1e21`, `"small":0.1`, `"neg":-0`, `[1.50,{"b":98765432109876543210}]`} {
			if !strings.Contains(string(got.Metadata), want) {
				t.Errorf("%s: stored metadata %s, want %s in it", form, got.Metadata, want)
			}
		}
	}
}

// feedbackd import checks an item by the API's own validator: what it
// refuses, POST /v1/feedback refuses with the same first field error, and
// what it accepts, the API stores with the same values.
func TestCheckFeedbackIsTheAPIsValidator(t *testing.T) {
	api := newTestAPI(t)
	for _, item := range []string{
		`{"trace_id":"t","value":5}`,
		`{"trace_id":"t","value":5.0,"weight":0.25,"metadata":{"n":1e21}}`,
		`{"trace_id":"t","value":1,"VALUE":7}`,
		`{"trace_id":"t","value":11}`,
		`{"trace_id":"t","value":1.5}`,
		`{"trace_id":"t","value":"5"}`,
		`{"trace_id":"","value":5}`,
		`{"value":5}`,
		`{"trace_id":"t","value":1,"weight":1.01}`,
		`{"trace_id":"t","value":1,"metadata":[]}`,
		`{"trace_id":"t","value":1,"metadata":{"a":` + strings.Repeat(`[`, 9) + strings.Repeat(`]`, 9) + `}}`,
		`{"trace_id":"t","value":1} {}`,
	} {
		it, checkErr := CheckFeedback([]byte(item))
		rec := api.do(t, http.MethodPost, "/v1/feedback", item, nil)
		var answer struct {
			Message string
			Errors  []struct{ Path, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s: %d %s", item, rec.Code, rec.Body)
		}
		if checkErr == nil {
			if rec.Code != http.StatusOK {
				t.Errorf("%s: CheckFeedback accepts it, the API answers %d %s", item, rec.Code, rec.Body)
				continue
			}
			var ids struct {
				FeedbackIDs []string `json:"feedback_ids"`
			}
			json.Unmarshal(rec.Body.Bytes(), &ids)
			stored := api.do(t, http.MethodGet, "/v1/feedback/"+ids.FeedbackIDs[0], "", nil)
			var got struct {
				Value  int
				Weight float64
			}
			json.Unmarshal(stored.Body.Bytes(), &got)
			weight := 1.0
			if it.Weight != nil {
				weight = *it.Weight
			}
			if got.Value != it.Value || got.Weight != weight {
				t.Errorf("%s: CheckFeedback gives value %d weight %v, the API stored %s", item, it.Value, weight, stored.Body)
			}
			continue
		}
		fe, ok := checkErr.(*FeedbackError)
		if !ok || rec.Code != http.StatusBadRequest {
			t.Errorf("%s: CheckFeedback refuses it (%v), the API answers %d %s", item, checkErr, rec.Code, rec.Body)
			continue
		}
		want := FeedbackError{Message: strings.TrimPrefix(answer.Message, "request body ")}
		if len(answer.Errors) > 0 {
			want = FeedbackError{Path: answer.Errors[0].Path, Message: answer.Errors[0].Message}
		}
		if *fe != want {
			t.Errorf("%s: CheckFeedback says %q, the API %q", item, fe, &want)
		}
	}
}
