package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
)

type workspaceKey struct{}

// withWorkspace returns ctx carrying the workspace a request acts for.
func withWorkspace(ctx context.Context, workspaceID string) context.Context {
	return context.WithValue(ctx, workspaceKey{}, workspaceID)
}

// workspaceOf returns the workspace authenticate put into ctx. Handlers run
// only behind authenticate, so an empty result is a wiring bug.
func workspaceOf(ctx context.Context) string {
	id, _ := ctx.Value(workspaceKey{}).(string)
	return id
}

var errUnauthorized = &requestError{
	status:  http.StatusUnauthorized,
	message: "a valid API key is required in x-portkey-api-key or Authorization: Bearer",
}

// authenticate resolves the API key of the request to its workspace and
// puts that into the request context, where the strict handlers find it.
// Unknown, revoked and expired keys all get the same 401, so the answer
// tells an attacker nothing about which keys exist.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key := apikey.FromHeaders(req.Header.Get("x-portkey-api-key"), req.Header.Get(echo.HeaderAuthorization))
		if key == "" {
			return errUnauthorized
		}
		hash := apikey.Hash(key)
		k, err := s.store.APIKeyByHash(req.Context(), hash)
		if store.ErrorCode(err) == store.ENOTFOUND {
			return errUnauthorized
		}
		if err != nil {
			return err
		}
		now := s.now()
		if !apikey.Equal(k.Hash, hash) || k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
			return errUnauthorized
		}
		c.SetRequest(req.WithContext(withWorkspace(req.Context(), k.WorkspaceID)))
		return next(c)
	}
}
