package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/token"
)

// principal is who a request acts for: a workspace, through either an API
// key or a feedback token.
type principal struct {
	workspaceID string
	// keyID is the API key that authenticated the request, or that created
	// the token.
	keyID string
	// token is set when a feedback token authenticated the request.
	token *token.Claims
	// origin returns the scheme and host the request came to, for links
	// that point back at this server. It is asked for only by the few
	// handlers that make links, during the request: working it out reads
	// several forwarding headers.
	origin func() string
}

// originOf returns the function that works out c's origin.
func originOf(c echo.Context) func() string {
	return func() string { return c.Scheme() + "://" + c.Request().Host }
}

// subject names the principal for rate limiting: each key and each token
// has its own bucket.
func (p *principal) subject() string {
	if p.token != nil {
		return "token:" + p.token.ID
	}
	return "key:" + p.keyID
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalOf returns the principal authentication put into ctx. Handlers
// run only behind authentication, so a missing one is a wiring bug.
func principalOf(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	if p == nil {
		panic("server: handler reached without authentication")
	}
	return p
}

// workspaceOf returns the workspace the request acts for.
func workspaceOf(ctx context.Context) string { return principalOf(ctx).workspaceID }

var (
	errUnauthorized = &requestError{
		status:  http.StatusUnauthorized,
		message: "a valid API key is required in x-portkey-api-key or Authorization: Bearer",
	}
	errBadToken = &requestError{
		status:  http.StatusUnauthorized,
		message: "the feedback token is invalid or expired",
	}
)

// touchEvery is how stale a key's last-used time may get before a request
// records a new one; recording every use would cost a write per request.
const touchEvery = time.Minute

// authenticate resolves the API key of the request to its workspace and
// puts that into the request context, where the strict handlers find it.
// Unknown, revoked and expired keys all get the same 401, so the answer
// tells an attacker nothing about which keys exist.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		secret := apikey.FromHeaders(req.Header.Get("x-portkey-api-key"), req.Header.Get(echo.HeaderAuthorization))
		if secret == "" {
			return errUnauthorized
		}
		hash := apikey.Hash(secret)
		now := s.now()
		k, err := s.keys.lookup(req.Context(), s.store, hash, now)
		if err != nil {
			return keyError(err)
		}
		if !apikey.Equal(k.Hash, hash) || !usable(k, now) {
			return errUnauthorized
		}
		if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= touchEvery {
			if err := s.store.TouchAPIKey(req.Context(), k.ID, now); err != nil {
				s.logger.Warn("recording key use", slog.String("key_id", k.ID), slog.Any("error", err))
			}
			s.keys.touched(hash, now)
		}
		c.SetRequest(req.WithContext(withPrincipal(req.Context(), &principal{workspaceID: k.WorkspaceID, keyID: k.ID, origin: originOf(c)})))
		return next(c)
	}
}

// authenticateToken opens the feedback token in the path and checks that
// the key that created it still may act for its workspace. Every failure,
// from a flipped bit to a revoked key, is the same 401.
func (s *Server) authenticateToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		now := s.now()
		claims, err := s.sealer.Open(c.Param("token"), now)
		if err != nil {
			return errBadToken
		}
		k, err := s.store.APIKeyByID(req.Context(), claims.KeyID)
		if err != nil {
			if store.ErrorCode(err) == store.ENOTFOUND {
				return errBadToken
			}
			return err
		}
		if k.WorkspaceID != claims.WorkspaceID || !usable(k, now) {
			return errBadToken
		}
		p := &principal{workspaceID: claims.WorkspaceID, keyID: k.ID, token: claims, origin: originOf(c)}
		c.SetRequest(req.WithContext(withPrincipal(req.Context(), p)))
		return next(c)
	}
}

// usable says whether a key is neither revoked nor expired at now.
func usable(k *store.APIKey, now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

func keyError(err error) error {
	if store.ErrorCode(err) == store.ENOTFOUND {
		return errUnauthorized
	}
	return fmt.Errorf("look up API key: %w", err)
}
