// Package server implements feedbackd's HTTP API: the strict-server
// interface generated from openapi.yaml, wired into Echo with the request's
// way through the service:
//
//	request id + access log -> body limit -> CORS (token routes only)
//	-> auth (API key or feedback token -> workspace) -> rate limit
//	-> idempotency (writes with an Idempotency-Key)
//	-> kin-openapi validation against openapi.yaml (embedded), which
//	   decodes the body once; the strict handler binds that value
//	   (validatedBinder). POST /v1/feedback's items go straight to
//	   createItems.
//	-> strict handler -> store -> typed response
//
// Every error leaves through one place, the Echo HTTPErrorHandler, as the
// spec's Error body.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/apidocs"
	"github.com/feedbackd/feedbackd/server/dashboard"
	"github.com/feedbackd/feedbackd/server/metrics"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/token"
	"github.com/feedbackd/feedbackd/server/webhook"
)

// Config holds every dependency of the server.
type Config struct {
	// Store persists feedback and keys. Required.
	Store store.Store
	// Logger receives the access log and errors. Defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// BodyLimit is the largest request body in bytes. Defaults to 1 MiB.
	BodyLimit int64
	// BodyBudget bounds the bytes of request bodies handled at once;
	// requests beyond it wait for earlier ones to be answered (see
	// admitBodies). Defaults to 2 MiB; never less than BodyLimit.
	BodyBudget int64
	// CORSOrigins are the origins browsers may submit token feedback from;
	// empty means any origin (a token is itself the permission). API-key
	// routes never send permissive CORS headers.
	CORSOrigins []string
	// RateLimit is the average number of requests a second each API key and
	// each feedback token may make (bursts up to the same number); 0 turns
	// rate limiting off.
	RateLimit float64
	// PublicURL is the URL clients reach the server at, such as
	// https://feedback.example.com, used in the links of feedback tokens.
	// Empty means the scheme and host of each request.
	PublicURL string
	// Spec is the OpenAPI document to serve and enforce; empty means the
	// openapi.yaml built in (feedbackd.OpenAPI). An edited copy serves
	// contract-first users who change rules in the spec alone; the
	// generated types must still be the ones it was generated into.
	Spec []byte
	// Metrics, when set, records requests, store errors, stored feedback
	// and rate-limit refusals, and is served at GET /metrics (outside the
	// versioned API, without authentication). Nil turns both off.
	Metrics *metrics.Metrics
	// RequestTimeout, when set, is how long a request may work before it
	// is stopped and answered 503: a little under the HTTP server's write
	// timeout, after which no answer could reach the client anyway. It
	// also bounds how long a read holds its snapshot (on SQLite, the WAL
	// cannot start over meanwhile). Zero means no limit.
	RequestTimeout time.Duration
	// EraseMax is the most feedback an erase removes without a
	// confirm_count that states the count. Defaults to 100,000.
	EraseMax int
	// WebhookKeyring seals the webhooks' signing secrets. Nil means one
	// keyed with the store's secret "webhook-secret-key" (made on first
	// use); an operator who keeps the key outside the database
	// (--webhook-key) passes its own, so that a copy of the database
	// alone does not give the secrets away.
	WebhookKeyring *webhook.Keyring
	// WebhooksAllowLoopback lets webhooks have plain http URLs to a
	// loopback host (tests, local development); off, loopback is refused
	// like any internal address.
	WebhooksAllowLoopback bool
}

// Server implements gen.StrictServerInterface on a store.
type Server struct {
	store     store.Store
	logger    *slog.Logger
	now       func() time.Time
	sealer    *token.Sealer
	publicURL string
	// limits are the spec's metadata limits (limits.go).
	limits metadataLimits
	// apiBase is the path the versioned API lives under (/v1), from the spec.
	apiBase  string
	inflight inflight
	keys     keyCache
	// eraseMax is Config.EraseMax.
	eraseMax int
	// keyring and allowLoopback are Config.WebhookKeyring and
	// Config.WebhooksAllowLoopback.
	keyring       *webhook.Keyring
	allowLoopback bool
}

var _ gen.StrictServerInterface = (*Server)(nil)

// New returns an Echo instance serving the whole API. It reads (or, on a
// new store, creates) the key that seals feedback tokens.
func New(ctx context.Context, cfg Config) (*echo.Echo, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("server: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.BodyBudget <= 0 {
		cfg.BodyBudget = 2 << 20
	}
	cfg.BodyBudget = max(cfg.BodyBudget, cfg.BodyLimit)
	if cfg.EraseMax <= 0 {
		cfg.EraseMax = 100_000
	}
	cfg.Store = cfg.Metrics.Store(cfg.Store)
	rawSpec, spec, err := contract(cfg.Spec)
	if err != nil {
		return nil, err
	}
	limits, err := loadMetadataLimits(spec)
	if err != nil {
		return nil, err
	}
	sealKey, err := cfg.Store.Secret(ctx, "feedback-token-key", token.NewKey)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	sealer, err := token.NewSealer(sealKey)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	keyring := cfg.WebhookKeyring
	if keyring == nil {
		if keyring, err = StoreKeyring(ctx, cfg.Store); err != nil {
			return nil, err
		}
	}
	s := &Server{
		store: cfg.Store, logger: cfg.Logger, now: cfg.Now, sealer: sealer,
		publicURL: strings.TrimSuffix(cfg.PublicURL, "/"), limits: limits,
		inflight: inflight{keys: map[string]struct{}{}}, eraseMax: cfg.EraseMax,
		keyring: keyring, allowLoopback: cfg.WebhooksAllowLoopback,
	}
	go s.purgeIdempotency(ctx)
	routes, err := routeTable(spec)
	if err != nil {
		return nil, err
	}
	s.apiBase = routes.apiBase

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Binder = validatedBinder{}
	origins := cfg.CORSOrigins
	if len(origins) == 0 {
		origins = []string{"*"}
	}
	e.Use(
		requestID,
		accessLog(cfg.Logger, cfg.Metrics),
		middleware.Recover(),
		timeLimit(cfg.RequestTimeout),
		admitBodies(cfg.BodyBudget, cfg.BodyLimit, nil),
		readBody(cfg.BodyLimit),
		// Browsers may call the routes that need no API key (a feedback
		// token is the permission) from other origins; nothing else.
		middleware.CORSWithConfig(middleware.CORSConfig{
			Skipper:      func(c echo.Context) bool { return !routes.public[c.Path()] },
			AllowOrigins: origins,
			AllowMethods: []string{http.MethodPost, http.MethodOptions},
			AllowHeaders: []string{echo.HeaderContentType, "Idempotency-Key"},
			MaxAge:       600,
		}),
	)

	validate, err := requestValidator(spec, s.createItems)
	if err != nil {
		return nil, err
	}
	keyed := []echo.MiddlewareFunc{s.authenticate}
	tokened := []echo.MiddlewareFunc{s.authenticateToken}
	if cfg.RateLimit > 0 {
		l := newLimiter(cfg.RateLimit, cfg.Now)
		l.refused = cfg.Metrics.RateLimited
		keyed = append(keyed, l.rateLimit)
		tokened = append(tokened, l.rateLimit)
	}
	routes.keyed, routes.tokened = keyed, tokened
	routes.validate, routes.idempotent = validate, s.idempotent
	routes.e = e
	gen.RegisterHandlers(routes, gen.NewStrictHandler(s, nil))
	if err := apidocs.Register(e, rawSpec); err != nil {
		return nil, err
	}
	// The dashboard page at / reads the API above with a key the user types.
	if err := dashboard.Register(e); err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		// Prometheus scrapes a fixed path at the root; it is not part of
		// the API's contract, so it is registered here, not in the spec.
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics.Handler()))
	}
	return e, nil
}

// StoreKeyring returns the keyring keyed with the store's secret
// "webhook-secret-key", made on first use and shared by every replica:
// the default when the operator keeps no key of their own. The server
// and the dispatcher must seal and open with the same one.
func StoreKeyring(ctx context.Context, st store.Store) (*webhook.Keyring, error) {
	key, err := st.Secret(ctx, "webhook-secret-key", token.NewKey)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	k, err := webhook.NewKeyring(key)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return k, nil
}

// routes is the gen.EchoRouter that registers each generated route under
// the document's server URL (/v1), with the middleware its declaration
// asks for:
//   - the probes (paths marked x-feedbackd-probe): no authentication, rate
//     limit or validation, and a second route at the root (/healthz), the
//     path process supervisors and load balancers are configured with;
//   - operations that need a key: API-key authentication, rate limit,
//     validation;
//   - operations that need none (security: []): feedback-token
//     authentication, rate limit, validation, and CORS.
//
// The spec stays the only place that says where a route is and who may
// call it. Every path lives under the server URL: generated clients (and
// mock servers such as Prism) ignore path-level servers, so a path that
// declared its own would be unreachable to them.
type routes struct {
	e       *echo.Echo
	apiBase string
	// probe holds the Echo paths of the probes.
	probe map[string]bool
	// open holds "METHOD path" of the API's operations without security.
	open map[string]bool
	// public holds the full Echo paths that answer CORS.
	public map[string]bool
	// keyable holds "METHOD path" of the operations that take an
	// Idempotency-Key header.
	keyable map[string]bool
	// keyed and tokened authenticate (and rate-limit); idempotent and
	// validate follow them.
	keyed, tokened       []echo.MiddlewareFunc
	idempotent, validate echo.MiddlewareFunc
}

// probeExtension marks a path item as a probe.
const probeExtension = "x-feedbackd-probe"

func routeTable(spec *openapi3.T) (*routes, error) {
	r := &routes{probe: map[string]bool{}, open: map[string]bool{}, public: map[string]bool{}, keyable: map[string]bool{}}
	if len(spec.Servers) > 0 {
		r.apiBase = strings.TrimSuffix(spec.Servers[0].URL, "/")
	}
	for path, item := range spec.Paths.Map() {
		if len(item.Servers) > 0 {
			return nil, fmt.Errorf("server: %s declares its own servers, which generated clients ignore; serve it under %q", path, r.apiBase)
		}
		p := echoPath(path)
		if item.Extensions[probeExtension] == true {
			r.probe[p] = true
			continue
		}
		for method, op := range item.Operations() {
			if op.Security != nil && len(*op.Security) == 0 {
				r.open[method+" "+p] = true
				r.public[r.apiBase+p] = true
			}
			if op.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Idempotency-Key") != nil {
				r.keyable[method+" "+p] = true
			}
		}
	}
	return r, nil
}

func (r *routes) add(method, path string, h echo.HandlerFunc, m []echo.MiddlewareFunc) *echo.Route {
	if r.probe[path] {
		r.e.Add(method, path, h, m...)
		return r.e.Add(method, r.apiBase+path, h, m...)
	}
	chain := r.keyed
	if r.open[method+" "+path] {
		chain = r.tokened
	}
	chain = append([]echo.MiddlewareFunc{}, chain...)
	if r.keyable[method+" "+path] {
		chain = append(chain, r.idempotent)
	}
	m = append(append(chain, r.validate), m...)
	return r.e.Add(method, r.apiBase+path, h, m...)
}

// echoPath turns /feedback/{id} into /feedback/:id, as the generated code
// names routes.
func echoPath(p string) string {
	p = strings.ReplaceAll(p, "{", ":")
	return strings.ReplaceAll(p, "}", "")
}

// CONNECT and the methods below make routes a gen.EchoRouter: each hands
// its route to add.
func (r *routes) CONNECT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.CONNECT, p, h, m)
}
func (r *routes) DELETE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.DELETE, p, h, m)
}
func (r *routes) GET(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.GET, p, h, m)
}
func (r *routes) HEAD(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.HEAD, p, h, m)
}
func (r *routes) OPTIONS(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.OPTIONS, p, h, m)
}
func (r *routes) PATCH(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.PATCH, p, h, m)
}
func (r *routes) POST(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.POST, p, h, m)
}
func (r *routes) PUT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.PUT, p, h, m)
}
func (r *routes) TRACE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.TRACE, p, h, m)
}

// accessLog logs one line per request with its id, the route pattern (not
// the raw URL, so nothing secret in a path or query is ever logged),
// status and latency, and records the same in m.
func accessLog(logger *slog.Logger, m *metrics.Metrics) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:    true,
		LogLatency:   true,
		LogMethod:    true,
		LogRoutePath: true,
		LogError:     true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			m.ObserveRequest(v.Method, v.RoutePath, v.Status, v.Latency)
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			if !logger.Enabled(context.Background(), level) {
				return nil // build nothing for a line nobody reads
			}
			attrs := []slog.Attr{
				// The response's id: the one requestID kept or made, never
				// an unchecked one from the request.
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("method", v.Method),
				slog.String("route", v.RoutePath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
			}
			if v.Status >= 500 && v.Error != nil {
				attrs = append(attrs, slog.String("error", v.Error.Error()))
			}
			logger.LogAttrs(context.Background(), level, "request", attrs...)
			return nil
		},
	})
}
