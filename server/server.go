// Package server implements feedbackd's HTTP API: the strict-server
// interface generated from openapi.yaml, wired into Echo with the request's
// way through the service:
//
//	body limit -> request id + access log -> auth (key -> workspace)
//	-> kin-openapi validation against the embedded spec
//	-> strict handler -> store -> typed response
//
// Every error leaves through one place, the Echo HTTPErrorHandler, as the
// spec's Error body.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
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
}

// Server implements gen.StrictServerInterface on a store.
type Server struct {
	store  store.Store
	logger *slog.Logger
	now    func() time.Time
}

var _ gen.StrictServerInterface = (*Server)(nil)

// New returns an Echo instance serving the whole API.
func New(cfg Config) (*echo.Echo, error) {
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
	spec, err := gen.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("server: load embedded spec: %w", err)
	}
	s := &Server{store: cfg.Store, logger: cfg.Logger, now: cfg.Now}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Use(
		middleware.RequestID(),
		accessLog(cfg.Logger),
		middleware.Recover(),
		readBody(cfg.BodyLimit),
	)

	validate, err := requestValidator(spec)
	if err != nil {
		return nil, err
	}
	routes := &specRouter{e: e, prefixes: routePrefixes(spec), api: []echo.MiddlewareFunc{s.authenticate, validate}}
	gen.RegisterHandlers(routes, gen.NewStrictHandler(s, nil))
	return e, nil
}

// routePrefixes maps each path of the spec, in Echo's syntax, to the server
// URL it lives under: the path's own servers when it has them (the probes
// live at the root), the document's otherwise (/v1). The spec stays the
// only place that says where a route is.
func routePrefixes(spec *openapi3.T) map[string]string {
	prefixes := map[string]string{}
	base := ""
	if len(spec.Servers) > 0 {
		base = spec.Servers[0].URL
	}
	for path, item := range spec.Paths.Map() {
		prefix := base
		if len(item.Servers) > 0 {
			prefix = item.Servers[0].URL
		}
		prefixes[echoPath(path)] = strings.TrimSuffix(prefix, "/")
	}
	return prefixes
}

// echoPath turns /feedback/{id} into /feedback/:id, as the generated code
// names routes.
func echoPath(p string) string {
	p = strings.ReplaceAll(p, "{", ":")
	return strings.ReplaceAll(p, "}", "")
}

// specRouter is the gen.EchoRouter that registers every generated route
// under its server URL from the spec. Routes of the versioned API get
// authentication and validation; the probes at the root get neither.
type specRouter struct {
	e        *echo.Echo
	prefixes map[string]string
	api      []echo.MiddlewareFunc
}

func (r *specRouter) add(method, path string, h echo.HandlerFunc, m []echo.MiddlewareFunc) *echo.Route {
	prefix := r.prefixes[path]
	if prefix != "" {
		m = append(append([]echo.MiddlewareFunc{}, r.api...), m...)
	}
	return r.e.Add(method, prefix+path, h, m...)
}

func (r *specRouter) CONNECT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.CONNECT, p, h, m)
}
func (r *specRouter) DELETE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.DELETE, p, h, m)
}
func (r *specRouter) GET(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.GET, p, h, m)
}
func (r *specRouter) HEAD(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.HEAD, p, h, m)
}
func (r *specRouter) OPTIONS(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.OPTIONS, p, h, m)
}
func (r *specRouter) PATCH(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.PATCH, p, h, m)
}
func (r *specRouter) POST(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.POST, p, h, m)
}
func (r *specRouter) PUT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.PUT, p, h, m)
}
func (r *specRouter) TRACE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.add(echo.TRACE, p, h, m)
}

// accessLog logs one line per request with its id, the route pattern (not
// the raw URL, so nothing secret in a path or query is ever logged),
// status and latency.
func accessLog(logger *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:    true,
		LogLatency:   true,
		LogMethod:    true,
		LogRoutePath: true,
		LogRequestID: true,
		LogError:     true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			attrs := []slog.Attr{
				slog.String("request_id", v.RequestID),
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
