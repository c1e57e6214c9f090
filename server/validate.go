package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/gen"
)

// schemaOptions are used for every schema check: error messages without the
// schema dumped into them, and `format: uuid` actually checked (kin-openapi
// leaves it unchecked until a validator is registered), with the RFC 9562
// pattern so version 7 ids pass.
//
// They are built once: a format validator compiles its regular expression.
var schemaOptions = sync.OnceValue(func() []openapi3.SchemaValidationOption {
	return []openapi3.SchemaValidationOption{
		openapi3.DisableSchemaErrorDetails(),
		openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
			"uuid": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
		}),
	}
})

// validationOptions are openapi3filter's options for every request, and
// for every item feedbackd import checks (CheckFeedback).
// KeepValidatedValue leaves the value it decoded and validated (defaults
// applied) on the body, which is then bound, never decoded again.
var validationOptions = sync.OnceValue(func() *openapi3filter.Options {
	return &openapi3filter.Options{
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		KeepValidatedValue:      true,
		SchemaValidationOptions: schemaOptions(),
	}
})

// requestValidator checks every request of the versioned API against the
// embedded spec with kin-openapi; the generated handlers then bind the
// value it validated (validatedBinder). Authentication is done before it,
// by Server.authenticate.
//
// It calls openapi3filter directly rather than through echo-middleware:
// that wrapper (v1.1.0) unwraps a failed oneOf down to the MultiError of
// both branches before any hook sees the RequestError, so an error could
// no longer say whether a parameter or the body failed, nor which item.
//
// A FeedbackInput body (POST /v1/feedback) is handed to create, in place
// of the rest of the chain, as the items of the validated value. The generated handler
// would receive it as raw JSON (a oneOf) to decode once more.
//
// A query parameter the operation does not declare is refused before
// either path (declaredQuery): kin-openapi would ignore it.
func requestValidator(spec *openapi3.T, create func(echo.Context, *feedbackBody) error) (echo.MiddlewareFunc, error) {
	if len(spec.Servers) == 0 || strings.Contains(spec.Servers[0].URL, "://") {
		// An absolute server URL makes the router match hosts, and every
		// request 404s; the spec must name its base path only.
		return nil, fmt.Errorf("server: the spec's server URL must be a relative path, got %v", spec.Servers)
	}
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("server: route the spec: %w", err)
	}
	// inputRoutes are the Echo routes ("METHOD path") whose body is a
	// FeedbackInput.
	inputRoutes := map[string]bool{}
	base := strings.TrimSuffix(spec.Servers[0].URL, "/")
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if takesFeedbackInput(op) {
				inputRoutes[method+" "+base+echoPath(path)] = true
			}
		}
	}
	queries, err := declaredQueries(spec, base)
	if err != nil {
		return nil, err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			// Parameters the spec does not declare are refused first, on
			// every operation.
			if req.URL.RawQuery != "" {
				d := queries[req.Method+" "+c.Path()]
				if d == nil {
					return fmt.Errorf("route %s %s is not an operation of the spec", req.Method, c.Path())
				}
				if err := d.refuseUndeclared(req.URL.RawQuery); err != nil {
					return err
				}
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				// Echo routed the request, so the spec has the route too;
				// anything else is a bug worth a 500.
				return fmt.Errorf("route %s %s in the spec: %w", req.Method, req.URL.Path, err)
			}
			for k, v := range params {
				if u, err := url.PathUnescape(v); err == nil {
					params[k] = u
				}
			}
			input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions()}
			if err := openapi3filter.ValidateRequest(req.Context(), input); err != nil {
				return validationError(err)
			}
			v := validatedValue(req, route.Operation.RequestBody)
			if inputRoutes[req.Method+" "+c.Path()] {
				d, err := feedbackBodyOf(v)
				if err != nil {
					return err
				}
				return create(c, d)
			}
			return next(c)
		}
	}, nil
}

// validateBody checks raw, a JSON body, against rb, as requestValidator
// checks a request's body (openapi3filter, the same options), and returns
// the value validatedValue gives.
func validateBody(ctx context.Context, rb *openapi3.RequestBodyRef, raw []byte) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	input := &openapi3filter.RequestValidationInput{Request: req, Options: validationOptions()}
	if err := openapi3filter.ValidateRequestBody(ctx, input, rb.Value); err != nil {
		return nil, validationError(err)
	}
	return validatedValue(req, rb), nil
}

// validatedValue is the body value openapi3filter validated for req (nil
// when there is none), with every number its schema says is an integer in
// its integer spelling (integralNumbers).
func validatedValue(req *http.Request, rb *openapi3.RequestBodyRef) any {
	vb, ok := req.Body.(interface{ ValidatedValue() any })
	if !ok || rb == nil {
		return nil
	}
	v := vb.ValidatedValue()
	if mt := rb.Value.Content.Get(echo.MIMEApplicationJSON); mt != nil && mt.Schema != nil && hasFractionSpelling(v) {
		integralNumbers(mt.Schema.Value, v)
	}
	return v
}

// takesFeedbackInput says whether an operation's body is the spec's
// FeedbackInput, whose items go straight to create.
func takesFeedbackInput(op *openapi3.Operation) bool {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return false
	}
	mt := op.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON)
	return mt != nil && mt.Schema != nil && mt.Schema.Ref == "#/components/schemas/FeedbackInput"
}

// integralNumbers rewrites, in the validated value, every number the
// schema says is an integer into its plain integer spelling: JSON Schema
// counts 1.0 as the integer 1, and the handler must receive 1, not fail to
// bind "1.0" into an int.
func integralNumbers(s *openapi3.Schema, v any) {
	if s == nil {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		if branch := objectBranch(s, v); branch != nil {
			integralNumbers(branch, v)
		}
		for k, x := range v {
			if p := s.Properties[k]; p != nil {
				if n, ok := x.(json.Number); ok && p.Value.Type.Is(openapi3.TypeInteger) {
					if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
						v[k] = json.Number(strconv.FormatInt(int64(f), 10))
					}
					continue
				}
				integralNumbers(p.Value, x)
			} else if ap := s.AdditionalProperties.Schema; ap != nil {
				integralNumbers(ap.Value, x)
			}
		}
	case []any:
		for _, branch := range s.OneOf {
			if branch.Value != nil && branch.Value.Type.Is(openapi3.TypeArray) {
				integralNumbers(branch.Value, v)
			}
		}
		if s.Items != nil {
			for _, x := range v {
				integralNumbers(s.Items.Value, x)
			}
		}
	}
}

// objectBranch picks the oneOf branch an object (already validated) is: the
// first object branch whose required members it has; the feedback bodies'
// branches differ exactly that way (a FeedbackRequest needs trace_id and
// value, the index-keyed form requires none).
func objectBranch(s *openapi3.Schema, v map[string]any) *openapi3.Schema {
	for _, ref := range s.OneOf {
		b := ref.Value
		if b == nil || !b.Type.Is(openapi3.TypeObject) {
			continue
		}
		has := true
		for _, r := range b.Required {
			if _, ok := v[r]; !ok {
				has = false
				break
			}
		}
		if has {
			return b
		}
	}
	return nil
}

// hasFractionSpelling says whether v holds a number written with a
// fraction or an exponent, the only ones integralNumbers may rewrite; most
// bodies have none, and skip the walk.
func hasFractionSpelling(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return strings.ContainsAny(string(v), ".eE")
	case map[string]any:
		for _, x := range v {
			if hasFractionSpelling(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasFractionSpelling(x) {
				return true
			}
		}
	}
	return false
}

// validationError turns a kin-openapi error into a requestError with the
// status the spec gives and field errors a person can act on: a JSON
// pointer (or parameter name) and a reason, not a dump of the schema.
func validationError(err error) error {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return fmt.Errorf("validate request: %w", err)
	}
	if re.Parameter != nil {
		name := re.Parameter.Name
		return &requestError{
			status:  http.StatusBadRequest,
			message: fmt.Sprintf("invalid %s parameter %q", re.Parameter.In, name),
			fields:  []gen.FieldError{{Path: name, Message: parameterReason(re)}},
		}
	}
	switch {
	case strings.HasPrefix(re.Reason, "header Content-Type has unexpected value"):
		return &requestError{status: http.StatusUnsupportedMediaType, message: "Content-Type must be application/json"}
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return &requestError{status: http.StatusBadRequest, message: "request body is required"}
	case re.Reason == "failed to decode request body":
		msg := "request body is not valid JSON"
		var pe *openapi3filter.ParseError
		if errors.As(re.Err, &pe) && pe.Cause != nil {
			msg += ": " + pe.Cause.Error()
		}
		return &requestError{status: http.StatusBadRequest, message: msg}
	}
	return &requestError{status: http.StatusBadRequest, message: "request body is invalid", fields: fieldErrors(re.Err)}
}

func parameterReason(re *openapi3filter.RequestError) string {
	var se *openapi3.SchemaError
	if errors.As(re.Err, &se) {
		return reason(se)
	}
	var pe *openapi3filter.ParseError
	if errors.As(re.Err, &pe) {
		if pe.Reason != "" {
			return fmt.Sprintf("value %v is %s", pe.Value, pe.Reason)
		}
		return pe.Error()
	}
	if re.Err != nil {
		return re.Err.Error()
	}
	return re.Reason
}

// fieldErrors flattens a schema validation error into field errors. When a
// oneOf fails (a single feedback or an array of them), listing every
// branch's failures would confuse: the branch whose JSON type matches the
// value is checked again and its failures are reported.
func fieldErrors(err error) []gen.FieldError {
	var out []gen.FieldError
	var walk func(prefix []string, err error)
	walk = func(prefix []string, err error) {
		// Types are matched without unwrapping: a failed oneOf is a
		// SchemaError whose cause is the MultiError of every branch, and
		// it must be seen as the oneOf it is.
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, err := range e {
				walk(prefix, err)
			}
		case *openapi3.SchemaError:
			path := append(append([]string{}, prefix...), e.JSONPointer()...)
			if e.SchemaField == "oneOf" && e.Schema != nil {
				if berr := closestBranchError(e.Schema, e.Value); berr != nil {
					walk(path, berr)
				} else {
					out = append(out, gen.FieldError{Path: pointer(path), Message: oneOfMismatch(e.Schema)})
				}
				return
			}
			out = append(out, gen.FieldError{Path: pointer(path), Message: reason(e)})
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(prefix, inner)
				return
			}
			out = append(out, gen.FieldError{Path: pointer(prefix), Message: err.Error()})
		}
	}
	walk(nil, err)
	return out
}

// reason is the part of a schema error a person needs: kin-openapi's own
// text, except for formats, whose text would quote a whole regular
// expression.
func reason(se *openapi3.SchemaError) string {
	if se.SchemaField == "format" && se.Schema != nil {
		return fmt.Sprintf("must be a valid %s", se.Schema.Format)
	}
	return se.Reason
}

// closestBranchError checks v against each oneOf branch of its JSON type
// and returns the error of the branch it came closest to (the fewest
// failures), or nil when no branch has its type.
func closestBranchError(s *openapi3.Schema, v any) error {
	kind := jsonKind(v)
	var best error
	bestCount := 0
	for _, ref := range s.OneOf {
		if ref.Value == nil || ref.Value.Type == nil || !ref.Value.Type.Is(kind) {
			continue
		}
		opts := append(slices.Clone(schemaOptions()), openapi3.MultiErrors(), openapi3.VisitAsRequest())
		err := ref.Value.VisitJSON(v, opts...)
		if err == nil {
			continue
		}
		n := 1
		var me openapi3.MultiError
		if errors.As(err, &me) {
			n = len(me)
		}
		if best == nil || n < bestCount {
			best, bestCount = err, n
		}
	}
	return best
}

// oneOfMismatch says what a oneOf accepts, for the error when a value is
// none of it: its branches' JSON types, or the fields its branches require.
func oneOfMismatch(s *openapi3.Schema) string {
	var kinds, fields []string
	for _, ref := range s.OneOf {
		if ref.Value != nil && ref.Value.Type == nil && len(ref.Value.Required) > 0 {
			fields = append(fields, ref.Value.Required...)
		}
		if ref.Value == nil || ref.Value.Type == nil {
			continue
		}
		for _, k := range ref.Value.Type.Slice() {
			if k = "an " + k; !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 && len(fields) > 0 {
		// Branches that differ only in which fields they require.
		return "must have exactly one of the fields " + strings.Join(fields, ", ")
	}
	if len(kinds) == 0 {
		return "must match exactly one of its forms"
	}
	return "must be " + strings.Join(kinds, " or ")
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return openapi3.TypeObject
	case []any:
		return openapi3.TypeArray
	case string:
		return openapi3.TypeString
	case bool:
		return openapi3.TypeBoolean
	case nil:
		return "null"
	default:
		return openapi3.TypeNumber
	}
}

// pointer renders path segments as a JSON pointer (RFC 6901).
func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}

// readBody reads the whole body before anything else looks at it: a body
// over the limit is answered 413, and one that is not valid UTF-8 or not
// exactly one JSON value is answered 400 (a JSON decoder would otherwise
// quietly store U+FFFD in place of bad bytes, or ignore trailing data).
func readBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Body == nil || req.Body == http.NoBody {
				return next(c)
			}
			if req.ContentLength > limit {
				return tooLarge(limit)
			}
			data, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
			if err != nil {
				return &requestError{status: http.StatusBadRequest, message: "reading the request body failed"}
			}
			if int64(len(data)) > limit {
				return tooLarge(limit)
			}
			msg := ""
			if mt, _ := mediaType(req); mt == echo.MIMEApplicationJSON && len(data) > 0 {
				msg = badJSON(data)
			} else if !utf8.Valid(data) {
				msg = "is not valid UTF-8"
			}
			if msg != "" {
				return &requestError{status: http.StatusBadRequest, message: "request body " + msg}
			}
			req.Body = io.NopCloser(bytes.NewReader(data))
			req.ContentLength = int64(len(data))
			c.Set(rawBodyKey, data)
			return next(c)
		}
	}
}

// badJSON says what makes data no JSON body, or "" when it is one: it
// must be valid UTF-8 (a decoder would quietly store U+FFFD in place of
// bad bytes) and exactly one JSON value (kin-openapi decodes the first
// value and ignores what follows it).
func badJSON(data []byte) string {
	if !utf8.Valid(data) {
		return "is not valid UTF-8"
	}
	if !json.Valid(data) {
		return "is not valid JSON (one JSON value, nothing after it)"
	}
	return ""
}

// mediaType is mime.ParseMediaType of the request's Content-Type, without
// its parameters; the plain application/json every client sends is
// recognised without parsing (which allocates a map per request).
func mediaType(req *http.Request) (string, error) {
	ct := req.Header.Get(echo.HeaderContentType)
	if ct == echo.MIMEApplicationJSON {
		return ct, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	return mt, err
}

func tooLarge(limit int64) error {
	return &requestError{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}
