package server

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/feedbackd/feedbackd/server/dashboard"
)

// The whole server answers / with the dashboard, through the same
// middleware as the API, and the page's assets with their types; the API
// behind it still wants a key.
func TestServerServesTheDashboard(t *testing.T) {
	api := newTestAPI(t)
	do := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		api.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}

	page := do("/")
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: status %d, type %q", page.Code, page.Header().Get("Content-Type"))
	}
	if got := page.Header().Get("Content-Security-Policy"); got != dashboard.CSP {
		t.Errorf("GET /: Content-Security-Policy = %q, want %q", got, dashboard.CSP)
	}
	if page.Header().Get("X-Request-Id") == "" {
		t.Error("GET /: no X-Request-Id: the server's middleware did not run")
	}
	app := regexp.MustCompile(`src="(/dashboard/[0-9a-f]+/app\.js)"`).FindStringSubmatch(page.Body.String())
	if app == nil {
		t.Fatalf("the page does not load app.js:\n%s", page.Body)
	}
	if js := do(app[1]); js.Code != http.StatusOK || js.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET %s: status %d, type %q", app[1], js.Code, js.Header().Get("Content-Type"))
	}
	if rec := do("/v1/feedback"); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /v1/feedback without a key: status %d, want 401", rec.Code)
	}
}
