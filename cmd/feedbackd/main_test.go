package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
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
	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/client"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
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

// backend is a store the end-to-end suite runs against.
type backend struct {
	name string
	// newDB returns the --db value of a new, empty database (skipping the
	// test when the backend is not available).
	newDB func(t *testing.T) string
	// dump returns everything a database holds, as text, to search for
	// secrets that must not be there.
	dump func(t *testing.T, db string) string
}

var backends = []backend{
	{
		name:  "sqlite",
		newDB: func(t *testing.T) string { return filepath.Join(t.TempDir(), "feedbackd.db") },
		dump: func(t *testing.T, db string) string {
			var all []byte
			for _, f := range []string{db, db + "-wal", db + "-shm"} {
				b, err := os.ReadFile(f)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return string(all)
		},
	},
	{
		name:  "postgres",
		newDB: func(t *testing.T) string { return pgtest.NewDatabase(t) },
		dump: func(t *testing.T, db string) string {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
			if err != nil {
				t.Fatal(err)
			}
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, table := range tables {
				var text *string
				if err := conn.QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&text); err != nil {
					t.Fatal(err)
				}
				if text != nil {
					all.WriteString(*text)
				}
			}
			return all.String()
		},
	},
}

// endToEnd lists the suite that runs against every backend.
var endToEnd = []struct {
	name string
	fn   func(t *testing.T, b backend)
}{
	{"CreateGetUpdateDelete", testCreateGetUpdateDelete},
	{"BulkCreateKeepsOrderAndIsAtomic", testBulkCreateKeepsOrderAndIsAtomic},
	{"ListFiltersAndPages", testListFiltersAndPages},
	{"ListPagingUnderConcurrentWrites", testListPagingUnderConcurrentWrites},
	{"RestartKeepsData", testRestartKeepsData},
	{"BadInputIsRejectedAndStoresNothing", testBadInputIsRejectedAndStoresNothing},
	{"CaseVariantKeysAreIgnored", testCaseVariantKeysAreIgnored},
	{"UndeclaredQueryParametersAreRefused", testUndeclaredQueryParametersAreRefused},
	{"Probes", testProbes},
	{"BearerKeyAndPortkeyHeaderBothWork", testBearerKeyAndPortkeyHeaderBothWork},
	{"ShutdownLosesNothingAcknowledged", testShutdownLosesNothingAcknowledged},
	{"ClientReadsKeyFromPortkeyEnvironmentVariable", testClientReadsKeyFromPortkeyEnvironmentVariable},
	{"KeysCreateListRevoke", testKeysCreateListRevoke},
	{"KeysInOtherWorkspaceSeeNothing", testKeysInOtherWorkspaceSeeNothing},
	{"ExpiredKeyIsRejected", testExpiredKeyIsRejected},
	{"BootstrapKeyFromEnvironment", testBootstrapKeyFromEnvironment},
	{"FeedbackTokenFlow", testFeedbackTokenFlow},
	{"FeedbackTokensThatMustFail", testFeedbackTokensThatMustFail},
	{"TokenLinksUsePublicURL", testTokenLinksUsePublicURL},
	{"CORS", testCORS},
	{"RateLimit", testRateLimit},
	{"SecretsNeverStoredOrLogged", testSecretsNeverStoredOrLogged},
	{"PortkeyPythonSDKRequests", testPortkeyPythonSDKRequests},
	{"AnalyticsEndpoints", testAnalyticsEndpoints},
	{"AveragesPrintAsDecimals", testAveragesPrintAsDecimals},
	{"AIModels", testAIModels},
	{"IdempotencyKeys", testIdempotencyKeys},
	{"ClientChosenIDs", testClientChosenIDs},
	{"EraseByFilter", testEraseByFilter},
	{"ClientRetriesWithoutDuplicates", testClientRetriesWithoutDuplicates},
	{"StopsLoseNothingAcknowledged", testStopsLoseNothingAcknowledged},
	{"EraseIsAllOrNothingOnSIGKILL", testEraseIsAllOrNothingOnSIGKILL},
}

// TestEndToEnd runs the whole program, through run, against each backend
// and drives it over HTTP on loopback.
func TestEndToEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range endToEnd {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
			}
		})
	}
}

// hangGuard bounds every wait for an event in these tests. It is no figure
// of feedbackd's: it only turns a hang into a failure, far above what
// anything takes on a loaded machine. How fast feedbackd is belongs in
// the benchmarks (make bench), not here.
const hangGuard = time.Minute

// waitFor polls until cond holds, failing t after hangGuard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangGuard); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, hangGuard)
		}
	}
}

// start runs `feedbackd serve` on a free loopback port against db (a new
// database of backend b when empty) and returns once it listens. The
// server stops at the end of the test.
func start(t *testing.T, b backend, db string, env map[string]string) *instance {
	t.Helper()
	if db == "" {
		db = b.newDB(t)
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
	case <-time.After(hangGuard):
		cancel()
		t.Fatalf("feedbackd did not start listening in %v", hangGuard)
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
