package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// With -webhook, a second feedbackd, on a fresh store of the same
// backend, runs beside the first with a webhook subscribed to every
// event, whose receiver (in this process, on loopback) answers each
// delivery after -webhook-delay. Both get the same load in the same
// rounds, so the open loop's p99 with and without a subscribed receiver
// compare side by side: a slow receiver must not slow ingestion.

// hookedTarget names the feedbackd with a webhook in the tables.
const hookedTarget = "feedbackd+webhook"

// receiver is the webhook's receiver: it counts what it got.
type receiver struct {
	srv        *http.Server
	url        string
	deliveries atomic.Int64
}

// startReceiver listens on loopback and answers every POST 204 after
// delay (or when the server stops).
func startReceiver(delay time.Duration) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
		r.deliveries.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

// subscribe creates a webhook on feedbackd at base for every event,
// delivered to url.
func subscribe(ctx context.Context, base, url string) error {
	body, _ := json.Marshal(map[string]any{
		"url": url, "events": []string{"feedback.created", "feedback.updated", "feedback.deleted"},
	})
	status, answer, _, err := newAPIClient(base).do(ctx, request{method: http.MethodPost, path: "/v1/webhooks", body: body})
	if err != nil {
		return fmt.Errorf("create the webhook: %w", err)
	}
	if status != http.StatusCreated {
		return fmt.Errorf("create the webhook: %d %s", status, answer)
	}
	return nil
}

// startHooked starts the second feedbackd on db, with a webhook to a
// receiver that answers after delay.
func startHooked(ctx context.Context, cfg config, db string) (*process, *receiver, error) {
	rc, err := startReceiver(cfg.webhookDelay)
	if err != nil {
		return nil, nil, err
	}
	p, err := startFeedbackd(ctx, hookedTarget, cfg.feedbackd, db, "", "--webhooks-allow-loopback")
	if err != nil {
		rc.close()
		return nil, nil, err
	}
	if err := subscribe(ctx, p.url, rc.url); err != nil {
		rc.close()
		return nil, nil, errors.Join(err, p.stop())
	}
	return p, rc, nil
}
