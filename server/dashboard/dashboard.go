// Package dashboard serves feedbackd's web dashboard: one page at / that
// reads the analytics endpoints with an API key the user types in.
//
// The page is plain HTML, CSS and ES modules with no build step, embedded
// in the binary, so a user who runs feedbackd has the dashboard with
// nothing else to install or host. The one third-party piece, the uPlot
// charting library, is vendored under static/vendor/uplot (its version and
// licence beside it) by `make dashboard-vendor` from the version that
// compat/dashboard-browser/package-lock.json pins.
//
// Caching: every asset lives under /dashboard/VERSION/, where VERSION is a
// hash of all embedded files, and is served as immutable for a year; the
// page itself is revalidated on every load (ETag), so a new binary's page
// points at its new assets and no browser mixes old and new files. ES
// module imports are relative, so they inherit the versioned prefix.
//
// Security: every answer carries a Content-Security-Policy that allows
// only this origin's scripts, styles, images and fetches, no inline code,
// no framing. The API key never leaves the browser's sessionStorage except
// in the x-portkey-api-key header of the dashboard's API calls.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every dashboard answer: nothing
// but this origin, no inline scripts or styles, no plugins, no framing.
// uPlot sets element styles through the CSSOM (el.style.x = ...), which
// style-src does not govern, so it needs no 'unsafe-inline'.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// assetsPlaceholder is what index.html writes before each asset path; the
// server replaces it with the versioned prefix.
const assetsPlaceholder = "{{assets}}"

// contentTypes names the type of every kind of file the dashboard ships,
// so answers do not depend on the host's MIME tables. A file of any other
// kind is refused when the dashboard is built (see New).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	"":      "text/plain; charset=utf-8", // LICENSE, VERSION
}

type asset struct {
	body        []byte
	contentType string
	// gzipped is body compressed once at start, for browsers that accept
	// it; nil when compressing does not pay.
	gzipped []byte
}

// compress gzips body when that saves at least a tenth of it.
func compress(body []byte) []byte {
	if len(body) < 1024 {
		return nil
	}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(body)
	w.Close()
	if b.Len() > len(body)*9/10 {
		return nil
	}
	return b.Bytes()
}

// Dashboard is the page and its assets, read once from the embedded files.
type Dashboard struct {
	// Version is the hash of every embedded file; assets live under
	// /dashboard/Version/.
	Version string
	index   []byte
	etag    string
	assets  map[string]asset
}

// New reads the embedded files, computes their version and renders the
// page with the versioned asset paths.
func New() (*Dashboard, error) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	d := &Dashboard{assets: map[string]asset{}}
	var names []string
	err = fs.WalkDir(root, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("dashboard: %s: no content type for %q files", name, path.Ext(name))
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		d.assets[name] = asset{body: body, contentType: ct, gzipped: compress(body)}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(d.assets[name].body))
		h.Write(d.assets[name].body)
	}
	d.Version = hex.EncodeToString(h.Sum(nil))[:16]
	index, ok := d.assets["index.html"]
	if !ok {
		return nil, fmt.Errorf("dashboard: static/index.html is missing")
	}
	delete(d.assets, "index.html")
	d.index = bytes.ReplaceAll(index.body, []byte(assetsPlaceholder), []byte(d.AssetsPath()))
	sum := sha256.Sum256(d.index)
	d.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	return d, nil
}

// AssetsPath is the URL path the assets of this build are served under.
func (d *Dashboard) AssetsPath() string { return "/dashboard/" + d.Version }

// Register adds GET (and HEAD) / and /dashboard/:version/* to e.
func Register(e *echo.Echo) error {
	d, err := New()
	if err != nil {
		return err
	}
	methods := []string{http.MethodGet, http.MethodHead}
	e.Match(methods, "/", d.serveIndex)
	e.Match(methods, "/dashboard/:version/*", d.serveAsset)
	return nil
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// serveIndex answers the page, revalidated on every load so that a new
// build's asset version is picked up at once.
func (d *Dashboard) serveIndex(c echo.Context) error {
	h := c.Response().Header()
	securityHeaders(h)
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("ETag", d.etag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), d.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return blob(c, contentTypes[".html"], d.index)
}

// serveAsset answers an asset of this build, cacheable for ever since its
// path changes with its contents. Assets of another version are 404: a
// page of an older build must not cache this build's files under its path.
func (d *Dashboard) serveAsset(c echo.Context) error {
	if c.Param("version") != d.Version {
		return echo.NewHTTPError(http.StatusNotFound, "no such dashboard version")
	}
	a, ok := d.assets[c.Param("*")]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such dashboard file")
	}
	h := c.Response().Header()
	securityHeaders(h)
	h.Set(echo.HeaderCacheControl, "public, max-age=31536000, immutable")
	if a.gzipped != nil {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		if acceptsGzip(c.Request().Header.Get(echo.HeaderAcceptEncoding)) {
			h.Set(echo.HeaderContentEncoding, "gzip")
			return blob(c, a.contentType, a.gzipped)
		}
	}
	return blob(c, a.contentType, a.body)
}

// blob answers body, or for HEAD only its headers.
func blob(c echo.Context, contentType string, body []byte) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	if c.Request().Method == http.MethodHead {
		h.Set(echo.HeaderContentType, contentType)
		return c.NoContent(http.StatusOK)
	}
	return c.Blob(http.StatusOK, contentType, body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
