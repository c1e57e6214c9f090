// Package client is the Go client of feedbackd.
//
// It has two layers. client.gen.go is generated from openapi.yaml by
// oapi-codegen (NewClientWithResponses and the wire types); this file wraps
// it in an idiomatic API:
//
//	c, err := client.New("http://127.0.0.1:8787/v1", client.WithAPIKey(key))
//	id, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: "trace-1", Value: 5})
//	for f, err := range c.Feedback.List(ctx, client.ListFeedbackParams{}) { ... }
//
// The package links neither Echo nor the server, so programs that import it
// stay small.
//
// The key is sent in Portkey's x-portkey-api-key header and requests use
// Portkey's paths, so Create, BulkCreate and Update also work against
// Portkey's hosted Feedback API (base URL https://api.portkey.ai/v1); Get,
// Delete and List are feedbackd's own.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"os"
	"strings"

	openapi_types "github.com/oapi-codegen/runtime/types"
)

// UUID is the type of feedback ids.
type UUID = openapi_types.UUID

// Client talks to one feedbackd (or Portkey) API.
type Client struct {
	// Feedback records, reads, updates and deletes feedback.
	Feedback *FeedbackService
}

// Option configures New.
type Option func(*config)

type config struct {
	apiKey string
	doer   HttpRequestDoer
}

// WithAPIKey sets the API key. Without it, New uses the PORTKEY_API_KEY
// environment variable.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithDoer sets the HTTP client requests go through (http.DefaultClient
// otherwise): for timeouts, proxies, or response checks in tests.
func WithDoer(d HttpRequestDoer) Option { return func(c *config) { c.doer = d } }

// New returns a client for the API at baseURL, the URL the paths of the
// spec hang under, such as "http://127.0.0.1:8787/v1".
func New(baseURL string, opts ...Option) (*Client, error) {
	cfg := config{doer: http.DefaultClient}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.apiKey == "" {
		cfg.apiKey = os.Getenv("PORTKEY_API_KEY")
	}
	key := cfg.apiKey
	raw, err := NewClientWithResponses(strings.TrimSuffix(baseURL, "/"),
		WithHTTPClient(cfg.doer),
		WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if key != "" {
				req.Header.Set("x-portkey-api-key", key)
			}
			return nil
		}))
	if err != nil {
		return nil, err
	}
	return &Client{Feedback: &FeedbackService{raw: raw}}, nil
}

// FeedbackService is the feedback part of the API.
type FeedbackService struct {
	raw *ClientWithResponses
}

// Create records one feedback and returns its id.
func (s *FeedbackService) Create(ctx context.Context, f FeedbackRequest) (UUID, error) {
	var in FeedbackInput
	if err := in.FromFeedbackRequest(f); err != nil {
		return UUID{}, err
	}
	ids, err := s.create(ctx, in)
	if err != nil {
		return UUID{}, err
	}
	if len(ids) != 1 {
		return UUID{}, fmt.Errorf("feedbackd: create answered %d ids, want 1", len(ids))
	}
	return ids[0], nil
}

// BulkCreate records 1 to 1000 feedback atomically and returns their ids
// in input order. When any item is invalid nothing is stored.
func (s *FeedbackService) BulkCreate(ctx context.Context, fs []FeedbackRequest) ([]UUID, error) {
	var in FeedbackInput
	if err := in.FromFeedbackRequestList(fs); err != nil {
		return nil, err
	}
	ids, err := s.create(ctx, in)
	if err == nil && len(ids) != len(fs) {
		err = fmt.Errorf("feedbackd: create answered %d ids for %d items", len(ids), len(fs))
	}
	return ids, err
}

func (s *FeedbackService) create(ctx context.Context, in FeedbackInput) ([]UUID, error) {
	resp, err := s.raw.CreateFeedbackWithResponse(ctx, in)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200.FeedbackIds, nil
}

// Update changes a stored feedback: Value always, Weight and Metadata when
// not nil.
func (s *FeedbackService) Update(ctx context.Context, id UUID, u FeedbackUpdate) error {
	resp, err := s.raw.UpdateFeedbackWithResponse(ctx, id, u)
	if err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return apiError(resp.HTTPResponse, resp.Body)
	}
	return nil
}

// Get returns one stored feedback; errors.Is(err, ErrNotFound) when there
// is none with that id.
func (s *FeedbackService) Get(ctx context.Context, id UUID) (*Feedback, error) {
	resp, err := s.raw.GetFeedbackWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// Delete removes a stored feedback.
func (s *FeedbackService) Delete(ctx context.Context, id UUID) error {
	resp, err := s.raw.DeleteFeedbackWithResponse(ctx, id)
	if err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return apiError(resp.HTTPResponse, resp.Body)
	}
	return nil
}

// List returns every feedback matching params, newest first, fetching page
// after page as the loop goes on. params.Cursor is where it starts. The
// loop ends at the first error, which it yields.
func (s *FeedbackService) List(ctx context.Context, params ListFeedbackParams) iter.Seq2[Feedback, error] {
	return func(yield func(Feedback, error) bool) {
		for {
			page, err := s.ListPage(ctx, params)
			if err != nil {
				yield(Feedback{}, err)
				return
			}
			for _, f := range page.Data {
				if !yield(f, nil) {
					return
				}
			}
			if !page.HasMore || page.NextCursor == nil {
				return
			}
			params.Cursor = page.NextCursor
		}
	}
}

// ListPage returns one page of feedback.
func (s *FeedbackService) ListPage(ctx context.Context, params ListFeedbackParams) (*FeedbackList, error) {
	resp, err := s.raw.ListFeedbackWithResponse(ctx, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// Sentinels for errors.Is on an *APIError.
var (
	ErrNotFound     = errors.New("feedbackd: not found")
	ErrUnauthorized = errors.New("feedbackd: unauthorized")
)

// APIError is any answer of the API other than success, read from the
// spec's Error body.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message says what went wrong.
	Message string
	// Fields lists the invalid fields of a rejected request.
	Fields []FieldError
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "feedbackd: %d: %s", e.StatusCode, e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Path, f.Message)
	}
	return b.String()
}

// Is reports whether e is ErrNotFound (404) or ErrUnauthorized (401).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

// apiError reads the spec's Error body of a failed response; a body that is
// not one still gives an *APIError with the status.
func apiError(resp *http.Response, body []byte) error {
	e := &APIError{StatusCode: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	var wire struct {
		Message string       `json:"message"`
		Errors  []FieldError `json:"errors"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&wire); err == nil && wire.Message != "" {
		e.Message, e.Fields = wire.Message, wire.Errors
	}
	return e
}

// Ptr returns a pointer to v, for the optional fields of requests.
func Ptr[T any](v T) *T { return &v }
