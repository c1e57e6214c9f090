package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd/gen"
)

// logFiltersExtension names the operation extension that lists Portkey's
// analytics filters over request logs: names feedbackd refuses with a
// message saying why, since it has no request logs to apply them to.
const logFiltersExtension = "x-portkey-log-filters"

// declaredQuery is what one operation of the spec says about query
// parameters: the names it declares (its own parameters and its path
// item's, in: query) and the Portkey log filters it lists.
//
// kin-openapi validates the parameters an operation declares and ignores
// any other, so a typo (tarce_id) or a filter feedbackd cannot apply
// (cost_min) would be answered as if it were not there; this is what
// refuses them.
type declaredQuery struct {
	names      map[string]bool
	logFilters map[string]bool
	// takes is the sorted declared names, for the error: a typo is
	// easiest to fix next to what was meant.
	takes string
}

// declaredQueries reads declaredQuery for each operation of the versioned
// API, keyed by "METHOD path" as Echo routes it (the key fastRoutes uses),
// so that the check needs neither the spec's router nor a parsed query
// when a request has no query string, which is most of them.
func declaredQueries(spec *openapi3.T, base string) (map[string]*declaredQuery, error) {
	out := map[string]*declaredQuery{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			d := &declaredQuery{names: map[string]bool{}, logFilters: map[string]bool{}}
			for _, ps := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, ref := range ps {
					p := ref.Value
					if p == nil || p.In != openapi3.ParameterInQuery {
						continue
					}
					if p.Style == openapi3.SerializationDeepObject || (p.Explode != nil && *p.Explode && p.Schema != nil && p.Schema.Value.Type.Is(openapi3.TypeObject)) {
						// Its query names are not the parameter's name.
						return nil, fmt.Errorf("server: %s %s: query parameter %q is sent under other names, which the check of declared parameters does not know", method, path, p.Name)
					}
					d.names[p.Name] = true
				}
			}
			filters, err := logFilters(op)
			if err != nil {
				return nil, fmt.Errorf("server: %s %s: %w", method, path, err)
			}
			for _, f := range filters {
				if d.names[f] {
					return nil, fmt.Errorf("server: %s %s: %s lists %q, which the operation declares", method, path, logFiltersExtension, f)
				}
				d.logFilters[f] = true
			}
			takes := make([]string, 0, len(d.names))
			for n := range d.names {
				takes = append(takes, n)
			}
			slices.Sort(takes)
			d.takes = strings.Join(takes, ", ")
			out[method+" "+base+echoPath(path)] = d
		}
	}
	return out, nil
}

// logFilters reads the operation's x-portkey-log-filters, a list of names.
func logFilters(op *openapi3.Operation) ([]string, error) {
	v, ok := op.Extensions[logFiltersExtension]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of names, got %T", logFiltersExtension, v)
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("%s must be a list of names, got %v", logFiltersExtension, x)
		}
		out = append(out, s)
	}
	return out, nil
}

// refuseUndeclared answers 400 for a query string that is not valid URL
// encoding (url.Values would drop the pair quietly) or that names any
// parameter the operation does not declare, naming them all, sorted.
func (d *declaredQuery) refuseUndeclared(rawQuery string) error {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return &requestError{status: http.StatusBadRequest, message: "the query string is not valid: " + err.Error()}
	}
	var unknown, logs []string
	for name := range values {
		if !d.names[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	re := &requestError{status: http.StatusBadRequest}
	quoted := make([]string, len(unknown))
	for i, name := range unknown {
		quoted[i] = fmt.Sprintf("%q", name)
		why := "is not a parameter of this operation, which takes no query parameters"
		if d.logFilters[name] {
			logs = append(logs, name)
			why = "feedbackd has no request logs to filter by " + name
		} else if d.takes != "" {
			why = "is not a parameter of this operation, which takes: " + d.takes
		}
		re.fields = append(re.fields, gen.FieldError{Path: name, Message: why})
	}
	re.message = "unknown query parameter " + quoted[0]
	if len(unknown) > 1 {
		re.message = "unknown query parameters " + strings.Join(quoted, ", ")
	}
	if len(logs) > 0 {
		re.message += ": feedbackd has no request logs to filter by " + strings.Join(logs, ", ")
	}
	return re
}
