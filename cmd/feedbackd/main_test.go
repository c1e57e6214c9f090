package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/feedbackd/feedbackd/client"
)

// instance is one feedbackd started through run, as a user would start it.
type instance struct {
	base   string // http://127.0.0.1:PORT
	key    string // the bootstrap key
	db     string
	stop   func()
	stderr *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the server's log writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	listeningLine = regexp.MustCompile(`feedbackd listening on (http://\S+)`)
	keyLine       = regexp.MustCompile(`^\s+(fbk_[A-Za-z0-9_-]{43})\s*$`)
)

// start runs `feedbackd serve` on a free loopback port against db (a new
// file when empty) and returns once it listens. The server stops at the
// end of the test.
func start(t *testing.T, db string, env map[string]string) *instance {
	t.Helper()
	if db == "" {
		db = filepath.Join(t.TempDir(), "feedbackd.db")
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	inst := &instance{db: db, stderr: &syncBuffer{}}
	getenv := func(k string) string { return env[k] }
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"feedbackd", "serve", "--addr", "127.0.0.1:0", "--db", db}, getenv, outW, inst.stderr)
		outW.CloseWithError(io.EOF)
		done <- err
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := keyLine.FindStringSubmatch(line); m != nil {
				inst.key = m[1]
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				inst.base = m[1]
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("feedbackd exited before listening: %v\n%s", err, inst.stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("feedbackd did not start listening in 30s")
	}
	var once sync.Once
	inst.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("feedbackd exited with %v", err)
			}
		})
	}
	t.Cleanup(inst.stop)
	return inst
}

// specRouter routes requests to the operations of openapi.yaml, for
// response validation.
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// validatingDoer checks every response against openapi.yaml, status code
// included, before handing it on: a response the spec does not allow fails
// the test however the client treats it.
type validatingDoer struct {
	t    *testing.T
	next client.HttpRequestDoer
}

func (d validatingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	router, err := specRouter()
	if err != nil {
		d.t.Fatalf("load spec: %v", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		// Paths outside the spec (404 tests) have nothing to validate
		// against but must still answer the Error body.
		if !strings.Contains(string(body), `"status":"failure"`) {
			d.t.Errorf("%s %s outside the spec answered %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		return resp, nil
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
					"uuid": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
				}),
			},
		},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), input); err != nil {
		d.t.Errorf("%s %s answered %d outside the spec: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}

// client returns a Go client for inst whose responses are checked against
// the spec.
func (inst *instance) client(t *testing.T, key string) *client.Client {
	t.Helper()
	c, err := client.New(inst.base+"/v1", client.WithAPIKey(key), client.WithDoer(validatingDoer{t, http.DefaultClient}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends one raw request, checks its response against the spec, and
// returns status and body.
func (inst *instance) do(t *testing.T, method, path string, header map[string]string, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, inst.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := validatingDoer{t, http.DefaultClient}.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
