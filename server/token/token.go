// Package token seals and opens feedbackd's browser-safe feedback tokens.
//
// A token is "fbt_" followed by base64url(nonce || AES-256-GCM ciphertext).
// The plaintext names the workspace, the API key that created it, the trace
// id, metadata, an expiry and a random token id. Sealing with an AEAD both
// authenticates the token (any change is detected) and keeps its contents
// (workspace and key ids, the user's metadata) unreadable to the browser
// that carries it. The 256-bit key lives in the store, so every replica and
// every restart opens the same tokens.
package token

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/seal"
)

// Prefix starts every token.
const Prefix = "fbt_"

// ErrInvalid is returned for a token that was altered, sealed with another
// key, malformed or expired; callers answer all of them alike.
var ErrInvalid = errors.New("invalid or expired feedback token")

// purpose binds a ciphertext to this use and format version.
const purpose = "feedbackd feedback token v1"

// Claims are what a token grants: feedback on one trace of one workspace.
type Claims struct {
	// ID identifies the token; feedback recorded with it is kept under it,
	// so a second submission updates the first.
	ID          string         `json:"i"`
	WorkspaceID string         `json:"w"`
	KeyID       string         `json:"k"`
	TraceID     string         `json:"t"`
	Metadata    map[string]any `json:"m,omitempty"`
	ExpiresAt   time.Time      `json:"e"`
}

// Sealer seals and opens tokens with one key.
type Sealer struct {
	box *seal.Box
}

// NewKey returns a new random sealing key.
func NewKey() []byte { return seal.NewKey() }

// NewSealer returns a Sealer for a seal.KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	box, err := seal.New(key, purpose)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return &Sealer{box: box}, nil
}

// NewID returns a random token id.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Seal returns the token for c.
func (s *Sealer) Seal(c Claims) (string, error) {
	plain, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(s.box.Seal(plain)), nil
}

// Open returns the claims of a token that this Sealer's key sealed and that
// has not expired at now; ErrInvalid otherwise.
func (s *Sealer) Open(tok string, now time.Time) (*Claims, error) {
	rest, ok := strings.CutPrefix(tok, Prefix)
	if !ok {
		return nil, ErrInvalid
	}
	// Strict decoding: a token has exactly one spelling (no spare bits).
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, ErrInvalid
	}
	plain, err := s.box.Open(sealed)
	if err != nil {
		return nil, ErrInvalid
	}
	// Numbers stay json.Number: the metadata is stored as it was sealed.
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c.ID == "" || c.WorkspaceID == "" || c.KeyID == "" {
		return nil, ErrInvalid
	}
	if !now.Before(c.ExpiresAt) {
		return nil, ErrInvalid
	}
	return &c, nil
}
