package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// newKey makes another key for workspace with the CLI and returns it.
func newKey(t *testing.T, inst *instance, workspace string, extra ...string) string {
	t.Helper()
	out, err := runCLI(t, nil, append([]string{"keys", "create", "--db", inst.db, "--workspace", workspace}, extra...)...)
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	return strings.TrimSpace(out)
}

// tokenClient submits with tokens through the spec-checking doer.
func tokenOpts(t *testing.T) []client.Option {
	return []client.Option{client.WithDoer(validatingDoer{t, http.DefaultClient})}
}

func testFeedbackTokenFlow(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)

	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "chat-42", Metadata: &map[string]any{"_user": "user_1"}})
	if err != nil {
		t.Fatalf("Tokens.Create: %v", err)
	}
	if !strings.HasPrefix(tok.Token, "fbt_") || tok.URL != inst.base+"/v1/feedback/tokens/"+tok.Token {
		t.Errorf("token %q, url %q", tok.Token, tok.URL)
	}
	if d := time.Until(tok.ExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("default expiry in %v, want about a day", d)
	}
	if strings.Contains(tok.Token, "user_1") || strings.Contains(tok.Token, "chat-42") {
		t.Errorf("the token shows what it carries: %s", tok.Token)
	}

	// The browser sends no key; the token's metadata wins over its own.
	id, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: 1, Metadata: &client.Metadata{"_user": "someone-else", "comment": "great"}}, tokenOpts(t)...)
	if err != nil {
		t.Fatalf("SubmitWithToken: %v", err)
	}
	f, err := c.Feedback.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.TraceID != "chat-42" || f.Value != 1 || f.Weight != 1 || jsonOf(t, f.Metadata) != `{"_user":"user_1","comment":"great"}` {
		t.Errorf("stored %+v", f)
	}

	// Changing one's mind leaves one vote, not two.
	again, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: -1, Weight: client.Ptr(0.5)}, tokenOpts(t)...)
	if err != nil {
		t.Fatalf("second SubmitWithToken: %v", err)
	}
	if again != id {
		t.Errorf("re-vote got id %s, want the first vote's %s", again, id)
	}
	votes := collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("chat-42")})
	if len(votes) != 1 || votes[0].Value != -1 || votes[0].Weight != 0.5 || votes[0].Metadata["_user"] != "user_1" || !votes[0].CreatedAt.Equal(f.CreatedAt) {
		t.Errorf("after re-vote: %+v", votes)
	}

	// Another token for the same trace is another vote.
	tok2, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "chat-42"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubmitWithToken(ctx, tok2.URL, client.TokenFeedback{Value: 1}, tokenOpts(t)...); err != nil {
		t.Fatal(err)
	}
	if n := len(collect(t, c, client.ListFeedbackParams{TraceID: client.Ptr("chat-42")})); n != 2 {
		t.Errorf("two tokens gave %d votes, want 2", n)
	}

	// The token grants nothing else: not the API.
	for _, h := range []map[string]string{{"x-portkey-api-key": tok.Token}, {"Authorization": "Bearer " + tok.Token}} {
		if status, _ := inst.do(t, "GET", "/v1/feedback", h, ""); status != 401 {
			t.Errorf("token used as an API key: got %d, want 401", status)
		}
	}
	// And a bad body is a 400 that changes nothing.
	status, body := inst.do(t, "POST", "/v1/feedback/tokens/"+tok.Token, map[string]string{"Content-Type": "application/json"}, `{"value":11}`)
	if status != 400 || !strings.Contains(body, "/value") {
		t.Errorf("token submission with value 11: got %d %s", status, body)
	}
	if f, _ := c.Feedback.Get(ctx, id); f == nil || f.Value != -1 {
		t.Errorf("a rejected submission changed the vote: %+v", f)
	}
}

func testFeedbackTokensThatMustFail(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil)
	c := inst.client(t, inst.key)
	short, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t-expiring", ExpiresIn: client.Ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t-good"})
	if err != nil {
		t.Fatal(err)
	}
	revokedKey := newKey(t, inst, "default", "--name", "to-revoke")
	byRevoked, err := inst.client(t, revokedKey).Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t-revoked"})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := runCLI(t, nil, "keys", "list", "--db", inst.db)
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "to-revoke") {
			if _, err := runCLI(t, nil, "keys", "revoke", "--db", inst.db, strings.Fields(line)[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := start(t, b, "", nil) // another deployment: another sealing key
	foreign, err := other.client(t, other.key).Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t-foreign"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	base := inst.base + "/v1/feedback/tokens/"
	cases := map[string]string{
		"expired":                  short.URL,
		"altered":                  base + flip(good.Token, len(good.Token)/2),
		"altered last character":   base + flip(good.Token, len(good.Token)-1),
		"truncated":                base + good.Token[:len(good.Token)-4],
		"created by a revoked key": byRevoked.URL,
		"from another deployment":  base + foreign.Token,
		"an API key":               base + inst.key,
		"garbage":                  base + "fbt_nonsense",
	}
	for name, u := range cases {
		_, err := client.SubmitWithToken(ctx, u, client.TokenFeedback{Value: 1}, tokenOpts(t)...)
		if !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s: got %v, want 401", name, err)
		}
	}
	if got := collect(t, c, client.ListFeedbackParams{}); len(got) != 0 {
		t.Errorf("rejected tokens stored %d feedback", len(got))
	}
	if _, err := client.SubmitWithToken(ctx, good.URL, client.TokenFeedback{Value: 1}, tokenOpts(t)...); err != nil {
		t.Errorf("the untouched token: %v", err)
	}

	for _, body := range []string{`{"trace_id":"t","expires_in":0}`, `{"trace_id":"t","expires_in":2592001}`, `{"expires_in":60}`, `{"trace_id":""}`} {
		status, resp := inst.do(t, "POST", "/v1/feedback/tokens", map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}, body)
		if status != 400 {
			t.Errorf("create token %s: got %d %s, want 400", body, status, resp)
		}
	}
	if status, _ := inst.do(t, "POST", "/v1/feedback/tokens", map[string]string{"Content-Type": "application/json"}, `{"trace_id":"t"}`); status != 401 {
		t.Errorf("create token without a key: got %d, want 401", status)
	}
	huge := map[string]any{}
	for i := range 16 {
		huge[strconv.Itoa(i)] = strings.Repeat("x", 200)
	}
	if _, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t", Metadata: &huge}); err == nil {
		t.Error("a token too long for its route was handed out")
	}
}

func testTokenLinksUsePublicURL(t *testing.T, b backend) {
	inst := start(t, b, "", map[string]string{"FEEDBACKD_PUBLIC_URL": "https://feedback.example.com/"})
	tok, err := inst.client(t, inst.key).Tokens.Create(context.Background(), client.FeedbackTokenRequest{TraceID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://feedback.example.com/v1/feedback/tokens/" + tok.Token; tok.URL != want {
		t.Errorf("url: got %s, want %s", tok.URL, want)
	}
}

func corsHeaders(t *testing.T, method, url, origin string, extra map[string]string) http.Header {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header
}

func testCORS(t *testing.T, b backend) {
	ctx := context.Background()
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

	inst := start(t, b, "", nil)
	tok, err := inst.client(t, inst.key).Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	h := corsHeaders(t, "OPTIONS", tok.URL, "https://shop.example", preflight)
	if h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("token preflight from any origin: %v", h)
	}
	req, _ := http.NewRequest("POST", tok.URL, strings.NewReader(`{"value":1}`))
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("token submission from a browser: %d %v", resp.StatusCode, resp.Header)
	}
	// The API-key routes, token creation included, send no CORS headers.
	for _, path := range []string{"/v1/feedback", "/v1/feedback/tokens", "/v1/feedback/0192f5a4-8c1e-7b3a-9d2f-5e6a7b8c9d0e"} {
		for _, method := range []string{"OPTIONS", "GET", "POST"} {
			h := corsHeaders(t, method, inst.base+path, "https://shop.example", preflight)
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s %s answers %s: %s", method, path, k, h.Get(k))
				}
			}
		}
	}

	restricted := start(t, b, "", map[string]string{"FEEDBACKD_CORS_ORIGINS": "https://app.example, https://admin.example"})
	tok, err = restricted.client(t, restricted.key).Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if got := corsHeaders(t, "OPTIONS", tok.URL, "https://app.example", preflight).Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("allowed origin: got %q", got)
	}
	if got := corsHeaders(t, "OPTIONS", tok.URL, "https://evil.example", preflight).Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: got %q, want none", got)
	}
}

func testRateLimit(t *testing.T, b backend) {
	ctx := context.Background()
	// One request every 2 seconds, bursts of 1: the first passes, and a
	// 429 follows at once however slow the machine is.
	inst := start(t, b, "", map[string]string{"FEEDBACKD_RATE_LIMIT": "0.5"})
	jsonKey := func(k string) map[string]string {
		return map[string]string{"x-portkey-api-key": k, "Content-Type": "application/json"}
	}
	statuses := []int{}
	var retry, body string
	for range 5 {
		req, _ := http.NewRequest("POST", inst.base+"/v1/feedback", strings.NewReader(`{"trace_id":"rl","value":1}`))
		for k, v := range jsonKey(inst.key) {
			req.Header.Set(k, v)
		}
		resp, err := validatingDoer{t, http.DefaultClient}.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == 429 {
			retry, body = resp.Header.Get("Retry-After"), string(b)
			break
		}
	}
	if statuses[0] != 200 || statuses[len(statuses)-1] != 429 {
		t.Fatalf("statuses with a limit of 0.5/s: %v, want 200 then a 429", statuses)
	}
	if secs, err := strconv.Atoi(retry); err != nil || secs < 1 || secs > 2 || !strings.Contains(body, `"status":"failure"`) {
		t.Errorf("429: Retry-After %q, body %s", retry, body)
	}
	// Each key has its own bucket.
	other := newKey(t, inst, "default")
	if status, _ := inst.do(t, "POST", "/v1/feedback", jsonKey(other), `{"trace_id":"rl","value":1}`); status != 200 {
		t.Errorf("another key: got %d, want 200", status)
	}
	// The Go client waits as Retry-After says and succeeds.
	c := inst.client(t, inst.key)
	for i := range 2 {
		if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "rl-client", Value: 1}); err != nil {
			t.Fatalf("client create %d under the limit: %v", i, err)
		}
	}
	// Without retries the client reports the 429.
	noRetry, _ := client.New(inst.base+"/v1", client.WithAPIKey(inst.key), client.WithMaxRetries(0))
	var err error
	for range 5 {
		if _, err = noRetry.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "rl-client", Value: 1}); err != nil {
			break
		}
	}
	if !errors.Is(err, client.ErrTooManyRequests) {
		t.Errorf("without retries: got %v, want ErrTooManyRequests", err)
	}
	// Tokens are limited one by one too.
	tok, err := inst.client(t, other).Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "rl-token"})
	if err != nil {
		t.Fatal(err)
	}
	limited := false
	for range 5 {
		status, _ := inst.do(t, "POST", strings.TrimPrefix(tok.URL, inst.base), map[string]string{"Content-Type": "application/json"}, `{"value":1}`)
		limited = limited || status == 429
	}
	if !limited {
		t.Error("5 quick token submissions at 0.5/s were never limited")
	}
}

// Neither the database nor the log ever holds a raw key or token.
func testSecretsNeverStoredOrLogged(t *testing.T, b backend) {
	ctx := context.Background()
	db := b.newDB(t)
	inst := start(t, b, db, map[string]string{"FEEDBACKD_LOG_LEVEL": "debug", "FEEDBACKD_LOG_FORMAT": "text"})
	c := inst.client(t, inst.key)
	if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "s", Value: 1}); err != nil {
		t.Fatal(err)
	}
	inst.do(t, "GET", "/v1/feedback", map[string]string{"Authorization": "Bearer " + inst.key}, "")
	inst.do(t, "GET", "/v1/feedback", map[string]string{"x-portkey-api-key": inst.key + "x"}, "")
	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "s", Metadata: &map[string]any{"_user": "u"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: 1}); err != nil {
		t.Fatal(err)
	}
	inst.do(t, "POST", "/v1/feedback/tokens/"+tok.Token+"x", map[string]string{"Content-Type": "application/json"}, `{"value":1}`)
	inst.stop()

	logs := inst.stderr.String()
	if !strings.Contains(logs, "route=/v1/feedback/tokens/:token") {
		t.Fatalf("the log lacks the requests:\n%s", logs)
	}
	dump := b.dump(t, db)
	for _, secret := range []string{inst.key, tok.Token, strings.TrimPrefix(inst.key, "fbk_"), strings.TrimPrefix(tok.Token, "fbt_")} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret %.12s...", secret)
		}
		if strings.Contains(dump, secret) {
			t.Errorf("the database holds a secret %.12s...", secret)
		}
	}
}
