package server

import (
	"context"
	"maps"
	"net/http"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/token"
)

// maxTokenLength is the longest token the token route accepts (the spec's
// maxLength of its path parameter); a token is refused at creation rather
// than handed out unusable.
const maxTokenLength = 4096

// defaultTokenLifetime applies when the validated body has no expires_in;
// the validator fills in the spec's default, so this only guards a caller
// that bypasses it.
const defaultTokenLifetime = 24 * time.Hour

// CreateFeedbackToken seals a token for one trace of the key's workspace.
func (s *Server) CreateFeedbackToken(ctx context.Context, req gen.CreateFeedbackTokenRequestObject) (gen.CreateFeedbackTokenResponseObject, error) {
	p := principalOf(ctx)
	lifetime := defaultTokenLifetime
	if req.Body.ExpiresIn != nil {
		lifetime = time.Duration(*req.Body.ExpiresIn) * time.Second
	}
	claims := token.Claims{
		ID: token.NewID(), WorkspaceID: p.workspaceID, KeyID: p.keyID, TraceID: req.Body.TraceID,
		ExpiresAt: s.clock().Add(lifetime),
	}
	if req.Body.Metadata != nil {
		if fe := s.limits.check([]string{"metadata"}, *req.Body.Metadata); fe != nil {
			return nil, metadataError(fe)
		}
		claims.Metadata = *req.Body.Metadata
	}
	tok, err := s.sealer.Seal(claims)
	if err != nil {
		return nil, err
	}
	if len(tok) > maxTokenLength {
		return nil, &requestError{
			status:  http.StatusBadRequest,
			message: "the token would be too long: send less metadata",
			fields:  []gen.FieldError{{Path: "/metadata", Message: "too large to travel inside a token"}},
		}
	}
	base := s.publicURL
	if base == "" {
		base = p.origin()
	}
	return gen.CreateFeedbackToken200JSONResponse{
		Token: tok, URL: base + s.apiBase + "/feedback/tokens/" + tok, ExpiresAt: claims.ExpiresAt,
	}, nil
}

// SubmitFeedbackWithToken records, or re-records, the one feedback of a
// token. The token's metadata wins over the browser's for the same key.
func (s *Server) SubmitFeedbackWithToken(ctx context.Context, req gen.SubmitFeedbackWithTokenRequestObject) (gen.SubmitFeedbackWithTokenResponseObject, error) {
	claims := principalOf(ctx).token
	meta := map[string]any{}
	if req.Body.Metadata != nil {
		if fe := s.limits.check([]string{"metadata"}, *req.Body.Metadata); fe != nil {
			return nil, metadataError(fe)
		}
		maps.Copy(meta, *req.Body.Metadata)
	}
	maps.Copy(meta, claims.Metadata)
	weight := 1.0
	if req.Body.Weight != nil {
		weight = *req.Body.Weight
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now := s.clock()
	const message = "feedback recorded"
	f, err := s.store.UpsertTokenFeedback(ctx, claims.ID, &store.Feedback{
		ID: id.String(), WorkspaceID: claims.WorkspaceID, TraceID: claims.TraceID,
		Value: req.Body.Value, Weight: weight, Metadata: meta, CreatedAt: now, UpdatedAt: now,
	}, s.idempotencyOf(ctx, message))
	if err != nil {
		return nil, err
	}
	stored, err := uuid.Parse(f.ID)
	if err != nil {
		return nil, err
	}
	return gen.SubmitFeedbackWithToken200JSONResponse{FeedbackAcceptedJSONResponse: accepted(message, openapi_types.UUID(stored))}, nil
}
