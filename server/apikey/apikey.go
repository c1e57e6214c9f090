// Package apikey makes and checks feedbackd's API keys.
//
// A key is "fbk_" followed by 43 base64url characters (32 random bytes). The
// fixed prefix lets secret scanners recognise a leaked key; the random part
// makes it unguessable. Only the SHA-256 of a key is ever stored: keys carry
// enough entropy that a slow password hash would add cost without adding
// safety.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Prefix starts every key feedbackd generates.
const Prefix = "fbk_"

// Generate returns a new random key and its hash.
func Generate() (key string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	key = Prefix + base64.RawURLEncoding.EncodeToString(b)
	return key, Hash(key)
}

// Hash returns the SHA-256 of key, the only form in which keys are stored.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// FromHeaders returns the key sent in Portkey's x-portkey-api-key header or
// as an Authorization bearer token, and "" when there is none.
func FromHeaders(portkeyHeader, authorization string) string {
	if k := strings.TrimSpace(portkeyHeader); k != "" {
		return k
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}
