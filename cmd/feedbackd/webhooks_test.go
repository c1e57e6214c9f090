package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/feedbackd/feedbackd/client"
)

// allowLoopback is the environment a server needs to deliver to the
// receivers of these tests, which listen on 127.0.0.1.
var allowLoopback = map[string]string{"FEEDBACKD_WEBHOOKS_ALLOW_LOOPBACK": "true"}

// delivery is one request a receiver verified.
type delivery struct {
	id    string // webhook-id
	sigs  []string
	body  []byte
	event client.WebhookEvent
}

// receiver is a webhook receiver on 127.0.0.1 that verifies every
// request's signature with the Standard Webhooks library, against every
// secret it was given (a delivery must verify with each: after a
// rotation, the old and the new), validates the body against the spec's
// WebhookEvent schema, and records what it got. It answers status, or
// waits for release first while held.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets []string
	got     []delivery
	// arrivals holds the webhook-id and data.id of every request as it
	// arrived, answered or not.
	arrivals [][2]string
	status   int
	delay    time.Duration // how long each answer takes
	held     chan struct{} // non-nil: requests wait until it is closed
	arrived  chan struct{} // told of every request, when not full
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, status: http.StatusNoContent, arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// url is where the receiver listens.
func (r *receiver) url() string { return r.srv.URL + "/hook" }

// verifyWith sets the secrets every delivery must verify with.
func (r *receiver) verifyWith(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = secrets
}

// hold makes requests wait until the returned function is called.
func (r *receiver) hold() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.held = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.held = nil
			r.mu.Unlock()
			close(ch)
		})
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var data struct {
		Data struct{ ID string } `json:"data"`
	}
	_ = json.Unmarshal(body, &data)
	r.mu.Lock()
	r.arrivals = append(r.arrivals, [2]string{req.Header.Get("webhook-id"), data.Data.ID})
	held, delay := r.held, r.delay
	r.mu.Unlock()
	time.Sleep(delay)
	if held != nil {
		select {
		case <-held:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || req.URL.Path != "/hook" || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("receiver: got %s %s (%s), want POST /hook as JSON", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
	}
	if len(r.secrets) == 0 {
		r.t.Errorf("receiver: a delivery arrived before the test gave the secret")
	}
	for _, secret := range r.secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			r.t.Fatalf("receiver: %v", err)
		}
		if err := wh.Verify(body, req.Header); err != nil {
			r.t.Errorf("receiver: delivery %s does not verify with secret %s...: %v", req.Header.Get("webhook-id"), secret[:10], err)
		}
	}
	validateWebhookEvent(r.t, body)
	d := delivery{id: req.Header.Get("webhook-id"), sigs: strings.Fields(req.Header.Get("webhook-signature")), body: body}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&d.event); err != nil {
		r.t.Errorf("receiver: %v", err)
	}
	r.got = append(r.got, d)
	w.WriteHeader(r.status)
}

// deliveries returns what the receiver got so far.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// waitFor polls until the receiver holds n deliveries, and returns them.
func (r *receiver) waitFor(t *testing.T, n int) []delivery {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d deliveries", n), func() bool { return len(r.deliveries()) >= n })
	return r.deliveries()
}

// webhookEventSchema is the spec's WebhookEvent component.
var webhookEventSchema = sync.OnceValues(func() (*openapi3.Schema, error) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		return nil, err
	}
	ref := doc.Components.Schemas["WebhookEvent"]
	if ref == nil || ref.Value == nil {
		return nil, errors.New("openapi.yaml has no WebhookEvent schema")
	}
	return ref.Value, nil
})

// validateWebhookEvent checks a delivered body against the spec's
// WebhookEvent schema, formats included.
func validateWebhookEvent(t *testing.T, body []byte) {
	t.Helper()
	schema, err := webhookEventSchema()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("delivered body is not JSON: %v: %s", err, body)
		return
	}
	if err := schema.VisitJSON(v, openapi3.EnableFormatValidation(), openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
		"uuid": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
	})); err != nil {
		t.Errorf("delivered body does not match WebhookEvent: %v\n%s", err, body)
	}
}

// subscribe creates a webhook of c's workspace for r with every event
// (unless req says otherwise) and tells r its secret.
func subscribe(t *testing.T, c *client.Client, r *receiver, req client.WebhookRequest) *client.WebhookCreated {
	t.Helper()
	req.URL = r.url()
	if req.Events == nil {
		req.Events = []client.WebhookEventType{client.FeedbackCreated, client.FeedbackUpdated, client.FeedbackDeleted}
	}
	w, err := c.Webhooks.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	r.verifyWith(w.Secret)
	return w
}

// getRaw returns GET /v1/feedback/{id} as the server answers it, decoded
// as JSON with numbers kept as written.
func (inst *instance) getRaw(t *testing.T, id string) map[string]any {
	t.Helper()
	status, body := inst.do(t, http.MethodGet, "/v1/feedback/"+id, map[string]string{"x-portkey-api-key": inst.key}, "")
	if status != http.StatusOK {
		t.Fatalf("GET feedback %s: %d %s", id, status, body)
	}
	return decodeJSON(t, []byte(body))
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

// dataOf is a delivery's data member as delivered.
func dataOf(t *testing.T, d delivery) map[string]any {
	t.Helper()
	return decodeJSON(t, d.body)["data"].(map[string]any)
}

// summary is "type id" of each delivery, to compare sequences.
func summary(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.event.Type) + " " + d.event.Data.ID.String()
	}
	return out
}

func testWebhooksCreateGetUpdateDelete(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	r := newReceiver(t)

	w, err := c.Webhooks.Create(ctx, client.WebhookRequest{
		URL: r.url(), Events: []client.WebhookEventType{client.FeedbackUpdated, client.FeedbackCreated},
		Filter: &client.WebhookFilter{ValueMax: client.Ptr(-5)}, Description: client.Ptr("bad answers"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Secret, "whsec_") || len(w.Secret) != len("whsec_")+44 {
		t.Errorf("secret: got %q, want whsec_ and the base64 of 32 bytes", w.Secret)
	}
	if _, err := standardwebhooks.NewWebhook(w.Secret); err != nil {
		t.Errorf("the library does not take the secret: %v", err)
	}
	if w.ID.Version() != 7 || w.Status != client.WebhookCreatedStatusActive || w.URL != r.url() {
		t.Errorf("created: got id %s (v%d), status %s, url %s", w.ID, w.ID.Version(), w.Status, w.URL)
	}
	want := client.Webhook{
		ID: w.ID, URL: r.url(), Events: []client.WebhookEventType{client.FeedbackCreated, client.FeedbackUpdated},
		Filter: client.WebhookFilter{ValueMax: client.Ptr(-5)}, Description: client.Ptr("bad answers"),
		Status: client.WebhookStatusActive, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
	got, err := c.Webhooks.Get(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("get: got %+v, want %+v", *got, want)
	}
	list, err := c.Webhooks.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Errorf("list: got %+v, want [%+v]", list, want)
	}

	// PATCH changes what it is sent: the filter as a whole ({} removes
	// it), and pauses and resumes.
	up, err := c.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{
		Events: &[]client.WebhookEventType{client.FeedbackDeleted}, Filter: &client.WebhookFilter{},
		Description: client.Ptr("deletions"), Paused: client.Ptr(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Events, want.Filter, want.Description, want.Status = []client.WebhookEventType{client.FeedbackDeleted}, client.WebhookFilter{}, client.Ptr("deletions"), client.WebhookStatusPaused
	want.UpdatedAt = up.UpdatedAt
	if !reflect.DeepEqual(*up, want) || !up.UpdatedAt.After(w.UpdatedAt) {
		t.Errorf("update: got %+v, want %+v, updated after %s", *up, want, w.UpdatedAt)
	}
	if up, err = c.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{Paused: client.Ptr(false)}); err != nil || up.Status != client.WebhookStatusActive {
		t.Errorf("resume: got %+v, %v, want active", up, err)
	}

	// A rotation's answer holds the new secret, and when the old stops
	// signing: a day later.
	rot, err := c.Webhooks.RotateSecret(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secret == w.Secret || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Errorf("rotated secret: got %q, want a new whsec_ secret", rot.Secret)
	}
	if grace := time.Until(rot.PreviousSecretExpiresAt); grace < 23*time.Hour || grace > 24*time.Hour {
		t.Errorf("previous secret expires in %v, want 24h", grace)
	}

	// The secrets are stored sealed, and never logged.
	dump, log := b.dump(t, inst.db), inst.stderr.String()
	for _, secret := range []string{w.Secret, rot.Secret} {
		raw := strings.TrimPrefix(secret, "whsec_")
		if strings.Contains(dump, raw) || strings.Contains(log, raw) {
			t.Errorf("secret %s... is in the database or the log", secret[:12])
		}
	}

	if err := c.Webhooks.Delete(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Webhooks.Get(ctx, w.ID); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get after delete: got %v, want ErrNotFound", err)
	}
	if err := c.Webhooks.Delete(ctx, w.ID); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
	if list, err := c.Webhooks.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after delete: got %v, %v, want none", list, err)
	}
}

func testWebhooksOfAnotherWorkspaceAreInvisible(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	r := newReceiver(t)
	w := subscribe(t, c, r, client.WebhookRequest{})
	if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "mine", Value: 1}); err != nil {
		t.Fatal(err)
	}
	event := r.waitFor(t, 1)[0].id
	out, err := runCLI(t, nil, "keys", "create", "--db", inst.db, "--workspace", "other")
	if err != nil {
		t.Fatal(err)
	}
	other := inst.client(t, strings.TrimSpace(out))
	eventID := uuid.MustParse(event)
	for name, call := range map[string]func() error{
		"get": func() error { _, err := other.Webhooks.Get(ctx, w.ID); return err },
		"update": func() error {
			_, err := other.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{Paused: client.Ptr(true)})
			return err
		},
		"rotate": func() error { _, err := other.Webhooks.RotateSecret(ctx, w.ID); return err },
		"deliveries": func() error {
			_, err := other.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{})
			return err
		},
		"redeliver":     func() error { return other.Webhooks.Redeliver(ctx, w.ID, eventID) },
		"delete":        func() error { return other.Webhooks.Delete(ctx, w.ID) },
		"unknown id":    func() error { _, err := c.Webhooks.Get(ctx, uuid.Must(uuid.NewV7())); return err },
		"unknown event": func() error { return c.Webhooks.Redeliver(ctx, w.ID, uuid.Must(uuid.NewV7())) },
	} {
		if err := call(); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", name, err)
		}
	}
	if list, err := other.Webhooks.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("list from another workspace: got %v, %v, want none", list, err)
	}
	// Nothing the other key tried changed the webhook.
	got, err := c.Webhooks.Get(ctx, w.ID)
	if err != nil || got.Status != client.WebhookStatusActive {
		t.Errorf("after the other workspace's calls: got %+v, %v, want it active", got, err)
	}
	// And the other workspace's writes are not this webhook's events.
	if _, err := other.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "theirs", Value: 2}); err != nil {
		t.Fatal(err)
	}
	marker, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "mine", Value: 3})
	if err != nil {
		t.Fatal(err)
	}
	ds := r.waitFor(t, 2)
	if len(ds) != 2 || ds[1].event.Data.ID != marker {
		t.Errorf("deliveries: got %v, want this workspace's two creations only", summary(ds))
	}
}

func testWebhookURLsAndBodiesThatMustFail(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", nil) // without --webhooks-allow-loopback
	c := inst.client(t, inst.key)
	for _, url := range []string{
		"http://127.0.0.1:9/hook",                  // loopback, without the flag
		"https://localhost/hook",                   // loopback by name
		"http://hooks.example.com/hook",            // plain http to a host that is not loopback
		"https://10.1.2.3/hook",                    // a private address
		"https://[fd00::1]/hook",                   // a private IPv6 address
		"https://169.254.169.254/latest/meta-data", // cloud metadata (link-local)
		"https://user:pass@hooks.example.com/hook",
		"ftp://hooks.example.com/hook",
		"hooks.example.com/hook",
	} {
		_, err := c.Webhooks.Create(ctx, client.WebhookRequest{URL: url, Events: []client.WebhookEventType{client.FeedbackCreated}})
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || len(apiErr.Fields) != 1 || apiErr.Fields[0].Path != "/url" {
			t.Errorf("create with %s: got %v, want 400 naming /url", url, err)
		}
	}
	w, err := c.Webhooks.Create(ctx, client.WebhookRequest{URL: "https://hooks.example.com/hook", Events: []client.WebhookEventType{client.FeedbackCreated}})
	if err != nil {
		t.Fatalf("an https URL: %v", err)
	}
	if _, err := c.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{URL: client.Ptr("https://192.168.1.1/hook")}); !isStatus(err, http.StatusBadRequest) {
		t.Errorf("update to a private address: got %v, want 400", err)
	}

	key := map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}
	path := "/v1/webhooks/" + w.ID.String()
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":[]}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.voted"]}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.created","feedback.created"]}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h"}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.created"],"secret":"whsec_mine"}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.created"],"filter":{"user":"u"}}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.created"],"filter":{"metadata":{"a":{"b":1}}}}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.created"],"filter":{"value_min":11}}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/` + strings.Repeat("a", 2048) + `","events":["feedback.created"]}`},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/h","events":["feedback.created"],"description":"` + strings.Repeat("d", 257) + `"}`},
		{"PATCH", path, `{}`},
		{"PATCH", path, `{"paused":"yes"}`},
		{"PATCH", path, `{"status":"active"}`},
		{"GET", "/v1/webhooks/not-a-uuid", ``},
		{"GET", path + "/deliveries?limit=0", ``},
		{"GET", path + "/deliveries?limit=101", ``},
		{"GET", path + "/deliveries?cursor=bm90LWEtY3Vyc29y", ``},
		{"GET", path + "/deliveries?page=2", ``},
		{"POST", path + "/deliveries/not-a-uuid/redeliver", ``},
	} {
		if status, body := inst.do(t, tc.method, tc.path, key, tc.body); status != http.StatusBadRequest {
			t.Errorf("%s %s %.80s: got %d %s, want 400", tc.method, tc.path, tc.body, status, body)
		}
	}
	if got, err := c.Webhooks.Get(ctx, w.ID); err != nil || got.URL != "https://hooks.example.com/hook" || got.Status != client.WebhookStatusActive {
		t.Errorf("after the refused changes: got %+v, %v, want it as created", got, err)
	}
	if list, err := c.Webhooks.List(ctx); err != nil || len(list) != 1 {
		t.Errorf("after the refused creations: got %d webhooks, %v, want 1", len(list), err)
	}
}

func isStatus(err error, status int) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == status
}

// Every path that writes feedback records its events, delivered in the
// order the writes committed, each body exactly what GET /v1/feedback/{id}
// answered for the feedback as the write left it (as it was, for a
// deletion).
func testWebhookEventsForEveryWritePath(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	r := newReceiver(t)
	subscribe(t, c, r, client.WebhookRequest{})
	key := map[string]string{"x-portkey-api-key": inst.key, "Content-Type": "application/json"}

	// want lists the events expected so far; seen, GET's answer for each.
	type expected struct {
		typ  client.WebhookEventType
		id   string
		data map[string]any
	}
	var want []expected
	expect := func(typ client.WebhookEventType, ids ...string) {
		for _, id := range ids {
			want = append(want, expected{typ, id, inst.getRaw(t, id)})
		}
	}
	// check waits for every event so far and compares them.
	check := func(step string) {
		t.Helper()
		ds := r.waitFor(t, len(want))
		if len(ds) != len(want) {
			t.Fatalf("%s: got %d deliveries %v, want %d", step, len(ds), summary(ds), len(want))
		}
		for i, w := range want {
			d := ds[i]
			if d.event.Type != w.typ || d.event.Data.ID.String() != w.id {
				t.Errorf("%s: delivery %d: got %s %s, want %s %s", step, i, d.event.Type, d.event.Data.ID, w.typ, w.id)
				continue
			}
			if got := dataOf(t, d); !reflect.DeepEqual(got, w.data) {
				t.Errorf("%s: delivery %d data:\ngot  %v\nwant %v (GET /v1/feedback/%s)", step, i, got, w.data, w.id)
			}
			if _, err := uuid.Parse(d.id); err != nil {
				t.Errorf("%s: webhook-id %q is not an event id", step, d.id)
			}
		}
	}

	one, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "single", Value: 5, Metadata: &client.Metadata{"_user": "u1", "n": 1.5}})
	if err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackCreated, one.String())
	check("single")

	bulk, err := c.Feedback.BulkCreate(ctx, []client.FeedbackRequest{{TraceID: "bulk", Value: 1}, {TraceID: "bulk", Value: -1}})
	if err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackCreated, bulk[0].String(), bulk[1].String())
	check("bulk")

	status, body := inst.do(t, "POST", "/v1/feedback", key, `{"0":{"traceID":"indexed","value":2},"1":{"trace_id":"indexed","value":3}}`)
	if status != http.StatusOK {
		t.Fatalf("index-keyed body: %d %s", status, body)
	}
	var indexed client.FeedbackResponse
	if err := json.Unmarshal([]byte(body), &indexed); err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackCreated, indexed.FeedbackIds[0].String(), indexed.FeedbackIds[1].String())
	check("index-keyed")

	chosen := uuid.Must(uuid.NewRandom())
	if _, _, err := c.Feedback.Put(ctx, []client.FeedbackRequest{{ID: &chosen, TraceID: "put", Value: 4}}); err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackCreated, chosen.String())
	if _, replaced, err := c.Feedback.Put(ctx, []client.FeedbackRequest{{ID: &chosen, TraceID: "put", Value: -4}}); err != nil || replaced != 1 {
		t.Fatalf("put again: replaced %d, %v", replaced, err)
	}
	expect(client.FeedbackUpdated, chosen.String())
	check("put by client id")

	if err := c.Feedback.Update(ctx, one, client.FeedbackUpdate{Value: -2, Metadata: &client.Metadata{"_user": "u2"}}); err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackUpdated, one.String())
	if status, body := inst.do(t, "POST", "/v1/feedback/"+one.String(), key, `{"value":7,"weight":0.5}`); status != http.StatusOK {
		t.Fatalf("update by POST: %d %s", status, body)
	}
	expect(client.FeedbackUpdated, one.String())
	check("update")

	before := inst.getRaw(t, bulk[0].String())
	if err := c.Feedback.Delete(ctx, bulk[0]); err != nil {
		t.Fatal(err)
	}
	want = append(want, expected{client.FeedbackDeleted, bulk[0].String(), before})
	check("delete")

	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "voted", Metadata: &map[string]interface{}{"_user": "u3"}})
	if err != nil {
		t.Fatal(err)
	}
	voted, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackCreated, voted.String())
	if _, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: -1}); err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackUpdated, voted.String())
	check("token votes")

	erased := map[string]map[string]any{chosen.String(): inst.getRaw(t, chosen.String())}
	if res, err := c.Feedback.Erase(ctx, client.EraseRequest{TraceID: client.Ptr("put")}); err != nil || res.Erased != 1 {
		t.Fatalf("erase: %+v, %v", res, err)
	}
	want = append(want, expected{client.FeedbackDeleted, chosen.String(), erased[chosen.String()]})
	check("erase")

	// Import records events as any write does, unless --no-webhooks.
	imported, skipped := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	line := func(id uuid.UUID, trace string) string {
		return fmt.Sprintf(`{"id":"%s","workspace":"default","trace_id":"%s","value":6,"weight":1,"metadata":{"src":"import"},"created_at":"2026-11-26T17:00:00.123456Z","updated_at":"2026-11-26T17:00:00.123456Z"}`+"\n", id, trace)
	}
	if out, err := importFile(t, inst.db, "a.ndjson", line(imported, "imported")); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	expect(client.FeedbackCreated, imported.String())
	check("import")
	if out, err := importFile(t, inst.db, "b.ndjson", line(skipped, "imported quietly"), "--no-webhooks"); err != nil {
		t.Fatalf("import --no-webhooks: %v\n%s", err, out)
	}
	inst.getRaw(t, skipped.String()) // it was imported
	// A write after it: its event comes next, with none for the quiet
	// import before it.
	last, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "after", Value: 0})
	if err != nil {
		t.Fatal(err)
	}
	expect(client.FeedbackCreated, last.String())
	check("import --no-webhooks")

	// Every event has an id of its own.
	ids := map[string]bool{}
	for _, d := range r.deliveries() {
		if ids[d.id] {
			t.Errorf("webhook-id %s delivered twice without a failure", d.id)
		}
		ids[d.id] = true
	}
}

// A filter keeps the events whose feedback it matches; another webhook
// of the workspace still gets everything.
func testWebhookFilter(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	filtered, all := newReceiver(t), newReceiver(t)
	subscribe(t, c, filtered, client.WebhookRequest{
		Events: []client.WebhookEventType{client.FeedbackCreated},
		Filter: &client.WebhookFilter{Metadata: &map[string]interface{}{"_environment": "production", "version": 2}, ValueMax: client.Ptr(-5)},
	})
	subscribe(t, c, all, client.WebhookRequest{})
	items := []client.FeedbackRequest{
		{TraceID: "t1", Value: -7, Metadata: &client.Metadata{"_environment": "production", "version": 2.0, "other": true}}, // matches
		{TraceID: "t2", Value: -4, Metadata: &client.Metadata{"_environment": "production", "version": 2}},                  // value too high
		{TraceID: "t3", Value: -9, Metadata: &client.Metadata{"_environment": "staging", "version": 2}},                     // other environment
		{TraceID: "t4", Value: -9, Metadata: &client.Metadata{"_environment": "production", "version": "2"}},                // "2" is not 2
		{TraceID: "t5", Value: -9, Metadata: &client.Metadata{"_environment": "production"}},                                // no version
		{TraceID: "t6", Value: -10, Metadata: &client.Metadata{"_environment": "production", "version": 2}},                 // matches
	}
	ids, err := c.Feedback.BulkCreate(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	// An update of a matching feedback: not a kind the filtered one asked for.
	if err := c.Feedback.Update(ctx, ids[0], client.FeedbackUpdate{Value: -8}); err != nil {
		t.Fatal(err)
	}
	last, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "t7", Value: -6, Metadata: &client.Metadata{"_environment": "production", "version": 2}})
	if err != nil {
		t.Fatal(err)
	}
	all.waitFor(t, len(items)+2)
	// In order, so once the last matching event arrived every earlier one
	// had.
	waitFor(t, "the last matching event", func() bool {
		ds := filtered.deliveries()
		return len(ds) > 0 && ds[len(ds)-1].event.Data.ID == last
	})
	got := summary(filtered.deliveries())
	want := []string{"feedback.created " + ids[0].String(), "feedback.created " + ids[5].String(), "feedback.created " + last.String()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filtered deliveries:\ngot  %v\nwant %v", got, want)
	}
}

// A paused webhook's events wait while another webhook's are delivered,
// and arrive in order once it is resumed.
func testWebhookPauseHoldsAndResumeDelivers(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	paused, witness := newReceiver(t), newReceiver(t)
	w := subscribe(t, c, paused, client.WebhookRequest{})
	if _, err := c.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{Paused: client.Ptr(true)}); err != nil {
		t.Fatal(err)
	}
	subscribe(t, c, witness, client.WebhookRequest{})
	var ids []string
	for i := range 5 {
		id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: fmt.Sprint("p", i), Value: i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, "feedback.created "+id.String())
	}
	witness.waitFor(t, len(ids))
	if got := paused.deliveries(); len(got) != 0 {
		t.Errorf("paused webhook got %v while the witness got its events", summary(got))
	}
	if page, err := c.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{}); err != nil || len(page.Data) != 0 {
		t.Errorf("paused webhook's deliveries: got %+v, %v, want none", page, err)
	}
	if _, err := c.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{Paused: client.Ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if got := summary(paused.waitFor(t, len(ids))); !reflect.DeepEqual(got, ids) {
		t.Errorf("after resume:\ngot  %v\nwant %v", got, ids)
	}
}

// The deliveries listing shows each attempt, newest first, in pages; a
// redelivery sends the same event again, with the same webhook-id and
// body, signed anew; after a rotation both secrets sign.
func testWebhookDeliveriesRedeliverAndRotation(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	r := newReceiver(t)
	w := subscribe(t, c, r, client.WebhookRequest{})
	first, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "d1", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "d2", Value: 2})
	if err != nil {
		t.Fatal(err)
	}
	ds := r.waitFor(t, 2)
	var page *client.WebhookDeliveryList
	waitFor(t, "two attempts listed", func() bool {
		page, err = c.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{})
		return err == nil && len(page.Data) == 2
	})
	for i, d := range page.Data {
		want := ds[1-i] // newest first
		if d.EventID.String() != want.id || d.Type != client.FeedbackCreated || d.Attempt != 1 || d.Outcome != client.Delivered ||
			d.StatusCode == nil || *d.StatusCode != http.StatusNoContent || d.Error != nil || d.NextAttemptAt != nil || d.LatencyMs < 0 {
			t.Errorf("attempt %d: got %+v, want event %s delivered with 204 on the first attempt", i, d, want.id)
		}
	}
	if page.HasMore || page.NextCursor != nil {
		t.Errorf("one page: got has_more %v, next_cursor %v", page.HasMore, page.NextCursor)
	}
	p1, err := c.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{Limit: client.Ptr(1)})
	if err != nil || len(p1.Data) != 1 || !p1.HasMore || p1.NextCursor == nil {
		t.Fatalf("page 1 of 1: got %+v, %v", p1, err)
	}
	p2, err := c.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{Limit: client.Ptr(1), Cursor: p1.NextCursor})
	if err != nil || len(p2.Data) != 1 || p2.HasMore || p2.Data[0].EventID.String() != ds[0].id || p1.Data[0].EventID.String() != ds[1].id {
		t.Errorf("pages of 1: got %+v then %+v, %v", p1, p2, err)
	}

	rot, err := c.Webhooks.RotateSecret(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.verifyWith(w.Secret, rot.Secret)
	if err := c.Webhooks.Redeliver(ctx, w.ID, uuid.MustParse(ds[0].id)); err != nil {
		t.Fatal(err)
	}
	again := r.waitFor(t, 3)[2]
	if again.id != ds[0].id || !bytes.Equal(again.body, ds[0].body) || again.event.Data.ID != first {
		t.Errorf("redelivery: got %s %s, want %s %s", again.id, again.body, ds[0].id, ds[0].body)
	}
	if len(again.sigs) != 2 {
		t.Errorf("signatures during the grace period: got %v, want two", again.sigs)
	}
	_ = second
	waitFor(t, "the redelivery listed", func() bool {
		page, err = c.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{})
		return err == nil && len(page.Data) == 3
	})
	if d := page.Data[0]; d.EventID.String() != ds[0].id || d.Outcome != client.Delivered {
		t.Errorf("newest attempt: got %+v, want the redelivery of %s", d, ds[0].id)
	}
}

// feedbackd webhooks create, list and delete work on the database, and
// a webhook created so is delivered to by the server.
func testWebhooksCLI(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	r := newReceiver(t)
	if _, err := runCLI(t, nil, "webhooks", "create", "--db", inst.db, "--url", r.url(), "--events", "feedback.created"); err == nil {
		t.Error("create to loopback without --webhooks-allow-loopback: no error")
	}
	if _, err := runCLI(t, nil, "webhooks", "create", "--db", inst.db, "--url", "https://hooks.example.com/h", "--events", "feedback.voted"); err == nil {
		t.Error("create with an unknown event type: no error")
	}
	out, err := runCLI(t, nil, "webhooks", "create", "--db", inst.db, "--url", r.url(), "--events", "feedback.created",
		"--filter-metadata", `{"_environment":"production"}`, "--description", "from the CLI", "--webhooks-allow-loopback")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || uuid.Validate(lines[0]) != nil || !strings.HasPrefix(lines[1], "whsec_") {
		t.Fatalf("create printed %q, want the id and the secret", out)
	}
	id, secret := lines[0], lines[1]
	r.verifyWith(secret)
	got, err := c.Webhooks.Get(ctx, uuid.MustParse(id))
	if err != nil || got.Description == nil || *got.Description != "from the CLI" || got.Filter.Metadata == nil {
		t.Errorf("the API's view: got %+v, %v", got, err)
	}
	if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "cli", Value: 1, Metadata: &client.Metadata{"_environment": "staging"}}); err != nil {
		t.Fatal(err)
	}
	want, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "cli", Value: 1, Metadata: &client.Metadata{"_environment": "production"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.waitFor(t, 1); d[0].event.Data.ID != want {
		t.Errorf("delivered %v, want %s alone", summary(d), want)
	}

	if _, err := runCLI(t, nil, "keys", "create", "--db", inst.db, "--workspace", "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, nil, "webhooks", "create", "--db", inst.db, "--workspace", "other", "--url", "https://hooks.example.com/other"); err != nil {
		t.Fatal(err)
	}
	list, err := runCLI(t, nil, "webhooks", "list", "--db", inst.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id, r.url(), "feedback.created", "from the CLI", "https://hooks.example.com/other", "other", "active"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, secret) || strings.Contains(list, "whsec_") {
		t.Errorf("list shows a secret:\n%s", list)
	}
	mine, err := runCLI(t, nil, "webhooks", "list", "--db", inst.db, "--workspace", "default")
	if err != nil || !strings.Contains(mine, id) || strings.Contains(mine, "hooks.example.com/other") {
		t.Errorf("list --workspace default: got %v\n%s", err, mine)
	}
	if out, err := runCLI(t, nil, "webhooks", "delete", "--db", inst.db, id); err != nil || !strings.Contains(out, id) {
		t.Fatalf("delete: %v %s", err, out)
	}
	if _, err := runCLI(t, nil, "webhooks", "delete", "--db", inst.db, id); err == nil {
		t.Error("second delete: no error")
	}
	if _, err := c.Webhooks.Get(ctx, uuid.MustParse(id)); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get after the CLI's delete: got %v, want ErrNotFound", err)
	}
}

// With --webhook-key (here from the environment) the secrets are sealed
// with the operator's key: the server and the CLI given the same key
// share webhooks, and a key that is not 32 bytes of base64 stops serve
// from starting.
func testWebhookKeyOutsideTheDatabase(t *testing.T, b backend) {
	ctx := context.Background()
	if _, err := runCLI(t, map[string]string{"FEEDBACKD_WEBHOOK_KEY": "c2hvcnQ="}, "serve", "--addr", "127.0.0.1:0", "--db", b.newDB(t)); err == nil || !strings.Contains(err.Error(), "--webhook-key") {
		t.Errorf("serve with a 5-byte key: got %v, want an error naming --webhook-key", err)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	db := b.newDB(t)
	inst := start(t, b, db, map[string]string{"FEEDBACKD_WEBHOOK_KEY": key, "FEEDBACKD_WEBHOOKS_ALLOW_LOOPBACK": "true"})
	c := inst.client(t, inst.key)
	r := newReceiver(t)
	out, err := runCLI(t, map[string]string{"FEEDBACKD_WEBHOOK_KEY": key, "FEEDBACKD_WEBHOOKS_ALLOW_LOOPBACK": "true"},
		"webhooks", "create", "--db", db, "--url", r.url())
	if err != nil {
		t.Fatal(err)
	}
	r.verifyWith(strings.Fields(out)[1])
	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "operator key", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.waitFor(t, 1); d[0].event.Data.ID != id {
		t.Errorf("delivered %v, want %s", summary(d), id)
	}
}

// A receiver that answers 410 Gone disables its webhook, which the API
// shows with the reason and the attempt; PATCH paused: false makes it
// active again for the writes after that, and only those: not the writes
// made while it was disabled, which another webhook of the workspace got.
func testWebhookGoneDisablesAndResumeEnables(t *testing.T, b backend) {
	ctx := context.Background()
	inst := start(t, b, "", allowLoopback)
	c := inst.client(t, inst.key)
	r := newReceiver(t)
	r.mu.Lock()
	r.status = http.StatusGone
	r.mu.Unlock()
	w := subscribe(t, c, r, client.WebhookRequest{})
	witness := newReceiver(t)
	subscribe(t, c, witness, client.WebhookRequest{})
	gone, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "g1", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got *client.Webhook
	waitFor(t, "the webhook disabled", func() bool {
		got, err = c.Webhooks.Get(ctx, w.ID)
		return err == nil && got.Status == client.WebhookStatusDisabled
	})
	if got.StatusReason == nil || *got.StatusReason == "" {
		t.Errorf("disabled without a status_reason: %+v", got)
	}
	page, err := c.Webhooks.Deliveries(ctx, w.ID, client.ListWebhookDeliveriesParams{})
	if err != nil || len(page.Data) != 1 || page.Data[0].Outcome != client.Gone || page.Data[0].StatusCode == nil || *page.Data[0].StatusCode != http.StatusGone {
		t.Fatalf("deliveries: got %+v, %v, want one attempt, gone with 410", page, err)
	}
	if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "while disabled", Value: 3}); err != nil {
		t.Fatal(err)
	}
	witness.waitFor(t, 2)
	r.mu.Lock()
	r.status = http.StatusOK
	r.mu.Unlock()
	up, err := c.Webhooks.Update(ctx, w.ID, client.WebhookUpdate{Paused: client.Ptr(false)})
	if err != nil || up.Status != client.WebhookStatusActive || up.StatusReason != nil {
		t.Fatalf("resume: got %+v, %v, want active without a reason", up, err)
	}
	after, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "g2", Value: 2})
	if err != nil {
		t.Fatal(err)
	}
	ds := r.waitFor(t, 2)
	if got, want := summary(ds), []string{"feedback.created " + gone.String(), "feedback.created " + after.String()}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries: got %v, want %v", got, want)
	}
}

// webhookTests lists the webhook suite, run against every backend.
var webhookTests = []struct {
	name string
	fn   func(t *testing.T, b backend)
}{
	{"CreateGetUpdateDelete", testWebhooksCreateGetUpdateDelete},
	{"OfAnotherWorkspaceAreInvisible", testWebhooksOfAnotherWorkspaceAreInvisible},
	{"URLsAndBodiesThatMustFail", testWebhookURLsAndBodiesThatMustFail},
	{"EventsForEveryWritePath", testWebhookEventsForEveryWritePath},
	{"Filter", testWebhookFilter},
	{"PauseHoldsAndResumeDelivers", testWebhookPauseHoldsAndResumeDelivers},
	{"DeliveriesRedeliverAndRotation", testWebhookDeliveriesRedeliverAndRotation},
	{"CLI", testWebhooksCLI},
	{"KeyOutsideTheDatabase", testWebhookKeyOutsideTheDatabase},
	{"GoneDisablesAndResumeEnables", testWebhookGoneDisablesAndResumeEnables},
}

// TestWebhooks runs the whole program, through run, against each backend,
// with real receivers on loopback.
func TestWebhooks(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range webhookTests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
			}
		})
	}
}

// Events are written with the writes that cause them: a server killed
// (SIGKILL) while its receiver is slow, after its writes were
// acknowledged, delivers every acknowledged write's event once it runs
// again; an event delivered twice carries the same webhook-id.
func TestWebhookEventsSurviveSIGKILL(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.newDB(t)
			env := map[string]string{
				"FEEDBACKD_BOOTSTRAP_KEY":           "fbk_webhooks_sigkill_" + strings.Repeat("k", 20),
				"FEEDBACKD_WEBHOOKS_ALLOW_LOOPBACK": "true",
				// A delivery cut off by the kill is retried once its
				// lease (the timeout and a margin) runs out.
				"FEEDBACKD_WEBHOOK_TIMEOUT": "3s",
			}
			p := startProcess(t, db, env)
			c := p.client(t, p.key)
			r := newReceiver(t)
			release := r.hold()
			defer release()
			subscribe(t, c, r, client.WebhookRequest{Events: []client.WebhookEventType{client.FeedbackCreated}})

			var acked []string
			for i := range 20 {
				if i%5 == 4 {
					items := make([]client.FeedbackRequest, 10)
					for j := range items {
						items[j] = client.FeedbackRequest{TraceID: fmt.Sprintf("k%d-%d", i, j), Value: j}
					}
					ids, err := c.Feedback.BulkCreate(ctx, items)
					if err != nil {
						t.Fatal(err)
					}
					for _, id := range ids {
						acked = append(acked, id.String())
					}
					continue
				}
				id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: fmt.Sprint("k", i), Value: i % 10})
				if err != nil {
					t.Fatal(err)
				}
				acked = append(acked, id.String())
			}
			// The first delivery is at the receiver, which holds it.
			select {
			case <-r.arrived:
			case <-time.After(hangGuard):
				t.Fatal("no delivery reached the receiver")
			}
			p.signal(t, syscall.SIGKILL)
			release()

			startProcess(t, db, env)
			// A receiver drops the duplicates at-least-once delivery
			// brings by their webhook-id; what is left is every
			// acknowledged write's event, in order.
			var unique []delivery
			waitFor(t, "every acknowledged write's event", func() bool {
				unique = unique[:0]
				seen := map[string]bool{}
				for _, d := range r.deliveries() {
					if !seen[d.id] {
						seen[d.id] = true
						unique = append(unique, d)
					}
				}
				return len(unique) >= len(acked)
			})
			if got := summary(unique); !reflect.DeepEqual(got, prefixed("feedback.created ", acked)) {
				t.Errorf("after the restart, got:\n%v\nwant every acknowledged write's event in order:\n%v", got, acked)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			// Every arrival, the one the kill cut off included: one
			// webhook-id per feedback, one feedback per webhook-id.
			idsOf, feedbackOf := map[string]map[string]bool{}, map[string]map[string]bool{}
			for _, a := range r.arrivals {
				if idsOf[a[1]] == nil {
					idsOf[a[1]] = map[string]bool{}
				}
				idsOf[a[1]][a[0]] = true
				if feedbackOf[a[0]] == nil {
					feedbackOf[a[0]] = map[string]bool{}
				}
				feedbackOf[a[0]][a[1]] = true
			}
			for f, ids := range idsOf {
				if len(ids) != 1 {
					t.Errorf("feedback %s's creation arrived with webhook-ids %v, want one", f, ids)
				}
			}
			for id, fs := range feedbackOf {
				if len(fs) != 1 {
					t.Errorf("webhook-id %s arrived for feedback %v, want one", id, fs)
				}
			}
			if len(r.arrivals) <= len(acked) {
				t.Logf("no delivery was repeated (%d arrivals)", len(r.arrivals))
			}
		})
	}
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}
