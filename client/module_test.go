package client_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// maxGoLine is the newest go line client/go.mod may declare: programs on
// that Go (and every later one) can import the client. Raising it locks out
// users, so it takes a decision, not a drive-by dependency bump.
const maxGoLine = "1.21"

// A program in another module, on the client's go line, imports the client,
// builds, passes vet (whose stdversion check reports standard-library names
// newer than that line, which the compiler of a newer Go lets through) and
// talks to a server. GOTOOLCHAIN=local keeps the go command from switching
// to another toolchain to satisfy a go line; the module cache may be cold,
// so this downloads through the environment's GOPROXY.
func TestImportableFromOlderGo(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	line := goLine(t, dir)
	if compareGo(line, maxGoLine) > 0 {
		t.Fatalf("client/go.mod says go %s, want at most %s", line, maxGoLine)
	}

	prog := t.TempDir()
	writeFile(t, filepath.Join(prog, "go.mod"), fmt.Sprintf(
		"module example.com/oldgo\n\ngo %s\n\nrequire github.com/feedbackd/feedbackd/client v0.0.0\n\nreplace github.com/feedbackd/feedbackd/client => %s\n",
		line, dir))
	writeFile(t, filepath.Join(prog, "main.go"), programSource)

	goCmd(t, prog, "build", "-o", "prog", ".")
	goCmd(t, prog, "vet", ".", "github.com/feedbackd/feedbackd/client")
	if got := goLine(t, prog); got != line {
		t.Errorf("the build changed the program's go line to %s, want %s", got, line)
	}
	checkBuildList(t, prog, line)

	srv := httptest.NewServer(fakeAPI(t))
	defer srv.Close()
	out, err := exec.Command(filepath.Join(prog, "prog"), srv.URL+"/v1").CombinedOutput()
	if err != nil {
		t.Fatalf("program: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "created "+createdID+"; listed 2"; got != want {
		t.Errorf("program printed %q, want %q", got, want)
	}
}

// programSource uses the client the way a program on Go 1.21 or 1.22 can:
// List's result is called with a yield function, as range over functions
// needs Go 1.23.
const programSource = `package main

import (
	"context"
	"fmt"
	"os"

	"github.com/feedbackd/feedbackd/client"
)

func main() {
	ctx := context.Background()
	c, err := client.New(os.Args[1], client.WithAPIKey("test-key"), client.WithMaxRetries(0))
	if err != nil {
		panic(err)
	}
	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "trace-1", Value: 5, Weight: client.Ptr(0.5)})
	if err != nil {
		panic(err)
	}
	n := 0
	var listErr error
	c.Feedback.List(ctx, client.ListFeedbackParams{TraceID: client.Ptr("trace-1")})(func(f client.Feedback, err error) bool {
		if err != nil {
			listErr = err
			return false
		}
		n++
		return true
	})
	if listErr != nil {
		panic(listErr)
	}
	fmt.Printf("created %s; listed %d\n", id, n)
}
`

const createdID = "0190a3a0-0000-7000-8000-000000000001"

// fakeAPI answers the program's create and its two list pages as feedbackd
// would, checking what the client sent.
func fakeAPI(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("x-portkey-api-key"); got != "test-key" {
			t.Errorf("%s %s: key %q, want test-key", r.Method, r.URL, got)
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/feedback":
			var body struct {
				TraceID string `json:"trace_id"`
				Value   int    `json:"value"`
			}
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &body); err != nil || body.TraceID != "trace-1" || body.Value != 5 {
				t.Errorf("create body %s (%v), want trace-1 with value 5", b, err)
			}
			if r.Header.Get("Idempotency-Key") == "" {
				t.Error("create carries no Idempotency-Key")
			}
			fmt.Fprintf(w, `{"status":"success","message":"feedback recorded","feedback_ids":[%q]}`, createdID)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/feedback":
			if got := r.URL.Query().Get("trace_id"); got != "trace-1" {
				t.Errorf("list trace_id %q, want trace-1", got)
			}
			item := fmt.Sprintf(`{"id":%q,"trace_id":"trace-1","value":5,"weight":0.5,"metadata":{},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`, createdID)
			if r.URL.Query().Get("cursor") == "" {
				fmt.Fprintf(w, `{"object":"list","data":[%s],"has_more":true,"next_cursor":"page-2"}`, item)
			} else {
				fmt.Fprintf(w, `{"object":"list","data":[%s],"has_more":false,"next_cursor":null}`, item)
			}
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
		}
	})
}

// checkBuildList fails when a module in the program's build list declares a
// go line newer than line. Modules whose go.mod the go command prunes from
// the graph (the runtime's test-only dependencies) have no GoVersion here:
// the go command never reads them, so they cannot hold a build back.
func checkBuildList(t *testing.T, dir, line string) {
	out := goCmd(t, dir, "list", "-m", "-json", "all")
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := map[string]bool{}
	for dec.More() {
		var m struct{ Path, GoVersion string }
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		seen[m.Path] = true
		if m.GoVersion != "" && compareGo(m.GoVersion, line) > 0 {
			t.Errorf("%s declares go %s, newer than the client's go %s", m.Path, m.GoVersion, line)
		}
	}
	for _, p := range []string{"github.com/feedbackd/feedbackd/client", "github.com/oapi-codegen/runtime", "github.com/google/uuid"} {
		if !seen[p] {
			t.Errorf("build list lacks %s", p)
		}
	}
}

// goCmd runs the go command in dir as a user of the client would on its go
// line, and returns its standard output.
func goCmd(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// goLine returns the go line of the go.mod in dir.
func goLine(t *testing.T, dir string) string {
	t.Helper()
	var mod struct{ Go string }
	if err := json.Unmarshal(goCmd(t, dir, "mod", "edit", "-json"), &mod); err != nil {
		t.Fatal(err)
	}
	return mod.Go
}

// compareGo compares Go versions such as "1.21" and "1.21.0" by their
// numbers (go/version would do, but it is newer than the client's go line).
func compareGo(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		x, y := 0, 0
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
