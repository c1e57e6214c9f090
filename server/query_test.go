package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every route of the versioned API has its declared query parameters: a
// route without would answer every request with a query string 500.
func TestEveryAPIRouteHasDeclaredQuery(t *testing.T) {
	_, spec, err := contract(nil)
	if err != nil {
		t.Fatal(err)
	}
	queries, err := declaredQueries(spec, "/v1")
	if err != nil {
		t.Fatal(err)
	}
	api := newTestAPI(t)
	n := 0
	for _, r := range api.e.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		n++
		if queries[r.Method+" "+r.Path] == nil {
			t.Errorf("%s %s: no declared query parameters", r.Method, r.Path)
		}
	}
	if n == 0 || n != len(queries) {
		t.Errorf("%d routes under /v1, %d operations with declared parameters", n, len(queries))
	}
}

// The spec's x-portkey-log-filters is checked when the server starts: a
// filter the operation also declares, or a list that is not one of names,
// is a mistake in the spec, not something to guess around.
func TestLogFiltersMisuseFailsAtStartup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value any
		want  string
	}{
		{"a declared name", []any{"cost_min", "trace_id"}, `lists "trace_id", which the operation declares`},
		{"not a list", "cost_min", "must be a list of names"},
		{"not names", []any{"cost_min", 5}, "must be a list of names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, spec, err := contract(nil)
			if err != nil {
				t.Fatal(err)
			}
			spec.Paths.Find("/analytics/graphs/feedbacks").Get.Extensions[logFiltersExtension] = tc.value
			_, err = requestValidator(spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A query of declared parameters only passes the check on to kin-openapi,
// which validates their values.
func TestDeclaredQueryPassesToValidation(t *testing.T) {
	api := newTestAPI(t)
	req := httptest.NewRequest(http.MethodGet, "/v1/feedback?limit=0", nil)
	req.Header.Set("x-portkey-api-key", api.key)
	rec := httptest.NewRecorder()
	api.e.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `invalid query parameter \"limit\"`) {
		t.Errorf("got %d %s, want kin-openapi's 400 for limit", rec.Code, rec.Body)
	}
}
