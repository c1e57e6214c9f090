// Package store holds feedbackd's domain types, the Store interface every
// storage backend implements, and the small set of error codes the rest of
// the program maps to answers. It depends on the standard library only, so
// the database never depends on the wire format and the wire can change
// without a migration.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Feedback is one weighted judgement of a served request.
type Feedback struct {
	// ID is a time-ordered UUID (version 7) in its canonical text form.
	ID string
	// WorkspaceID is the workspace the feedback belongs to; every row has one.
	WorkspaceID string
	// TraceID identifies the request the feedback is about.
	TraceID string
	// Value is the feedback's value, -10..10.
	Value int
	// Weight is how much the feedback counts, 0..1.
	Weight float64
	// Metadata is free metadata; never nil once stored.
	Metadata map[string]any
	// MetadataJSON, when not empty, is Metadata as EncodeMetadata writes
	// it, from a caller that encoded it already (the API does, to check
	// its size), so that the store need not encode it again.
	MetadataJSON string
	// CreatedAt and UpdatedAt are in UTC with microsecond precision.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EncodedMetadata is f's metadata as stored: MetadataJSON when set, else
// EncodeMetadata of Metadata.
func (f *Feedback) EncodedMetadata() (string, error) {
	if f.MetadataJSON != "" {
		return f.MetadataJSON, nil
	}
	return EncodeMetadata(f.Metadata)
}

// Update is a change to a stored feedback. Nil fields keep the stored value.
type Update struct {
	Value    int
	Weight   *float64
	Metadata map[string]any
	// MetadataSet says whether Metadata replaces the stored metadata
	// (a nil Metadata with MetadataSet false keeps it).
	MetadataSet bool
	UpdatedAt   time.Time
}

// Apply returns a copy of f with u applied, its metadata encoded (for the
// store to write as it is).
func (u Update) Apply(f *Feedback) (*Feedback, error) {
	next := *f
	next.Value, next.UpdatedAt = u.Value, u.UpdatedAt
	if u.Weight != nil {
		next.Weight = *u.Weight
	}
	if u.MetadataSet {
		meta, err := EncodeMetadata(u.Metadata)
		if err != nil {
			return nil, err
		}
		next.Metadata, next.MetadataJSON = u.Metadata, meta
		if next.Metadata == nil {
			next.Metadata = map[string]any{}
		}
	}
	return &next, nil
}

// Filter selects feedback for ListFeedback. Zero fields do not filter.
type Filter struct {
	// TraceIDs keeps feedback whose trace id is one of these.
	TraceIDs []string
	// Metadata keeps feedback whose metadata holds every pair; values are
	// strings, float64 numbers or booleans and compare by JSON value.
	Metadata map[string]any
	ValueMin *int
	ValueMax *int
	// CreatedAfter is inclusive, CreatedBefore exclusive.
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
	// Limit is the page size, 1..1000.
	Limit int
	// After continues a listing after this position (exclusive): the
	// position of the last item of the previous page.
	After *Cursor
}

// Erase says how EraseFeedback guards and records an erase.
type Erase struct {
	// Max is the most feedback an erase removes without Confirm.
	Max int
	// Confirm, when set, is the count the caller expects: the erase goes
	// ahead only when the filter matches exactly this many, over Max too.
	Confirm *int
	// DryRun only counts.
	DryRun bool
}

// Check refuses an erase of n feedback that e does not allow: ECONFLICT,
// with n in the message, as EraseRefused says.
func (e Erase) Check(n int) error {
	if e.Confirm != nil && *e.Confirm != n {
		return &EraseRefused{Count: n, Message: fmt.Sprintf("the filters match %d feedback, not the %d confirmed: nothing was erased", n, *e.Confirm)}
	}
	if e.Confirm == nil && n > e.Max {
		return &EraseRefused{Count: n, Message: fmt.Sprintf("the filters match %d feedback, more than %d: send confirm_count %d to erase them", n, e.Max, n)}
	}
	return nil
}

// EraseRefused is the error of an erase its guard refused (ECONFLICT):
// Count is how many feedback the filter matched.
type EraseRefused struct {
	Count   int
	Message string
}

// Error implements error.
func (e *EraseRefused) Error() string { return e.Message }

// Unwrap makes the refusal an ECONFLICT.
func (e *EraseRefused) Unwrap() error { return &Error{Code: ECONFLICT, Message: e.Message} }

// Cursor is a position in a listing. Listings are ordered newest first:
// by CreatedAt descending, and among equal CreatedAt by ID descending
// (the ids compared as UUIDs, byte by byte). A row's position never moves
// (CreatedAt is never updated, ids are unique), so a page that continues
// after a cursor neither repeats nor skips a row that existed when the
// listing began, whatever is written meanwhile; and since the position
// starts with CreatedAt, a listing bounded in time is a walk of the
// (workspace, created_at, id) index from its upper end. The order does not
// rely on ids growing with time: imports keep their ids and times.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// CursorOf is the position of f in a listing.
func CursorOf(f *Feedback) *Cursor { return &Cursor{CreatedAt: f.CreatedAt, ID: f.ID} }

// Quarter, in seconds, is the shortest grain of the analytics rollups and
// the alignment of analytics buckets: they start and end on whole quarter
// hours of UTC, as time zones do.
const Quarter = 900

// AnalyticsQuery selects feedback for analytics and says how to bucket it
// by time.
type AnalyticsQuery struct {
	// From and To bound CreatedAt, both inclusive.
	From, To time.Time
	// Metadata keeps feedback whose metadata holds every pair, as in Filter.
	Metadata map[string]any
	// TraceIDs keeps feedback whose trace id is one of these.
	TraceIDs []string
	// WeightedMin and WeightedMax bound value x weight, inclusive.
	WeightedMin, WeightedMax *float64
	// OrgModels keeps feedback served by one of these models, in Portkey's
	// provider__model spelling (rollup.OrgModelDimensions says which).
	OrgModels []string
	// A feedback created at Unix time t (seconds) falls in bucket
	// floor((t + BucketShift) / BucketSize). Both are multiples of
	// Quarter; BucketSize is positive.
	BucketSize, BucketShift int64
}

// Cell aggregates the feedback of one value in one time bucket.
type Cell struct {
	Bucket      int64
	Value       int
	Count       int64
	SumWeighted float64
}

// ModelTally aggregates the feedback of one AI model (rollup.ModelOf).
type ModelTally struct {
	Model       string
	Count       int64
	SumWeighted float64
}

// Group aggregates the feedback that share one value of a metadata key.
type Group struct {
	// MetaValue is the metadata key's value: a string as it is, anything
	// else as JSON.
	MetaValue string
	// Requests counts the traces whose first feedback with MetaValue (by
	// CreatedAt, then ID, among all of the trace's feedback) is among the
	// feedback the query selects: a trace counts once, where it first got
	// feedback with the meta value.
	Requests int64
	// AvgWeighted is the average value x weight.
	AvgWeighted float64
	// LastSeen is the newest CreatedAt.
	LastSeen time.Time
}

// Page is one page of a listing, newest first.
type Page struct {
	Items []*Feedback
	// HasMore says whether more items follow the last one in Items.
	HasMore bool
}

// Idempotency asks a write to happen at most once for its key: the store
// records it, with the ids it wrote, in the write's own transaction, so a
// crash can never leave the write without its record or the reverse.
type Idempotency struct {
	// Scope and Key identify the write: the key a client sent, within its
	// workspace (or feedback token).
	Scope, Key string
	// Fingerprint identifies the request; a repeat must match it.
	Fingerprint []byte
	// Message is the answer's message, replayed with the ids.
	Message string
	// At is when the write was made.
	At time.Time
}

// IdempotentResult is a write recorded under an idempotency key.
type IdempotentResult struct {
	Fingerprint []byte
	Message     string
	// IDs are the feedback ids the write answered with, in order.
	IDs []string
	// Replaced is how many of IDs replaced a stored feedback (PutFeedback).
	Replaced  int
	CreatedAt time.Time
}

// ErrIdempotencyKeyUsed says a write was refused because its idempotency
// key is already recorded (by an earlier write, maybe on another replica).
var ErrIdempotencyKeyUsed = errors.New("idempotency key already used")

// Workspace is a tenant: rows and keys belong to exactly one.
type Workspace struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey is a credential for one workspace. The secret itself is never
// stored, only its SHA-256 hash.
type APIKey struct {
	ID          string
	WorkspaceID string
	// WorkspaceName is filled in by reads for display.
	WorkspaceName string
	Name          string
	Hash          []byte
	CreatedAt     time.Time
	ExpiresAt     *time.Time
	RevokedAt     *time.Time
	LastUsedAt    *time.Time
}

// Store persists workspaces, keys and feedback. Implementations are safe for
// concurrent use.
type Store interface {
	// CreateFeedback stores all of fs in one atomic unit: either every item
	// is durably committed when it returns nil, or none is. IDs and
	// timestamps are set by the caller. ECONFLICT when an id exists. With
	// idem, the write is recorded under its key in the same transaction,
	// and ErrIdempotencyKeyUsed (nothing stored) when the key already was.
	CreateFeedback(ctx context.Context, fs []*Feedback, idem *Idempotency) error
	// PutFeedback is CreateFeedback for ids a client chose: each f whose id
	// its workspace holds replaces that feedback (trace id, value, weight,
	// metadata and UpdatedAt become f's; CreatedAt stays), the others are
	// created; all in one atomic unit. It returns how many it replaced.
	// ECONFLICT when an id is another workspace's, EINVALID when fs holds
	// an id twice. idem as in CreateFeedback, recorded with the count.
	PutFeedback(ctx context.Context, fs []*Feedback, idem *Idempotency) (int, error)
	// GetFeedback returns one feedback of a workspace; ENOTFOUND when there
	// is none with that id in that workspace.
	GetFeedback(ctx context.Context, workspaceID, id string) (*Feedback, error)
	// UpdateFeedback applies u and returns the stored result; ENOTFOUND as
	// GetFeedback. idem as in CreateFeedback.
	UpdateFeedback(ctx context.Context, workspaceID, id string, u Update, idem *Idempotency) (*Feedback, error)
	// DeleteFeedback removes one feedback; ENOTFOUND as GetFeedback.
	DeleteFeedback(ctx context.Context, workspaceID, id string) error
	// ListFeedback returns one page of a workspace's feedback matching f,
	// in the order Cursor describes.
	ListFeedback(ctx context.Context, workspaceID string, f Filter) (*Page, error)
	// EraseFeedback deletes every feedback of a workspace that f matches
	// (as ListFeedback's filter; Limit and After are ignored) in one
	// transaction, and returns how many it matched: with e.DryRun it
	// deletes nothing. The count is taken in the same transaction, and
	// e.Check refuses it with an *EraseRefused (nothing deleted). idem as
	// in CreateFeedback, with no ids and its Message formatted with the
	// count (one %d).
	EraseFeedback(ctx context.Context, workspaceID string, f Filter, e Erase, idem *Idempotency) (int, error)
	// UpsertTokenFeedback stores f as the one feedback of a feedback token:
	// the first call for (f.WorkspaceID, tokenID) inserts f, later calls
	// replace its value, weight, metadata and UpdatedAt and keep its id,
	// trace id and CreatedAt. It returns the stored row. idem as in
	// CreateFeedback.
	UpsertTokenFeedback(ctx context.Context, tokenID string, f *Feedback, idem *Idempotency) (*Feedback, error)
	// IdempotentResult returns the write recorded under an idempotency key;
	// ENOTFOUND when there is none.
	IdempotentResult(ctx context.Context, scope, key string) (*IdempotentResult, error)
	// PurgeIdempotency forgets the keys recorded before a time.
	PurgeIdempotency(ctx context.Context, before time.Time) error

	// FeedbackCells aggregates a workspace's feedback matching q by time
	// bucket and value; cells without feedback are left out. EINVALID for
	// a query the store cannot bucket.
	FeedbackCells(ctx context.Context, workspaceID string, q AnalyticsQuery) ([]Cell, error)
	// MetadataGroups groups a workspace's feedback matching q (buckets
	// ignored) by the value of one metadata key (a string as it is,
	// anything else as JSON), leaving out feedback without it, and returns
	// the groups ranked by Requests (then MetaValue) from offset on, at most
	// limit of them, and how many there are.
	MetadataGroups(ctx context.Context, workspaceID, key string, q AnalyticsQuery, offset, limit int) ([]Group, int, error)
	// FeedbackModels tallies a workspace's feedback matching q (buckets
	// ignored) by AI model, leaving out feedback without one, most
	// feedback first, then by model.
	FeedbackModels(ctx context.Context, workspaceID string, q AnalyticsQuery) ([]ModelTally, error)
	// SetModelKeys makes keys the database's model keys (rollup.ModelOf),
	// which every write and read takes in its own transaction. When they
	// differ from the keys set before, it rebuilds the model rollups from
	// the rows in the same transaction, and says so.
	SetModelKeys(ctx context.Context, keys []string) (rebuilt bool, err error)

	// EnsureWorkspace returns the workspace with this name, creating it
	// when it does not exist.
	EnsureWorkspace(ctx context.Context, name string) (*Workspace, error)
	// CreateAPIKey stores a key; ECONFLICT when its hash exists.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with this hash, revoked or expired ones
	// included; ENOTFOUND when there is none.
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeyByID returns the key with this id, as APIKeyByHash.
	APIKeyByID(ctx context.Context, id string) (*APIKey, error)
	// TouchAPIKey records that a key was used at the given time; ENOTFOUND
	// when there is no such key.
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
	// ListAPIKeys returns every key, oldest first.
	ListAPIKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeAPIKey marks a key revoked at the given time; ENOTFOUND when
	// there is no such key.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	// CountAPIKeys returns the number of keys, revoked ones included.
	CountAPIKeys(ctx context.Context) (int, error)

	// Secret returns the server-wide secret with this name, storing
	// generate's result first when there is none yet. Every caller, on
	// every replica, gets the same secret.
	Secret(ctx context.Context, name string, generate func() []byte) ([]byte, error)

	// Exporter's methods serve feedbackd export and import.
	Exporter
	// Webhooks' methods serve the webhooks and their dispatcher.
	Webhooks
	// SetRecordEvents turns off (or on again) the recording of events
	// for webhooks by this store's writes: feedbackd import --no-webhooks.
	SetRecordEvents(on bool)

	// Ping reports whether the store can serve writes now: EUNAVAILABLE
	// when the database cannot be reached, EFULL when its disk is full.
	Ping(ctx context.Context) error
	// Close waits for pending writes and releases the store.
	Close() error
}

// Error codes shared by every backend. Backends wrap driver errors into
// these at their edge, and the server maps them to HTTP status in one place.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	// EUNAVAILABLE: the database cannot be reached now (down, restarting,
	// refusing connections); the same request may succeed later. A write
	// refused with it was not stored, except one whose commit was under
	// way when the connection broke: retries carry an Idempotency-Key.
	EUNAVAILABLE = "unavailable"
	// EFULL: the database's disk is full; nothing of the write was
	// stored, and writes succeed again once space is freed.
	EFULL = "insufficient_storage"
)

// Unavailable is the error of a request the database could not serve
// because it cannot be reached; cause is kept for the log.
func Unavailable(cause error) error {
	return fmt.Errorf("%w: %w", &Error{Code: EUNAVAILABLE, Message: "the database is unavailable, retry later"}, cause)
}

// Full is the error of a write refused because the database's disk is
// full; cause is kept for the log.
func Full(cause error) error {
	return fmt.Errorf("%w: %w", &Error{Code: EFULL, Message: "the disk is full: the write was not stored; retry once space is freed"}, cause)
}

// Error is an application error with a code from the list above and a
// message safe to show to the caller.
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any
// other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the *Error in err's chain, and a
// generic text for any other error so internals never reach a caller.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Validate checks what every store needs of a query: a range, and buckets
// on whole quarters.
func (q AnalyticsQuery) Validate() error {
	if q.To.Before(q.From) {
		return Errorf(EINVALID, "the range ends before it starts")
	}
	if q.BucketSize <= 0 || q.BucketSize%Quarter != 0 || q.BucketShift%Quarter != 0 {
		return Errorf(EINVALID, "buckets must start and end on whole quarter hours")
	}
	return nil
}

// FloorDiv divides rounding down, also for negative numbers (Go's / rounds
// toward zero); buckets and slots are floors.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// EncodeMetadata renders metadata as compact JSON with sorted keys, so equal
// metadata is stored as equal text; nil is stored as {}. Every store keeps
// metadata this way.
func EncodeMetadata(m map[string]any) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", Errorf(EINVALID, "metadata cannot be stored: %v", err)
	}
	return string(b), nil
}

// DecodeMetadata reads stored metadata, keeping numbers as json.Number so
// that large integers and their spelling survive.
func DecodeMetadata(b []byte) (map[string]any, error) {
	m := map[string]any{}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode stored metadata: %w", err)
	}
	return m, nil
}
