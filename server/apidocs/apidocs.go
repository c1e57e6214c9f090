// Package apidocs serves feedbackd's API reference from the running server:
// the contract itself at /openapi.yaml (and the same document as JSON at
// /openapi.json), and at /docs a page that renders it with Redoc.
//
// Redoc's standalone bundle is vendored (assets/, from the npm package
// redoc at the version in assets/REDOC_VERSION, with its licenses; see
// scripts/vendor-redoc.sh) and embedded in the binary: the page loads
// nothing but its own server's files, works offline and behind firewalls,
// and its Content-Security-Policy allows nothing else.
package apidocs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

//go:embed assets
var assets embed.FS

// Paths the reference is served at, outside the versioned API; none of
// them needs an API key.
const (
	SpecPath     = "/openapi.yaml"
	SpecJSONPath = "/openapi.json"
	DocsPath     = "/docs"
)

// ContentSecurityPolicy is sent with the /docs page: the smallest policy
// under which Redoc's standalone bundle renders the whole reference, found
// by trying tighter ones in Chromium (the tests load the page there and fail
// on any violation but the one below). Beyond this server's own script and
// spec it allows only:
//   - inline styles: Redoc styles itself with styled-components, which
//     writes <style> elements at run time (without them nothing renders);
//   - data: images: the link icons next to headings are inline SVGs;
//   - workers from blob: URLs: the search index runs in a Web Worker that
//     the bundle carries inline and starts from a blob.
//
// The page has no inline script (Redoc starts itself on the <redoc>
// element), may not be framed, post forms or change its base URL, and
// loads nothing from elsewhere: the "API docs by Redocly" footer asks for
// its logo from Redocly's CDN, the policy refuses, and Redoc drops the
// image.
const ContentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; " +
	"connect-src 'self'; " +
	"style-src 'unsafe-inline'; " +
	"img-src data:; " +
	"worker-src blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page is the /docs document: Redoc renders the spec it fetches from
// spec-url into the <redoc> element.
var page = template.Must(template.New("docs").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>feedbackd API reference</title>
</head>
<body>
<redoc spec-url="{{.SpecURL}}" expand-responses="200" required-props-first="true"></redoc>
<script src="{{.ScriptURL}}"></script>
</body>
</html>
`))

// Register adds the reference's routes to e. spec must be the bytes of
// openapi.yaml that the server validates requests against: they are served
// unchanged, so a client reads exactly the contract that is enforced.
func Register(e *echo.Echo, spec []byte) error {
	version, err := assets.ReadFile("assets/REDOC_VERSION")
	if err != nil {
		return fmt.Errorf("apidocs: %w", err)
	}
	redoc, err := assets.ReadFile("assets/redoc.standalone.js")
	if err != nil {
		return fmt.Errorf("apidocs: %w", err)
	}
	// The bundle's path carries its version, so browsers may keep it for
	// good: a new version is a new path.
	scriptURL := DocsPath + "/redoc-" + strings.TrimSpace(string(version)) + ".standalone.js"

	var html bytes.Buffer
	if err := page.Execute(&html, map[string]string{"SpecURL": SpecPath, "ScriptURL": scriptURL}); err != nil {
		return fmt.Errorf("apidocs: %w", err)
	}

	specJSON := sync.OnceValues(func() ([]byte, error) {
		doc, err := openapi3.NewLoader().LoadFromData(spec)
		if err != nil {
			return nil, err
		}
		return doc.MarshalJSON()
	})
	methods := []string{http.MethodGet, http.MethodHead}
	e.Match(methods, SpecPath, func(c echo.Context) error {
		serve(c, "application/yaml", "no-cache", spec)
		return nil
	})
	e.Match(methods, SpecJSONPath, func(c echo.Context) error {
		b, err := specJSON()
		if err != nil {
			return fmt.Errorf("apidocs: openapi.yaml as JSON: %w", err)
		}
		serve(c, echo.MIMEApplicationJSON, "no-cache", b)
		return nil
	})
	e.Match(methods, DocsPath, func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		serve(c, echo.MIMETextHTMLCharsetUTF8, "no-cache", html.Bytes())
		return nil
	})
	gzipped := sync.OnceValue(func() []byte { return gzipBytes(redoc) })
	e.Match(methods, scriptURL, func(c echo.Context) error {
		const forever = "public, max-age=31536000, immutable"
		c.Response().Header().Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		if acceptsGzip(c.Request()) {
			c.Response().Header().Set(echo.HeaderContentEncoding, "gzip")
			serve(c, echo.MIMEApplicationJavaScriptCharsetUTF8, forever, gzipped())
			return nil
		}
		serve(c, echo.MIMEApplicationJavaScriptCharsetUTF8, forever, redoc)
		return nil
	})
	return nil
}

// serve answers with body, its ETag (so a revalidating browser gets 304),
// and headers that keep browsers from second-guessing the content type.
func serve(c echo.Context, contentType, cacheControl string, body []byte) {
	h := c.Response().Header()
	sum := sha256.Sum256(body)
	h.Set(echo.HeaderContentType, contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip says whether the request's Accept-Encoding lists gzip with
// a weight above zero.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get(echo.HeaderAcceptEncoding), ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q, found := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if w, err := strconv.ParseFloat(q, 64); found && err == nil && w <= 0 {
			return false
		}
		return true
	}
	return false
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}
