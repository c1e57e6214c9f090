package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// Each operation documents exactly the statuses the server can answer it
// with, no more and no fewer. Which ones those are follows from how the
// server wires the operation, which routeTable reads from the spec:
//   - any operation: 500 (a failing store, a recovered panic);
//   - operations behind authentication (all but the probes): 401 (no
//     valid key or token), 429 (rate limit), 400 (parameters and bodies
//     are validated) and 503 (the database unreachable: store.EUNAVAILABLE;
//     authentication itself reads keys from the store);
//   - operations that write to the store: 507 (its disk full: store.EFULL);
//   - with a request body: 413 (over the body limit) and 415 (not JSON);
//   - with an Idempotency-Key header: 409 (a repeat still running) and
//     422 (the key reused with another body); an erase's 409 is its guard
//     too;
//   - and what handlers answer themselves: 404 for an unknown feedback or
//     webhook id, 503 from the readiness probe;
//   - success is 200, but 201 for a created webhook, 202 for a queued
//     redelivery and 204 for a deleted webhook.
func TestEveryOperationDocumentsExactlyItsStatuses(t *testing.T) {
	_, spec, err := contract(nil)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := routeTable(spec)
	if err != nil {
		t.Fatal(err)
	}
	fromHandler := map[string][]int{
		"getFeedback":           {http.StatusNotFound},
		"updateFeedback":        {http.StatusNotFound},
		"updateFeedbackByPost":  {http.StatusNotFound},
		"deleteFeedback":        {http.StatusNotFound},
		"getReadiness":          {http.StatusServiceUnavailable},
		"getWebhook":            {http.StatusNotFound},
		"updateWebhook":         {http.StatusNotFound},
		"deleteWebhook":         {http.StatusNotFound},
		"rotateWebhookSecret":   {http.StatusNotFound},
		"listWebhookDeliveries": {http.StatusNotFound},
		"redeliverWebhookEvent": {http.StatusNotFound},
	}
	writes := map[string]bool{"createFeedback": true, "submitFeedbackWithToken": true,
		"updateFeedback": true, "updateFeedbackByPost": true, "deleteFeedback": true, "eraseFeedback": true,
		"createWebhook": true, "updateWebhook": true, "deleteWebhook": true, "rotateWebhookSecret": true, "redeliverWebhookEvent": true}
	success := map[string]int{"createWebhook": http.StatusCreated, "redeliverWebhookEvent": http.StatusAccepted, "deleteWebhook": http.StatusNoContent}
	for path, item := range spec.Paths.Map() {
		p := echoPath(path)
		for method, op := range item.Operations() {
			ok := http.StatusOK
			if s, set := success[op.OperationID]; set {
				ok = s
			}
			want := []int{ok, http.StatusInternalServerError}
			if !routes.probe[p] {
				want = append(want, http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable)
			}
			if writes[op.OperationID] {
				want = append(want, http.StatusInsufficientStorage)
			}
			if op.RequestBody != nil {
				want = append(want, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			}
			if routes.keyable[method+" "+p] {
				want = append(want, http.StatusConflict, http.StatusUnprocessableEntity)
			}
			want = append(want, fromHandler[op.OperationID]...)
			slices.Sort(want)
			if got := documented(t, op); !slices.Equal(got, want) {
				t.Errorf("%s %s (%s) documents %v, the server answers %v", method, path, op.OperationID, got, want)
			}
		}
	}
}

func documented(t *testing.T, op *openapi3.Operation) []int {
	var out []int
	for status := range op.Responses.Map() {
		n, err := strconv.Atoi(status)
		if err != nil || strings.ContainsAny(status, "Xx") {
			t.Errorf("%s: response %q is not one status", op.OperationID, status)
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// A path with servers of its own is refused: generated clients and mock
// servers ignore path-level servers and would call it under /v1, where it
// would not be.
func TestPathLevelServersAreRefused(t *testing.T) {
	_, spec, err := contract(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := routeTable(spec); err != nil {
		t.Fatalf("the embedded spec: %v", err)
	}
	spec.Paths.Value("/healthz").Servers = openapi3.Servers{{URL: "/"}}
	if _, err := routeTable(spec); err == nil {
		t.Error("a path with its own servers was accepted")
	}
}
