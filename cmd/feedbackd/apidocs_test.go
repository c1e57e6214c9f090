package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// getNoKey sends a GET with no API key and returns the response and body.
func getNoKey(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
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

// The running program serves its contract and its reference to anyone:
// /openapi.yaml is the repository's openapi.yaml byte for byte, and /docs
// is a page that loads Redoc from the server itself, under a policy that
// allows nothing from elsewhere.
func TestAPIReferenceIsServedWithoutAKey(t *testing.T) {
	inst := start(t, backends[0], "", nil)

	file, err := os.ReadFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, spec := getNoKey(t, inst.base+"/openapi.yaml")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(spec, file) {
		t.Fatalf("GET /openapi.yaml: %d, %d bytes; want 200 and openapi.yaml's %d bytes", resp.StatusCode, len(spec), len(file))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("GET /openapi.yaml: Content-Type %q, want application/yaml", ct)
	}

	resp, page := getNoKey(t, inst.base+"/docs")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("GET /docs: Content-Security-Policy %q does not limit scripts to the server itself", csp)
	}
	m := regexp.MustCompile(`<script src="(/[^/"][^"]*)"></script>`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("GET /docs loads no script from its own server:\n%s", page)
	}
	resp, js := getNoKey(t, inst.base+string(m[1]))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(js, []byte("ReDoc")) {
		t.Errorf("GET %s: %d, %d bytes; want Redoc's bundle", m[1], resp.StatusCode, len(js))
	}
}

// In a real browser, /docs renders every operation of the spec, with its
// examples, and the page's policy refuses nothing Redoc needs. (What it
// does refuse, and the test allows, is the footer's logo from Redocly's
// CDN: an image from elsewhere, which Redoc then leaves out.)
func TestAPIReferenceRendersInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: the API reference is not rendered in a browser")
	}
	inst := start(t, backends[0], "", nil)
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var dom, log bytes.Buffer
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(),
		// Console messages, CSP violations among them, go to stderr.
		"--enable-logging=stderr", "--v=0",
		// Wait until the page is idle (spec fetched, Redoc rendered) for
		// up to 20 s of the page's own time, then print its DOM.
		"--virtual-time-budget=20000", "--dump-dom",
		inst.base+"/docs")
	cmd.Stdout, cmd.Stderr = &dom, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, log.String())
	}

	rendered := dom.String()
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !strings.Contains(rendered, op.Summary) {
				t.Errorf("the rendered reference lacks %s %s (%q)", method, path, op.Summary)
			}
		}
	}
	// An example body, rendered from the spec.
	if !strings.Contains(rendered, "support-chat-8f3a2c91") {
		t.Error("the rendered reference shows no example")
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if !strings.Contains(line, "Content Security Policy") {
			continue
		}
		if !regexp.MustCompile(`Loading the image 'https://[^']+' violates`).MatchString(line) {
			t.Errorf("the page's policy refused something Redoc needs:\n%s", line)
		}
	}
	if t.Failed() {
		t.Logf("chromium's log:\n%s", log.String())
	}
}
