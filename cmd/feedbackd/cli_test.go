package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// runCLI runs one feedbackd command to completion and returns its stdout.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"feedbackd"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), err
}

func testKeysCreateListRevoke(t *testing.T, b backend) {
	ctx := context.Background()
	db := b.newDB(t)
	inst := start(t, b, db, nil)

	out, err := runCLI(t, nil, "keys", "create", "--db", db, "--workspace", "default", "--name", "ci")
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	if !regexp.MustCompile(`^fbk_[A-Za-z0-9_-]{43}\n$`).MatchString(out) {
		t.Fatalf("keys create stdout: got %q, want the key as the only line", out)
	}
	key := strings.TrimSpace(out)
	c := inst.client(t, key)
	if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "k", Value: 1}); err != nil {
		t.Fatalf("new key does not work: %v", err)
	}

	list, err := runCLI(t, nil, "keys", "list", "--db", db)
	if err != nil {
		t.Fatalf("keys list: %v", err)
	}
	if strings.Contains(list, key) || strings.Contains(list, inst.key) {
		t.Errorf("keys list shows a secret:\n%s", list)
	}
	var id string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " ci ") {
			id = strings.Fields(line)[0]
		}
	}
	if id == "" || !strings.Contains(list, "bootstrap") || !strings.Contains(list, "WORKSPACE") {
		t.Fatalf("keys list lacks the keys:\n%s", list)
	}

	if _, err := runCLI(t, nil, "keys", "revoke", "--db", db, id); err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	// The server trusts a key it looked up for a while: the revocation
	// takes effect once that is over (how long it is, the server's tests
	// check with a clock of their own).
	waitFor(t, "the revoked key refused", func() bool {
		_, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "k", Value: 1})
		return errors.Is(err, client.ErrUnauthorized)
	})
	if _, err := inst.client(t, inst.key).Feedback.Create(ctx, client.FeedbackRequest{TraceID: "k", Value: 1}); err != nil {
		t.Errorf("the other key stopped working: %v", err)
	}
	list, _ = runCLI(t, nil, "keys", "list", "--db", db)
	if !strings.Contains(list, "revoked") {
		t.Errorf("keys list does not show the revocation:\n%s", list)
	}
	if _, err := runCLI(t, nil, "keys", "revoke", "--db", db, "0192f5a4-8c1e-7b3a-9d2f-5e6a7b8c9d0e"); err == nil {
		t.Error("revoking an unknown key: got nil error")
	}

	// The database holds only hashes.
	dump := b.dump(t, db)
	for _, k := range []string{key, inst.key} {
		if strings.Contains(dump, k) || strings.Contains(dump, strings.TrimPrefix(k, "fbk_")) {
			t.Errorf("the database holds the raw key %.12s...", k)
		}
	}
}

func testKeysInOtherWorkspaceSeeNothing(t *testing.T, b backend) {
	ctx := context.Background()
	db := b.newDB(t)
	inst := start(t, b, db, nil)
	id, err := inst.client(t, inst.key).Feedback.Create(ctx, client.FeedbackRequest{TraceID: "mine", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, nil, "keys", "create", "--db", db, "--workspace", "other")
	if err != nil {
		t.Fatal(err)
	}
	other := inst.client(t, strings.TrimSpace(out))
	if _, err := other.Feedback.Get(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get from another workspace: got %v, want ErrNotFound", err)
	}
	if err := other.Feedback.Update(ctx, id, client.FeedbackUpdate{Value: 5}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Update from another workspace: got %v, want ErrNotFound", err)
	}
	if err := other.Feedback.Delete(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Delete from another workspace: got %v, want ErrNotFound", err)
	}
	if got := collect(t, other, client.ListFeedbackParams{}); len(got) != 0 {
		t.Errorf("List from another workspace: got %d items", len(got))
	}
	if got := collect(t, other, client.ListFeedbackParams{TraceID: client.Ptr("mine"), Metadata: client.Ptr(`{}`)}); len(got) != 0 {
		t.Errorf("filtered List from another workspace: got %d items", len(got))
	}
	otherKey := strings.TrimSpace(out)
	status, body := inst.do(t, "POST", "/v1/feedback/"+id.String(), map[string]string{"x-portkey-api-key": otherKey, "Content-Type": "application/json"}, `{"value":9}`)
	if status != 404 {
		t.Errorf("POST update from another workspace: got %d %s, want 404", status, body)
	}

	// A token made with the other workspace's key records into that
	// workspace only, even for the same trace id.
	tok, err := other.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: -5}); err != nil {
		t.Fatal(err)
	}
	mine := collect(t, inst.client(t, inst.key), client.ListFeedbackParams{TraceID: client.Ptr("mine")})
	if len(mine) != 1 || mine[0].ID != id || mine[0].Value != 1 {
		t.Errorf("the first workspace now sees %+v", mine)
	}
	if theirs := collect(t, other, client.ListFeedbackParams{TraceID: client.Ptr("mine")}); len(theirs) != 1 || theirs[0].Value != -5 {
		t.Errorf("the other workspace sees %+v", theirs)
	}
}

func testExpiredKeyIsRejected(t *testing.T, b backend) {
	inst := start(t, b, "", nil)
	key := newKey(t, inst, "default", "--expires-in", "2s")
	c := inst.client(t, key)
	if _, err := c.Feedback.ListPage(context.Background(), client.ListFeedbackParams{}); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := c.Feedback.ListPage(context.Background(), client.ListFeedbackParams{}); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("expired key: got %v, want ErrUnauthorized", err)
	}
	list, _ := runCLI(t, nil, "keys", "list", "--db", inst.db)
	if !strings.Contains(list, "expired") {
		t.Errorf("keys list does not show the expiry:\n%s", list)
	}
}

func testBootstrapKeyFromEnvironment(t *testing.T, b backend) {
	const key = "my-own-bootstrap-key-0123456789"
	inst := start(t, b, "", map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": key})
	if inst.key != "" {
		t.Errorf("a generated key was printed although FEEDBACKD_BOOTSTRAP_KEY was set")
	}
	if _, err := inst.client(t, key).Feedback.Create(context.Background(), client.FeedbackRequest{TraceID: "b", Value: 1}); err != nil {
		t.Errorf("bootstrap key from the environment: %v", err)
	}
	if _, err := runCLI(t, map[string]string{"FEEDBACKD_BOOTSTRAP_KEY": "short"}, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "x.db")); err == nil {
		t.Error("a bootstrap key of 5 characters was accepted")
	}
}

func TestEnvironmentConfiguresServe(t *testing.T) {
	db := filepath.Join(t.TempDir(), "from-env.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	env := map[string]string{"FEEDBACKD_DB": db, "FEEDBACKD_ADDR": "127.0.0.1:0"}
	go func() {
		done <- run(ctx, []string{"feedbackd", "serve"}, func(k string) string { return env[k] }, &stdout, &stderr)
	}()
	for range 300 {
		if strings.Contains(stdout.String(), "listening on") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, stderr.String())
		default:
		}
		sleepBriefly()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("FEEDBACKD_DB was not used: %v", err)
	}
}

func TestHelpNamesEnvironmentVariables(t *testing.T) {
	out, err := runCLI(t, nil, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FEEDBACKD_ADDR", "FEEDBACKD_DB", "FEEDBACKD_BOOTSTRAP_KEY", "--addr", "--db"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %s:\n%s", want, out)
		}
	}
	out, err = runCLI(t, nil, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serve", "keys"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %s:\n%s", want, out)
		}
	}
	out, err = runCLI(t, nil, "keys", "create", "--help")
	if err != nil || !strings.Contains(out, "FEEDBACKD_DB") || !strings.Contains(out, "only line on stdout") {
		t.Errorf("keys create --help: %v\n%s", err, out)
	}
}

func sleepBriefly() { time.Sleep(100 * time.Millisecond) }

// --pprof-addr serves Go's profiler on its own listener, never on the
// API's.
func TestProfilerOnItsOwnAddress(t *testing.T) {
	inst := start(t, backends[0], "", map[string]string{"FEEDBACKD_PPROF_ADDR": "127.0.0.1:0", "FEEDBACKD_LOG_FORMAT": "text"})
	m := regexp.MustCompile(`profiler listening" addr=(\S+)`).FindStringSubmatch(inst.stderr.String())
	if m == nil {
		t.Fatalf("no profiler address in the log:\n%s", inst.stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("profiler index: %d", resp.StatusCode)
	}
	if status, _ := inst.do(t, "GET", "/debug/pprof/", nil, ""); status != 404 {
		t.Errorf("the API address serves the profiler: %d", status)
	}
}

// The request printed with the first key can be sent as it is: to
// --public-url when set, and to localhost, not to [::] or 0.0.0.0, when
// serve listens on every address (as in the container image).
func TestFirstKeyExampleNamesAURLClientsCanReach(t *testing.T) {
	for _, tc := range []struct {
		addr      net.Addr
		publicURL string
		want      string
	}{
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8787}, "", "http://localhost:8787"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8787}, "", "http://localhost:8787"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8787}, "", "http://127.0.0.1:8787"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8787}, "https://feedback.example.com/", "https://feedback.example.com"},
	} {
		if got := exampleURL(tc.addr, tc.publicURL); got != tc.want {
			t.Errorf("exampleURL(%v, %q): got %q, want %q", tc.addr, tc.publicURL, got, tc.want)
		}
	}
}
