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
// The package is a module of its own (client/go.mod) whose go line is as
// old as its dependencies allow, so programs on older Go can import it; the
// range loop above needs Go 1.23, before it List's result is called with a
// yield function.
//
// Webhooks deliver each change of the workspace's feedback, signed, to a
// URL; the secret that verifies the signatures is shown once:
//
//	w, err := c.Webhooks.Create(ctx, client.WebhookRequest{URL: "https://hooks.example.com/fb",
//		Events: []client.WebhookEventType{client.FeedbackCreated}})
//	// keep w.Secret for the receiver (github.com/standard-webhooks/...)
//
// Feedback tokens let an end user's browser record feedback without a key:
//
//	tok, err := c.Tokens.Create(ctx, client.FeedbackTokenRequest{TraceID: "trace-1"})
//	id, err := client.SubmitWithToken(ctx, tok.URL, client.TokenFeedback{Value: 1})
//
// Every write carries an Idempotency-Key (WithIdempotencyKey sets one), and
// requests are retried after 429, 502, 503, 504 and failed connections
// with backoff, honouring Retry-After (WithMaxRetries): a retry never
// records feedback twice.
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
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"
)

// UUID is the type of feedback ids.
type UUID = openapi_types.UUID

// Client talks to one feedbackd (or Portkey) API.
type Client struct {
	// Feedback records, reads, updates and deletes feedback.
	Feedback *FeedbackService
	// Tokens creates browser-safe feedback tokens.
	Tokens *TokenService
	// Analytics reads Portkey's feedback graphs and metadata groups.
	Analytics *AnalyticsService
	// Webhooks subscribes URLs to the workspace's feedback events.
	Webhooks *WebhookService
}

// Option configures New and SubmitWithToken.
type Option func(*config)

type config struct {
	apiKey     string
	doer       HttpRequestDoer
	maxRetries int
}

// DefaultMaxRetries is how often a request is retried.
const DefaultMaxRetries = 3

// WithMaxRetries sets how often a request is sent again after an answer
// that may change (429, 502, 503, 504) or a failed connection; 0 turns
// retries off. Writes carry an Idempotency-Key that every retry reuses, so
// a retry never records feedback twice.
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = n } }

// WithAPIKey sets the API key. Without it, New uses the PORTKEY_API_KEY
// environment variable.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithDoer sets the HTTP client requests go through (http.DefaultClient
// otherwise): for timeouts, proxies, or response checks in tests.
func WithDoer(d HttpRequestDoer) Option { return func(c *config) { c.doer = d } }

// New returns a client for the API at baseURL, the URL the paths of the
// spec hang under, such as "http://127.0.0.1:8787/v1".
func New(baseURL string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	if cfg.apiKey == "" {
		cfg.apiKey = os.Getenv("PORTKEY_API_KEY")
	}
	raw, err := cfg.raw(baseURL)
	if err != nil {
		return nil, err
	}
	return &Client{
		Feedback: &FeedbackService{raw: raw}, Tokens: &TokenService{raw: raw}, Analytics: &AnalyticsService{raw: raw},
		Webhooks: &WebhookService{raw: raw},
	}, nil
}

func newConfig(opts []Option) config {
	cfg := config{doer: http.DefaultClient, maxRetries: DefaultMaxRetries}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// raw returns the generated client for baseURL, sending cfg's key and
// retrying as cfg says.
func (cfg config) raw(baseURL string) (*ClientWithResponses, error) {
	key := cfg.apiKey
	return NewClientWithResponses(strings.TrimSuffix(baseURL, "/"),
		WithHTTPClient(retryingDoer{next: cfg.doer, maxRetries: cfg.maxRetries}),
		WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if key != "" {
				req.Header.Set("x-portkey-api-key", key)
			}
			return nil
		}))
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
	ids, _, err := s.create(ctx, in)
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
	ids, _, err := s.bulk(ctx, fs)
	return ids, err
}

// Put records 1 to 1000 feedback atomically, as BulkCreate, where an item
// with an ID is created or replaces the stored feedback with that id (a
// thumbs toggle, a re-sent batch); it returns the ids in input order and
// how many items replaced a stored feedback. An ID another workspace
// holds is an *Error with status 409.
func (s *FeedbackService) Put(ctx context.Context, fs []FeedbackRequest) ([]UUID, int, error) {
	return s.bulk(ctx, fs)
}

func (s *FeedbackService) bulk(ctx context.Context, fs []FeedbackRequest) ([]UUID, int, error) {
	var in FeedbackInput
	if err := in.FromFeedbackRequestList(fs); err != nil {
		return nil, 0, err
	}
	ids, replaced, err := s.create(ctx, in)
	if err == nil && len(ids) != len(fs) {
		err = fmt.Errorf("feedbackd: create answered %d ids for %d items", len(ids), len(fs))
	}
	return ids, replaced, err
}

func (s *FeedbackService) create(ctx context.Context, in FeedbackInput) ([]UUID, int, error) {
	resp, err := s.raw.CreateFeedbackWithResponse(ctx, &CreateFeedbackParams{IdempotencyKey: idempotencyKeyFor(ctx)}, in)
	if err != nil {
		return nil, 0, err
	}
	if resp.JSON200 == nil {
		return nil, 0, apiError(resp.HTTPResponse, resp.Body)
	}
	replaced := 0
	if resp.JSON200.Replaced != nil {
		replaced = *resp.JSON200.Replaced
	}
	return resp.JSON200.FeedbackIds, replaced, nil
}

// Update changes a stored feedback: Value always, Weight and Metadata when
// not nil.
func (s *FeedbackService) Update(ctx context.Context, id UUID, u FeedbackUpdate) error {
	resp, err := s.raw.UpdateFeedbackWithResponse(ctx, id, &UpdateFeedbackParams{IdempotencyKey: idempotencyKeyFor(ctx)}, u)
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

// Erase deletes every feedback of the workspace that req's filters match,
// in one transaction, and returns how many (for a DryRun, how many it
// would). A match over the server's limit is refused with an *APIError
// of status 409 whose Count says how many: send that as ConfirmCount.
func (s *FeedbackService) Erase(ctx context.Context, req EraseRequest) (*EraseResponse, error) {
	resp, err := s.raw.EraseFeedbackWithResponse(ctx, &EraseFeedbackParams{IdempotencyKey: idempotencyKeyFor(ctx)}, req)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// List returns every feedback matching params, newest first, fetching page
// after page as the loop goes on. params.Cursor is where it starts. The
// loop ends at the first error, which it yields.
//
// The result is an iter.Seq2[Feedback, error] (assignable to one, and
// ranged over with for f, err := range on Go 1.23 or later), spelled as a
// plain func type so that the package builds on the older Go its go.mod
// declares, where a caller passes the yield function itself.
func (s *FeedbackService) List(ctx context.Context, params ListFeedbackParams) func(yield func(Feedback, error) bool) {
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

// AnalyticsService reads aggregates of the workspace's feedback over a time
// range, with Portkey's paths and parameters. Buckets and timestamps follow
// the time zone of TimeOfGenerationMin.
type AnalyticsService struct {
	raw *ClientWithResponses
}

// FeedbackGraph counts feedback per time bucket.
func (s *AnalyticsService) FeedbackGraph(ctx context.Context, params GetFeedbackGraphParams) (*FeedbackGraph, error) {
	resp, err := s.raw.GetFeedbackGraphWithResponse(ctx, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// ScoreGraph counts feedback per score (-10 to 10).
func (s *AnalyticsService) ScoreGraph(ctx context.Context, params GetFeedbackScoreGraphParams) (*FeedbackScoreGraph, error) {
	resp, err := s.raw.GetFeedbackScoreGraphWithResponse(ctx, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// WeightedGraph averages value x weight per time bucket.
func (s *AnalyticsService) WeightedGraph(ctx context.Context, params GetWeightedFeedbackGraphParams) (*WeightedFeedbackGraph, error) {
	resp, err := s.raw.GetWeightedFeedbackGraphWithResponse(ctx, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// AIModelGraph tallies feedback by the AI model its metadata names (the
// server's --model-keys), most feedback first.
func (s *AnalyticsService) AIModelGraph(ctx context.Context, params GetFeedbackAIModelGraphParams) (*AIModelGraph, error) {
	resp, err := s.raw.GetFeedbackAIModelGraphWithResponse(ctx, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// MetadataGroups groups feedback by the value of one metadata key, one page
// at a time (params.CurrentPage, from 0).
func (s *AnalyticsService) MetadataGroups(ctx context.Context, key string, params GetMetadataGroupsParams) (*MetadataGroups, error) {
	resp, err := s.raw.GetMetadataGroupsWithResponse(ctx, key, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// TokenService creates feedback tokens: links that let an end user's
// browser record feedback on one trace without an API key.
type TokenService struct {
	raw *ClientWithResponses
}

// Create returns a token for req.TraceID. Hand its URL to the browser,
// which records feedback with SubmitWithToken or a plain POST.
func (s *TokenService) Create(ctx context.Context, req FeedbackTokenRequest) (*FeedbackToken, error) {
	resp, err := s.raw.CreateFeedbackTokenWithResponse(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// WebhookService manages the workspace's webhooks: subscriptions that
// receive each event of its feedback (WebhookEvent bodies), signed as
// Standard Webhooks says.
type WebhookService struct {
	raw *ClientWithResponses
}

// Create subscribes req.URL to req.Events and returns the webhook with its
// signing secret, which is shown only this once.
func (s *WebhookService) Create(ctx context.Context, req WebhookRequest) (*WebhookCreated, error) {
	resp, err := s.raw.CreateWebhookWithResponse(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.JSON201 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON201, nil
}

// List returns the workspace's webhooks, oldest first, without secrets.
func (s *WebhookService) List(ctx context.Context) ([]Webhook, error) {
	resp, err := s.raw.ListWebhooksWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200.Data, nil
}

// Get returns one webhook; errors.Is(err, ErrNotFound) when the workspace
// has none with that id.
func (s *WebhookService) Get(ctx context.Context, id UUID) (*Webhook, error) {
	resp, err := s.raw.GetWebhookWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// Update changes the members of u that are set, pauses (Paused true) or
// resumes (Paused false), and returns the webhook as changed.
func (s *WebhookService) Update(ctx context.Context, id UUID, u WebhookUpdate) (*Webhook, error) {
	resp, err := s.raw.UpdateWebhookWithResponse(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// Delete removes a webhook; its waiting events are not delivered.
func (s *WebhookService) Delete(ctx context.Context, id UUID) error {
	resp, err := s.raw.DeleteWebhookWithResponse(ctx, id)
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusNoContent {
		return apiError(resp.HTTPResponse, resp.Body)
	}
	return nil
}

// RotateSecret gives a webhook a new signing secret, returned only here;
// the previous one keeps signing beside it until PreviousSecretExpiresAt.
func (s *WebhookService) RotateSecret(ctx context.Context, id UUID) (*WebhookSecret, error) {
	resp, err := s.raw.RotateWebhookSecretWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// Deliveries returns one page of a webhook's delivery attempts, newest
// first; pass NextCursor as params.Cursor for the next.
func (s *WebhookService) Deliveries(ctx context.Context, id UUID, params ListWebhookDeliveriesParams) (*WebhookDeliveryList, error) {
	resp, err := s.raw.ListWebhookDeliveriesWithResponse(ctx, id, &params)
	if err != nil {
		return nil, err
	}
	if resp.JSON200 == nil {
		return nil, apiError(resp.HTTPResponse, resp.Body)
	}
	return resp.JSON200, nil
}

// Redeliver queues an event the webhook had an attempt at once more, for
// it alone, with the same webhook-id.
func (s *WebhookService) Redeliver(ctx context.Context, id, eventID UUID) error {
	resp, err := s.raw.RedeliverWebhookEventWithResponse(ctx, id, eventID)
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusAccepted {
		return apiError(resp.HTTPResponse, resp.Body)
	}
	return nil
}

// SubmitWithToken records feedback through a token's URL (FeedbackToken.URL)
// and returns the id of the token's feedback; submitting again with the
// same token updates that feedback. It needs no API key: the token is the
// permission.
func SubmitWithToken(ctx context.Context, tokenURL string, f TokenFeedback, opts ...Option) (UUID, error) {
	base, tok, ok := cutTokenURL(tokenURL)
	if !ok {
		return UUID{}, fmt.Errorf("feedbackd: %q is not a feedback token URL", tokenURL)
	}
	cfg := newConfig(opts)
	cfg.apiKey = "" // never send a key along with a token
	raw, err := cfg.raw(base)
	if err != nil {
		return UUID{}, err
	}
	resp, err := raw.SubmitFeedbackWithTokenWithResponse(ctx, tok, &SubmitFeedbackWithTokenParams{IdempotencyKey: idempotencyKeyFor(ctx)}, f)
	if err != nil {
		return UUID{}, err
	}
	if resp.JSON200 == nil {
		return UUID{}, apiError(resp.HTTPResponse, resp.Body)
	}
	if len(resp.JSON200.FeedbackIds) != 1 {
		return UUID{}, fmt.Errorf("feedbackd: token submission answered %d ids, want 1", len(resp.JSON200.FeedbackIds))
	}
	return resp.JSON200.FeedbackIds[0], nil
}

// cutTokenURL splits ".../v1/feedback/tokens/TOKEN" into the API's base
// URL and the token.
func cutTokenURL(u string) (base, tok string, ok bool) {
	const marker = "/feedback/tokens/"
	i := strings.LastIndex(u, marker)
	if i < 0 {
		return "", "", false
	}
	base, tok = u[:i], u[i+len(marker):]
	return base, tok, base != "" && tok != "" && !strings.ContainsAny(tok, "/?#")
}

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns a context whose write (Create, BulkCreate,
// Update, SubmitWithToken) carries this Idempotency-Key instead of a new
// random one: a program that persists the key can repeat the write after
// its own restart and still record it once.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

// idempotencyKeyFor returns the key of ctx, or a new random one: every
// write carries a key, which all its retries reuse.
func idempotencyKeyFor(ctx context.Context) *string {
	if k, ok := ctx.Value(idempotencyKeyCtx{}).(string); ok && k != "" {
		return &k
	}
	k := uuid.NewString()
	return &k
}

// retryingDoer sends a request again when the answer says it may succeed
// later (429, 502, 503, 504) or the connection failed, at most maxRetries
// times, waiting as Retry-After says or else exponentially longer with
// jitter. A failed connection is retried only for a request that is safe to
// repeat: a method that is idempotent by nature, or one carrying an
// Idempotency-Key, so the server records it once however often it arrives.
type retryingDoer struct {
	next       HttpRequestDoer
	maxRetries int
}

const (
	// maxRetryWait caps a single wait.
	maxRetryWait = 30 * time.Second
	// backoffBase is the first wait without Retry-After; it doubles.
	backoffBase = 100 * time.Millisecond
)

// Do implements HttpRequestDoer.
func (d retryingDoer) Do(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := d.next.Do(req)
		if !d.retryable(req, resp, err) || attempt >= d.maxRetries || (req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		wait := backoff(attempt)
		if resp != nil {
			if h := resp.Header.Get("Retry-After"); h != "" {
				wait = retryAfter(h)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func (d retryingDoer) retryable(req *http.Request, resp *http.Response, err error) bool {
	if err != nil {
		if req.Context().Err() != nil {
			return false
		}
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
			return true
		}
		return req.Header.Get("Idempotency-Key") != ""
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the wait before retry attempt+1: exponential, capped, with
// full jitter so that many clients do not retry in step.
func backoff(attempt int) time.Duration {
	ceiling := min(backoffBase<<min(attempt, 16), maxRetryWait)
	return time.Duration(rand.Int63n(int64(ceiling))) + time.Millisecond
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; one
// second when it is unreadable.
func retryAfter(h string) time.Duration {
	wait := time.Second
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && secs >= 0 {
		wait = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		wait = time.Until(t)
	}
	return min(max(wait, 0), maxRetryWait)
}

// Sentinels for errors.Is on an *APIError.
var (
	ErrNotFound        = errors.New("feedbackd: not found")
	ErrUnauthorized    = errors.New("feedbackd: unauthorized")
	ErrTooManyRequests = errors.New("feedbackd: too many requests")
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
	// Count is, for an erase its guard refused (409), how many feedback
	// the filters match.
	Count *int64
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

// Is reports whether e is ErrNotFound (404), ErrUnauthorized (401) or
// ErrTooManyRequests (429).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrTooManyRequests:
		return e.StatusCode == http.StatusTooManyRequests
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
		Count   *int64       `json:"count"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&wire); err == nil && wire.Message != "" {
		e.Message, e.Fields, e.Count = wire.Message, wire.Errors, wire.Count
	}
	return e
}

// Ptr returns a pointer to v, for the optional fields of requests.
func Ptr[T any](v T) *T { return &v }
