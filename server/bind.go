package server

import (
	"errors"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/oapi-codegen/runtime"
)

// validatedBinder is the Echo binder the generated strict handlers bind
// their bodies with: the value the request validator decoded and checked
// (openapi3filter's KeepValidatedValue), bound by bindValidated. The body
// is decoded once, and what the handler receives is exactly what was
// validated.
type validatedBinder struct{}

// Bind implements echo.Binder.
func (validatedBinder) Bind(i any, c echo.Context) error {
	req := c.Request()
	if vb, ok := req.Body.(interface{ ValidatedValue() any }); ok {
		return bindValidated(vb.ValidatedValue(), i)
	}
	if req.ContentLength == 0 {
		return nil // an optional body, absent: the zero value
	}
	// Every route with a body is validated first (routes.validate).
	return errors.New("server: a request body reached its handler unvalidated")
}

// bindValidated binds a validated JSON value (objects as map[string]any,
// numbers as json.Number) into a generated type by exact member names
// (`VALUE` is not `value`), with runtime.BindJSONValue. Free-form values
// (metadata) are then put back as decoded: BindJSONValue turns their
// numbers into float64, and metadata is stored as sent
// (12345678901234567890 stays exact, 1e21 stays 1e21).
func bindValidated(v, dst any) error {
	if err := runtime.BindJSONValue(v, dst); err != nil {
		return err
	}
	keepDecoded(reflect.ValueOf(dst).Elem(), v)
	return nil
}

var anyType = reflect.TypeFor[any]()

// keepDecoded walks dst, bound from v, and sets every free-form part (a
// value of type any, or a map of them) to v's own.
func keepDecoded(dst reflect.Value, v any) {
	switch dst.Kind() {
	case reflect.Pointer:
		if !dst.IsNil() {
			keepDecoded(dst.Elem(), v)
		}
	case reflect.Interface:
		if dst.Type() == anyType && v != nil && dst.CanSet() {
			dst.Set(reflect.ValueOf(v))
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok && dst.CanSet() && dst.Type().Key().Kind() == reflect.String && dst.Type().Elem() == anyType {
			dst.Set(reflect.ValueOf(m).Convert(dst.Type()))
		}
	case reflect.Slice:
		if a, ok := v.([]any); ok {
			for i := range min(len(a), dst.Len()) {
				keepDecoded(dst.Index(i), a[i])
			}
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		t := dst.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			switch {
			case f.Anonymous:
				keepDecoded(dst.Field(i), v)
			case f.IsExported():
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if x, ok := m[name]; ok && name != "" && name != "-" {
					keepDecoded(dst.Field(i), x)
				}
			}
		}
	}
}
