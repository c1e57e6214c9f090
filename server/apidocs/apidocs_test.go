package apidocs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd"
	"github.com/feedbackd/feedbackd/server/apidocs"
)

// serve runs the reference's routes alone on a loopback HTTP server.
func serve(t *testing.T, spec []byte) string {
	t.Helper()
	e := echo.New()
	if err := apidocs.Register(e, spec); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// A bare transport: the default one would ask for gzip and unpack it
	// out of sight.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestSpecIsServedUnchanged(t *testing.T) {
	spec := feedbackd.OpenAPI()
	base := serve(t, spec)
	resp, body := get(t, base+apidocs.SpecPath, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, spec) {
		t.Fatalf("GET %s: %d, %d bytes; want 200 and the %d bytes given", apidocs.SpecPath, resp.StatusCode, len(body), len(spec))
	}
	if got := resp.Header.Get("Content-Type"); got != "application/yaml" {
		t.Errorf("Content-Type: got %q, want application/yaml", got)
	}
	// A browser revalidating its copy is told it is still good.
	again, _ := get(t, base+apidocs.SpecPath, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: got %d, want 304", again.StatusCode)
	}
}

// /openapi.json is the same document as /openapi.yaml.
func TestSpecAsJSONIsTheSameDocument(t *testing.T) {
	spec := feedbackd.OpenAPI()
	base := serve(t, spec)
	resp, body := get(t, base+apidocs.SpecJSONPath, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", apidocs.SpecJSONPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fromYAML, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("the JSON does not load as OpenAPI: %v", err)
	}
	want, _ := json.Marshal(fromYAML)
	got, _ := json.Marshal(fromJSON)
	if !bytes.Equal(got, want) {
		t.Error("/openapi.json is not the document /openapi.yaml is")
	}
}

var scriptTag = regexp.MustCompile(`<script src="([^"]+)"></script>`)

// The page loads one script, Redoc, from its own server, and forbids
// everything else the policy does not name.
func TestDocsPageLoadsRedocFromItsOwnServer(t *testing.T) {
	base := serve(t, feedbackd.OpenAPI())
	resp, body := get(t, base+apidocs.DocsPath, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != apidocs.ContentSecurityPolicy {
		t.Errorf("Content-Security-Policy: got %q", got)
	}
	for _, directive := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self';", "frame-ancestors 'none'"} {
		if !strings.Contains(apidocs.ContentSecurityPolicy, directive) {
			t.Errorf("the policy lacks %q", directive)
		}
	}
	if !strings.Contains(string(body), `spec-url="/openapi.yaml"`) {
		t.Errorf("the page does not render /openapi.yaml:\n%s", body)
	}
	scripts := scriptTag.FindAllStringSubmatch(string(body), -1)
	if len(scripts) != 1 || strings.Count(string(body), "<script") != 1 {
		t.Fatalf("want exactly one script, by src; page:\n%s", body)
	}
	src := scripts[0][1]
	if !strings.HasPrefix(src, apidocs.DocsPath+"/") || strings.Contains(src, "//") {
		t.Fatalf("script %q is not from this server", src)
	}

	vendored, err := os.ReadFile("assets/redoc.standalone.js")
	if err != nil {
		t.Fatal(err)
	}
	js, jsBody := get(t, base+src, nil)
	if js.StatusCode != http.StatusOK || !bytes.Equal(jsBody, vendored) {
		t.Fatalf("GET %s: %d, %d bytes; want the vendored bundle", src, js.StatusCode, len(jsBody))
	}
	if ct := js.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
		t.Errorf("script Content-Type: %q", ct)
	}
	if cc := js.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("the versioned script should be cached for good, Cache-Control: %q", cc)
	}

	// Browsers get it compressed, and unpacked it is the same bundle.
	gz, gzBody := get(t, base+src, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if gz.Header.Get("Content-Encoding") != "gzip" || len(gzBody) > len(vendored)/2 {
		t.Fatalf("gzip: Content-Encoding %q, %d bytes of %d", gz.Header.Get("Content-Encoding"), len(gzBody), len(vendored))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzBody))
	if err != nil {
		t.Fatal(err)
	}
	unpacked, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unpacked, vendored) {
		t.Errorf("gzipped bundle unpacks to %d bytes (%v), want the vendored %d", len(unpacked), err, len(vendored))
	}
	if refused, _ := get(t, base+src, map[string]string{"Accept-Encoding": "gzip;q=0"}); refused.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}
}

// The vendored bundle is the Redoc release REDOC_VERSION names, with its
// licenses beside it.
func TestVendoredRedocIsThePinnedRelease(t *testing.T) {
	version, err := os.ReadFile("assets/REDOC_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("assets/redoc.standalone.js")
	if err != nil {
		t.Fatal(err)
	}
	licenses, err := os.ReadFile("assets/redoc.standalone.js.LICENSE.txt")
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(version))
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("REDOC_VERSION %q is not an exact version", v)
	}
	if !strings.Contains(string(licenses), `Version: "`+v+`"`) {
		t.Errorf("the bundle's license file does not name Redoc %s", v)
	}
	if !bytes.HasPrefix(js, []byte("/*! For license information please see redoc.standalone.js.LICENSE.txt */")) {
		t.Error("redoc.standalone.js is not Redoc's standalone bundle as released")
	}
	if _, err := os.Stat("assets/LICENSE-redoc"); err != nil {
		t.Error(err)
	}
}
