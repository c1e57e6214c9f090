package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
)

// idempotencyRetention is how long a key is remembered; the spec promises
// at least 24 hours.
const idempotencyRetention = 25 * time.Hour

type idempotencyKey struct{}

// rawBodyKey is where readBody leaves the body's bytes in the Echo context.
const rawBodyKey = "feedbackd.rawBody"

// inflight holds the idempotency keys whose first request is still running
// in this process, so a concurrent repeat is answered 409 rather than
// queued behind it.
type inflight struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (f *inflight) begin(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, busy := f.keys[k]; busy {
		return false
	}
	f.keys[k] = struct{}{}
	return true
}

func (f *inflight) end(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, k)
}

var (
	errInProgress = &requestError{status: http.StatusConflict, message: "a request with this Idempotency-Key is still in progress"}
	errKeyReused  = &requestError{status: http.StatusUnprocessableEntity, message: "this Idempotency-Key was used with another request"}
)

// idempotent makes the writes that accept an Idempotency-Key happen once
// per key. A repeat is answered from the store's record of the first write
// (made in the write's own transaction, so it survives crashes and is seen
// by every replica); the handler hands the key to the store through the
// request context.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key := req.Header.Get("Idempotency-Key")
		if key == "" {
			return next(c)
		}
		ctx := req.Context()
		p := principalOf(ctx)
		scope := p.workspaceID
		if p.token != nil {
			scope += "/token:" + p.token.ID
		}
		fp := fingerprint(req.Method, req.URL.Path, c.Get(rawBodyKey))
		busy := scope + "\x00" + key
		if !s.inflight.begin(busy) {
			return errInProgress
		}
		defer s.inflight.end(busy)
		if done, err := s.replay(c, scope, key, fp); done || err != nil {
			return err
		}
		c.SetRequest(req.WithContext(context.WithValue(ctx, idempotencyKey{}, &store.Idempotency{Scope: scope, Key: key, Fingerprint: fp})))
		err := next(c)
		if errors.Is(err, store.ErrIdempotencyKeyUsed) {
			// Another replica recorded the key between our look and our
			// write; its write stands, and ours was rolled back.
			if done, rerr := s.replay(c, scope, key, fp); done || rerr != nil {
				return rerr
			}
		}
		return err
	}
}

// replay answers from the record of an earlier write under the key, if
// there is one.
func (s *Server) replay(c echo.Context, scope, key string, fp []byte) (bool, error) {
	r, err := s.store.IdempotentResult(c.Request().Context(), scope, key)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !bytes.Equal(r.Fingerprint, fp) {
		return true, errKeyReused
	}
	if c.Path() == s.apiBase+"/feedback/erase" {
		var n int64
		if _, err := fmt.Sscanf(r.Message, eraseMessage, &n); err != nil {
			return true, fmt.Errorf("replay of an erase: %w", err)
		}
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return true, c.JSON(http.StatusOK, gen.EraseResponse{Erased: n})
	}
	ids := make([]openapi_types.UUID, len(r.IDs))
	for i, id := range r.IDs {
		if ids[i], err = uuid.Parse(id); err != nil {
			return true, err
		}
	}
	c.Response().Header().Set("Idempotent-Replayed", "true")
	return true, c.JSON(http.StatusOK, gen.FeedbackResponse{Status: gen.Success, Message: r.Message, FeedbackIds: ids, Replaced: replacedCount(r.Replaced)})
}

// fingerprint identifies a request for idempotency: method, path and body.
func fingerprint(method, path string, body any) []byte {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	if b, ok := body.([]byte); ok {
		h.Write(b)
	}
	return h.Sum(nil)
}

// idempotencyOf returns the idempotency the request asked for, completed
// with the answer's message, or nil.
func (s *Server) idempotencyOf(ctx context.Context, message string) *store.Idempotency {
	idem, _ := ctx.Value(idempotencyKey{}).(*store.Idempotency)
	if idem == nil {
		return nil
	}
	out := *idem
	out.Message = message
	out.At = s.clock()
	return &out
}

// purgeIdempotency forgets expired keys now and every hour until ctx ends.
func (s *Server) purgeIdempotency(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.store.PurgeIdempotency(ctx, s.now().Add(-idempotencyRetention)); err != nil && ctx.Err() == nil {
			s.logger.Warn("purging idempotency keys", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
