package dashboard_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/dashboard"
)

// serve starts the dashboard alone on a real Echo and HTTP server.
func serve(t *testing.T) *httptest.Server {
	t.Helper()
	e := echo.New()
	if err := dashboard.Register(e); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// Ask for the body as sent: no transparent gzip.
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "identity")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

var (
	assetRef    = regexp.MustCompile(`(?:src|href)="(/dashboard/[^"]+)"`)
	moduleRef   = regexp.MustCompile(`(?m)^\s*import\s+[^'"]*['"](\.[^'"]+)['"]`)
	inlineCode  = regexp.MustCompile(`<script(?:\s+type="module")?\s*>|<style|\sstyle=|\son[a-z]+=`)
	wantHeaders = map[string]string{
		"Content-Security-Policy": dashboard.CSP,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
)

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for name, want := range wantHeaders {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", what, name, got, want)
		}
	}
}

func TestPageIsServedWithStrictCSP(t *testing.T) {
	srv := serve(t)
	res, body := get(t, srv.URL+"/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d", res.StatusCode)
	}
	if got, want := res.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	checkSecurityHeaders(t, "/", res.Header)
	for _, directive := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(dashboard.CSP, directive+";") && !strings.HasSuffix(dashboard.CSP, directive) {
			t.Errorf("CSP %q lacks %q", dashboard.CSP, directive)
		}
	}
	if strings.Contains(dashboard.CSP, "unsafe") || strings.Contains(dashboard.CSP, "http") {
		t.Errorf("CSP %q allows inline code or another origin", dashboard.CSP)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache: a new build's page must be seen at once", got)
	}
	if m := inlineCode.Find(body); m != nil {
		t.Errorf("the page has inline code or style %q, which the CSP would block", m)
	}
	if bytes.Contains(body, []byte("{{assets}}")) {
		t.Error("the page still holds the assets placeholder")
	}
	if !bytes.Contains(body, []byte(`<script type="module" src="/dashboard/`)) {
		t.Error("the page does not load its module from /dashboard/")
	}

	// Revalidation: the ETag answers 304 without a body.
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on the page")
	}
	res, body = get(t, srv.URL+"/", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and none", etag, res.StatusCode, len(body))
	}
}

func TestAssetsAreServedWithTheirTypesForEver(t *testing.T) {
	srv := serve(t)
	_, page := get(t, srv.URL+"/")
	refs := map[string]bool{}
	for _, m := range assetRef.FindAllSubmatch(page, -1) {
		refs[string(m[1])] = true
	}
	wantTypes := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml",
	}
	// Follow the module graph too: every relative import must resolve.
	seen := map[string]bool{}
	for len(refs) > 0 {
		for ref := range refs {
			delete(refs, ref)
			if seen[ref] {
				continue
			}
			seen[ref] = true
			res, body := get(t, srv.URL+ref)
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s: status %d", ref, res.StatusCode)
				continue
			}
			ext := ref[strings.LastIndex(ref, "."):]
			if got, want := res.Header.Get("Content-Type"), wantTypes[ext]; got != want {
				t.Errorf("GET %s: Content-Type = %q, want %q", ref, got, want)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("GET %s: Cache-Control = %q, want immutable for a year", ref, got)
			}
			checkSecurityHeaders(t, ref, res.Header)
			if ext == ".js" {
				for _, m := range moduleRef.FindAllSubmatch(body, -1) {
					u, _ := url.Parse(ref)
					refs[u.ResolveReference(&url.URL{Path: string(m[1])}).Path] = true
				}
			}
		}
	}
	for _, want := range []string{"app.js", "api.js", "time.js", "charts.js", "vendor/uplot/uPlot.esm.js", "style.css", "vendor/uplot/uPlot.min.css", "icon.svg"} {
		found := false
		for ref := range seen {
			found = found || strings.HasSuffix(ref, "/"+want)
		}
		if !found {
			t.Errorf("%s is not reachable from the page (reached %v)", want, seen)
		}
	}
}

func TestAssetsAreVersionedAndCompressed(t *testing.T) {
	srv := serve(t)
	d, err := dashboard.New()
	if err != nil {
		t.Fatal(err)
	}
	uplot := d.AssetsPath() + "/vendor/uplot/uPlot.esm.js"
	res, plain := get(t, srv.URL+uplot)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("GET %s without gzip: status %d, encoding %q", uplot, res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	res, zipped := get(t, srv.URL+uplot, "Accept-Encoding", "gzip, deflate")
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("GET %s with gzip: encoding %q, Vary %q", uplot, res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
	}
	if len(zipped) >= len(plain)/2 {
		t.Errorf("gzipped uPlot is %d bytes of %d", len(zipped), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Errorf("gunzipped body differs from the plain one (err %v)", err)
	}
	if res, _ := get(t, srv.URL+uplot, "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was answered gzipped")
	}

	// HEAD: the headers without the body.
	head, err := http.Head(srv.URL + d.AssetsPath() + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK || head.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD app.js: status %d, type %q", head.StatusCode, head.Header.Get("Content-Type"))
	}

	for _, path := range []string{
		"/dashboard/0000000000000000/app.js", // another build's version
		d.AssetsPath() + "/nothing.js",
		d.AssetsPath() + "/../dashboard.go",
	} {
		if res, _ := get(t, srv.URL+path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
}
