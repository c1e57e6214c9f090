// Package store holds feedbackd's domain types, the Store interface every
// storage backend implements, and the small set of error codes the rest of
// the program maps to answers. It depends on the standard library only, so
// the database never depends on the wire format and the wire can change
// without a migration.
package store

import (
	"context"
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
	// Value is the score, -10..10.
	Value int
	// Weight is how much the feedback counts, 0..1.
	Weight float64
	// Metadata is free metadata; never nil once stored.
	Metadata map[string]any
	// CreatedAt and UpdatedAt are in UTC with microsecond precision.
	CreatedAt time.Time
	UpdatedAt time.Time
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
	// After continues a listing after this id (exclusive), walking ids
	// downwards (newest first).
	After string
}

// Page is one page of a listing, newest first.
type Page struct {
	Items []*Feedback
	// HasMore says whether more items follow the last one in Items.
	HasMore bool
}

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
	// timestamps are set by the caller. ECONFLICT when an id exists.
	CreateFeedback(ctx context.Context, fs []*Feedback) error
	// GetFeedback returns one feedback of a workspace; ENOTFOUND when there
	// is none with that id in that workspace.
	GetFeedback(ctx context.Context, workspaceID, id string) (*Feedback, error)
	// UpdateFeedback applies u and returns the stored result; ENOTFOUND as
	// GetFeedback.
	UpdateFeedback(ctx context.Context, workspaceID, id string, u Update) (*Feedback, error)
	// DeleteFeedback removes one feedback; ENOTFOUND as GetFeedback.
	DeleteFeedback(ctx context.Context, workspaceID, id string) error
	// ListFeedback returns one page of a workspace's feedback matching f.
	ListFeedback(ctx context.Context, workspaceID string, f Filter) (*Page, error)
	// UpsertTokenFeedback stores f as the one feedback of a feedback token:
	// the first call for (f.WorkspaceID, tokenID) inserts f, later calls
	// replace its value, weight, metadata and UpdatedAt and keep its id,
	// trace id and CreatedAt. It returns the stored row.
	UpsertTokenFeedback(ctx context.Context, tokenID string, f *Feedback) (*Feedback, error)

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
	// every replica, gets the same value.
	Secret(ctx context.Context, name string, generate func() []byte) ([]byte, error)

	// Ping reports whether the store can serve requests.
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
)

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
