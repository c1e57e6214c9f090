package server

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
)

// createdMessage is the message of CreateFeedback's answer.
const createdMessage = "feedback recorded"

// feedbackBody is a FeedbackInput body as the items to store, in order.
// bulk says whether it was a bulk (an array or index-keyed object), whose
// items' error paths start with their index.
type feedbackBody struct {
	items []gen.FeedbackRequest
	bulk  bool
}

// CreateFeedback is never called: the request validator answers POST
// /v1/feedback itself (createItems) with the items it decoded, which the
// generated FeedbackInput would hold as raw JSON to decode again.
func (s *Server) CreateFeedback(context.Context, gen.CreateFeedbackRequestObject) (gen.CreateFeedbackResponseObject, error) {
	return nil, errors.New("server: POST /v1/feedback reached the generated handler, not the request validator's createItems")
}

// createItems records the feedback of a validated body, one or an atomic
// bulk, and answers as the generated handler would.
func (s *Server) createItems(c echo.Context, d *feedbackBody) error {
	ids, replaced, err := s.createFeedback(c.Request().Context(), d.items, d.bulk)
	if err != nil {
		return err
	}
	answer := accepted(createdMessage, ids...)
	answer.Replaced = replacedCount(replaced)
	return gen.CreateFeedback200JSONResponse{FeedbackAcceptedJSONResponse: answer}.VisitCreateFeedbackResponse(c.Response())
}

// replacedCount is the answer's replaced member: absent when nothing was,
// so that an answer to Portkey's SDKs, which never send ids, is as
// Portkey's.
func replacedCount(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// errIDTaken answers an id that another workspace holds, saying nothing
// else about it.
var errIDTaken = &requestError{status: http.StatusConflict, message: "this feedback id is taken"}

// createFeedback stores the items of a validated body and returns their
// ids in order, and how many replaced a stored feedback. An item with the
// id its client chose is created or replaces the workspace's feedback with
// that id; the others get a new id. bulk says whether the body was a
// bulk, whose items' error paths start with their index.
func (s *Server) createFeedback(ctx context.Context, items []gen.FeedbackRequest, bulk bool) ([]openapi_types.UUID, int, error) {
	chosen := map[openapi_types.UUID]bool{}
	for i, it := range items {
		if it.ID == nil {
			continue
		}
		if chosen[*it.ID] {
			return nil, 0, &requestError{status: http.StatusBadRequest, message: "request body is invalid",
				fields: []gen.FieldError{{Path: pointer([]string{strconv.Itoa(i), "id"}), Message: "this id is already an earlier item's"}}}
		}
		chosen[*it.ID] = true
	}
	metas := make([]string, len(items))
	for i, it := range items {
		if it.Metadata == nil {
			continue
		}
		path := []string{"metadata"}
		if bulk {
			path = []string{strconv.Itoa(i), "metadata"}
		}
		var fe *gen.FieldError
		if metas[i], fe = s.limits.encode(path, *it.Metadata); fe != nil {
			return nil, 0, metadataError(fe)
		}
	}
	ws := workspaceOf(ctx)
	now := s.clock()
	fs := make([]*store.Feedback, len(items))
	ids := make([]openapi_types.UUID, len(items))
	for i, it := range items {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, 0, fmt.Errorf("new id: %w", err)
		}
		if it.ID != nil {
			id = *it.ID
		}
		weight := 1.0
		if it.Weight != nil {
			weight = *it.Weight
		}
		var meta map[string]any
		if it.Metadata != nil {
			meta = *it.Metadata
		}
		ids[i] = id
		fs[i] = &store.Feedback{
			ID: id.String(), WorkspaceID: ws, TraceID: it.TraceID, Value: it.Value,
			Weight: weight, Metadata: meta, MetadataJSON: metas[i], CreatedAt: now, UpdatedAt: now,
		}
	}
	idem := s.idempotencyOf(ctx, createdMessage)
	if len(chosen) == 0 {
		return ids, 0, s.store.CreateFeedback(ctx, fs, idem)
	}
	replaced, err := s.store.PutFeedback(ctx, fs, idem)
	if store.ErrorCode(err) == store.ECONFLICT {
		return nil, 0, errIDTaken
	}
	return ids, replaced, err
}

// feedbackBodyOf unpacks a validated FeedbackInput value, by exact member
// names (`VALUE` is an unknown field, never `value`): a single object, an
// array, or the index-keyed object of Portkey's Node SDK.
func feedbackBodyOf(v any) (*feedbackBody, error) {
	switch v := v.(type) {
	case []any:
		items, err := bindItems(v)
		return &feedbackBody{items: items, bulk: true}, err
	case map[string]any:
		if _, single := v["trace_id"].(string); single {
			items, err := bindItems([]any{v})
			return &feedbackBody{items: items}, err
		}
		items, err := indexedItems(v)
		return &feedbackBody{items: items, bulk: true}, err
	}
	return nil, fmt.Errorf("validated body is a %T", v)
}

// indexedItems orders the items of a FeedbackRequestIndexed body by their
// keys, which must be exactly "0" to "n-1", and names each trace id
// trace_id, whichever spelling the item used.
func indexedItems(m map[string]any) ([]gen.FeedbackRequest, error) {
	items := make([]any, len(m))
	for k, item := range m {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(m) || strconv.Itoa(i) != k {
			return nil, &requestError{
				status:  http.StatusBadRequest,
				message: "request body is invalid",
				fields:  []gen.FieldError{{Path: pointer([]string{k}), Message: fmt.Sprintf("keys of an index-keyed body must be the indexes 0 to %d", len(m)-1)}},
			}
		}
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("validated item %s is a %T", k, item)
		}
		if t, camel := obj["traceID"]; camel {
			obj = maps.Clone(obj)
			delete(obj, "traceID")
			obj["trace_id"] = t
		}
		items[i] = obj
	}
	return bindItems(items)
}

func bindItems(items []any) ([]gen.FeedbackRequest, error) {
	out := make([]gen.FeedbackRequest, len(items))
	for i, it := range items {
		if err := bindValidated(it, &out[i]); err != nil {
			return nil, fmt.Errorf("bind validated item %d: %w", i, err)
		}
	}
	return out, nil
}

// GetFeedback returns one stored feedback.
func (s *Server) GetFeedback(ctx context.Context, req gen.GetFeedbackRequestObject) (gen.GetFeedbackResponseObject, error) {
	f, err := s.store.GetFeedback(ctx, workspaceOf(ctx), req.ID.String())
	if err != nil {
		return nil, err
	}
	return gen.GetFeedback200JSONResponse(wireFeedback(f)), nil
}

// UpdateFeedback changes a stored feedback.
func (s *Server) UpdateFeedback(ctx context.Context, req gen.UpdateFeedbackRequestObject) (gen.UpdateFeedbackResponseObject, error) {
	if err := s.update(ctx, req.ID, req.Body); err != nil {
		return nil, err
	}
	return gen.UpdateFeedback200JSONResponse{FeedbackAcceptedJSONResponse: accepted("feedback updated", req.ID)}, nil
}

// UpdateFeedbackByPost is UpdateFeedback under POST, as Portkey's samples send it.
func (s *Server) UpdateFeedbackByPost(ctx context.Context, req gen.UpdateFeedbackByPostRequestObject) (gen.UpdateFeedbackByPostResponseObject, error) {
	if err := s.update(ctx, req.ID, req.Body); err != nil {
		return nil, err
	}
	return gen.UpdateFeedbackByPost200JSONResponse{FeedbackAcceptedJSONResponse: accepted("feedback updated", req.ID)}, nil
}

func (s *Server) update(ctx context.Context, id openapi_types.UUID, body *gen.FeedbackUpdate) error {
	u := store.Update{Value: body.Value, Weight: body.Weight, UpdatedAt: s.clock()}
	if body.Metadata != nil {
		if fe := s.limits.check([]string{"metadata"}, *body.Metadata); fe != nil {
			return metadataError(fe)
		}
		u.Metadata, u.MetadataSet = *body.Metadata, true
	}
	_, err := s.store.UpdateFeedback(ctx, workspaceOf(ctx), id.String(), u, s.idempotencyOf(ctx, "feedback updated"))
	return err
}

// DeleteFeedback removes a stored feedback.
func (s *Server) DeleteFeedback(ctx context.Context, req gen.DeleteFeedbackRequestObject) (gen.DeleteFeedbackResponseObject, error) {
	if err := s.store.DeleteFeedback(ctx, workspaceOf(ctx), req.ID.String()); err != nil {
		return nil, err
	}
	return gen.DeleteFeedback200JSONResponse(accepted("feedback deleted", req.ID)), nil
}

// eraseMessage is the message an erase is recorded with under an
// Idempotency-Key, formatted with the count by the store: a replay reads
// the count back from it (replay).
const eraseMessage = "%d feedback erased"

// EraseFeedback deletes the workspace's feedback that the body's filters
// match, or counts it for a dry run; the store's guard answers 409 with
// the count (errorBody).
func (s *Server) EraseFeedback(ctx context.Context, req gen.EraseFeedbackRequestObject) (gen.EraseFeedbackResponseObject, error) {
	b := req.Body
	f := store.Filter{ValueMin: b.ValueMin, ValueMax: b.ValueMax, CreatedAfter: b.CreatedAfter, CreatedBefore: b.CreatedBefore}
	if b.TraceID != nil {
		f.TraceIDs = []string{*b.TraceID}
	}
	if b.Metadata != nil {
		for k, v := range *b.Metadata {
			switch v.(type) {
			case string, bool, json.Number:
			default:
				return nil, &requestError{status: http.StatusBadRequest, message: "request body is invalid",
					fields: []gen.FieldError{{Path: pointer([]string{"metadata", k}), Message: "must be a string, number or boolean"}}}
			}
		}
		f.Metadata = *b.Metadata
	}
	if f.TraceIDs == nil && f.Metadata == nil && f.ValueMin == nil && f.ValueMax == nil && f.CreatedAfter == nil && f.CreatedBefore == nil {
		return nil, &requestError{status: http.StatusBadRequest, message: "request body is invalid",
			fields: []gen.FieldError{{Path: "", Message: "an erase needs at least one filter (trace_id, metadata, value_min, value_max, created_after, created_before)"}}}
	}
	e := store.Erase{Max: s.eraseMax, DryRun: b.DryRun != nil && *b.DryRun}
	if b.ConfirmCount != nil {
		n := int(*b.ConfirmCount)
		e.Confirm = &n
	}
	var idem *store.Idempotency
	if !e.DryRun {
		idem = s.idempotencyOf(ctx, eraseMessage)
	}
	n, err := s.store.EraseFeedback(ctx, workspaceOf(ctx), f, e, idem)
	if err != nil {
		return nil, err
	}
	return gen.EraseFeedback200JSONResponse{Erased: int64(n), DryRun: e.DryRun}, nil
}

// ListFeedback returns one page of the workspace's feedback.
func (s *Server) ListFeedback(ctx context.Context, req gen.ListFeedbackRequestObject) (gen.ListFeedbackResponseObject, error) {
	p := req.Params
	f := store.Filter{ValueMin: p.ValueMin, ValueMax: p.ValueMax, CreatedAfter: p.CreatedAfter, CreatedBefore: p.CreatedBefore}
	if p.Limit != nil {
		f.Limit = *p.Limit
	}
	if p.TraceID != nil {
		ids, err := splitTraceIDs(*p.TraceID)
		if err != nil {
			return nil, err
		}
		f.TraceIDs = ids
	}
	if p.Metadata != nil {
		m, err := parseMetadataFilter(*p.Metadata)
		if err != nil {
			return nil, err
		}
		f.Metadata = m
	}
	if p.Cursor != nil {
		after, err := decodeCursor(*p.Cursor)
		if err != nil {
			return nil, err
		}
		f.After = after
	}
	page, err := s.store.ListFeedback(ctx, workspaceOf(ctx), f)
	if err != nil {
		return nil, err
	}
	out := gen.ListFeedback200JSONResponse{Object: gen.FeedbackListObjectList, Data: make([]gen.Feedback, len(page.Items)), HasMore: page.HasMore}
	for i, it := range page.Items {
		out.Data[i] = wireFeedback(it)
	}
	if page.HasMore {
		c, err := encodeCursor(store.CursorOf(page.Items[len(page.Items)-1]))
		if err != nil {
			return nil, err
		}
		out.NextCursor = &c
	}
	return out, nil
}

// splitTraceIDs reads a trace_id parameter: a comma-separated list.
func splitTraceIDs(s string) ([]string, error) {
	var ids []string
	for _, t := range strings.Split(s, ",") {
		if t != "" {
			ids = append(ids, t)
		}
	}
	if len(ids) == 0 {
		return nil, paramError("trace_id", "lists no trace id")
	}
	return ids, nil
}

// parseMetadataFilter reads the metadata query parameter: a JSON object
// whose values are strings, numbers or booleans.
func parseMetadataFilter(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, paramError("metadata", "must be a JSON object, such as {\"_user\":\"user_123\"}")
	}
	if _, err := dec.Token(); err == nil {
		return nil, paramError("metadata", "must be a single JSON object")
	}
	for k, v := range m {
		switch v.(type) {
		case string, bool, json.Number:
		default:
			return nil, paramError("metadata", fmt.Sprintf("value of %q must be a string, number or boolean", k))
		}
	}
	return m, nil
}

// Cursors are opaque to clients: the position (store.Cursor) the next page
// continues after, base64url-encoded (no padding) from 25 bytes: a format
// byte (cursorFormat), created_at in Unix microseconds (8 bytes, big
// endian, two's complement) and the id (16 bytes). A position has exactly
// one spelling.
//
// Before listings were ordered by created_at, a cursor was an id alone (the
// base64url of its text): such a cursor says nothing of where its row lies
// in today's order, so it is refused with a 400 that says to start again.
const cursorFormat = 1

// cursorTimes bound the created_at a cursor may carry: the instants RFC
// 3339 can write, which are all a feedback can have.
var cursorTimes = [2]int64{
	time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(),
	time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - 1,
}

// encodeCursor fails only for an id that is not a UUID, which the stores
// never hold.
func encodeCursor(c *store.Cursor) (string, error) {
	id, err := uuid.Parse(c.ID)
	if err != nil {
		return "", fmt.Errorf("cursor of feedback %q: %w", c.ID, err)
	}
	var b [25]byte
	b[0] = cursorFormat
	binary.BigEndian.PutUint64(b[1:9], uint64(c.CreatedAt.UnixMicro()))
	copy(b[9:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func decodeCursor(c string) (*store.Cursor, error) {
	// The decoder skips line breaks: comparing with the encoding of what it
	// decoded keeps one spelling per cursor.
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != c {
		return nil, paramError("cursor", "is not a cursor this server issued")
	}
	if id, err := uuid.Parse(string(b)); err == nil && id.String() == string(b) {
		return nil, paramError("cursor", "is a cursor of an earlier feedbackd, which listed in another order; list again without a cursor")
	}
	if len(b) != 25 || b[0] != cursorFormat {
		return nil, paramError("cursor", "is not a cursor this server issued")
	}
	at := int64(binary.BigEndian.Uint64(b[1:9]))
	if at < cursorTimes[0] || at > cursorTimes[1] {
		return nil, paramError("cursor", "is not a cursor this server issued")
	}
	return &store.Cursor{CreatedAt: time.UnixMicro(at).UTC(), ID: uuid.UUID(b[9:]).String()}, nil
}

func paramError(name, reason string) error {
	return &requestError{
		status:  http.StatusBadRequest,
		message: fmt.Sprintf("invalid query parameter %q", name),
		fields:  []gen.FieldError{{Path: name, Message: reason}},
	}
}

func accepted(msg string, ids ...openapi_types.UUID) gen.FeedbackAcceptedJSONResponse {
	return gen.FeedbackAcceptedJSONResponse{Status: gen.Success, Message: msg, FeedbackIds: ids}
}

func wireFeedback(f *store.Feedback) gen.Feedback {
	meta := f.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return gen.Feedback{
		ID: uuid.MustParse(f.ID), TraceID: f.TraceID, Value: f.Value, Weight: f.Weight,
		Metadata: meta, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt,
	}
}

// clock returns the current time as stored: UTC, microsecond precision.
func (s *Server) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// GetHealth answers while the process is up.
func (s *Server) GetHealth(ctx context.Context, _ gen.GetHealthRequestObject) (gen.GetHealthResponseObject, error) {
	return gen.GetHealth200JSONResponse{HealthJSONResponse: gen.HealthJSONResponse{Status: gen.Ok}}, nil
}

// GetReadiness answers 200 when the store can serve writes (Store.Ping),
// 503 with the reason when it cannot.
func (s *Server) GetReadiness(ctx context.Context, _ gen.GetReadinessRequestObject) (gen.GetReadinessResponseObject, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.Warn("readiness check failed", "error", err)
		msg := "store unreachable"
		if code := store.ErrorCode(err); code == store.EUNAVAILABLE || code == store.EFULL {
			msg = store.ErrorMessage(err)
		}
		return gen.GetReadiness503JSONResponse{Status: gen.Failure, Message: msg}, nil
	}
	return gen.GetReadiness200JSONResponse{HealthJSONResponse: gen.HealthJSONResponse{Status: gen.Ok}}, nil
}
