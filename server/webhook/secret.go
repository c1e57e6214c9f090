// Package webhook delivers the events of feedback to the webhooks that
// subscribe to them (store.Webhooks): it signs each delivery as Standard
// Webhooks says, with that specification's own library, walks each
// webhook's events in order with retries, and refuses to reach addresses
// a key holder must not reach through the server. It also keeps the
// webhooks' signing secrets sealed.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/feedbackd/feedbackd/server/seal"
)

// SecretPrefix starts every signing secret, as Standard Webhooks spells
// them: "whsec_" and the base64 of the key.
const SecretPrefix = "whsec_"

// NewSecret returns a new signing secret: 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// KeySize is the length of a Keyring's key in bytes.
const KeySize = seal.KeySize

// purpose binds a sealed secret to this use.
const purpose = "feedbackd webhook secret v1"

// Keyring seals the signing secrets the store keeps, with AES-256-GCM
// (package seal), so that the webhooks table alone (a copy of it, a query
// that reads it) does not give them away.
type Keyring struct {
	box *seal.Box
}

// NewKeyring returns a Keyring for a KeySize-byte key.
func NewKeyring(key []byte) (*Keyring, error) {
	box, err := seal.New(key, purpose)
	if err != nil {
		return nil, fmt.Errorf("webhook: the secrets' key: %w", err)
	}
	return &Keyring{box: box}, nil
}

// Seal returns secret sealed.
func (k *Keyring) Seal(secret string) []byte { return k.box.Seal([]byte(secret)) }

// ErrSealedElsewhere is Open's error for a secret this Keyring's key did
// not seal: the server runs with another key than the one that made it.
var ErrSealedElsewhere = errors.New("webhook: the secret was sealed with another key")

// Open returns the secret Seal sealed.
func (k *Keyring) Open(sealed []byte) (string, error) {
	plain, err := k.box.Open(sealed)
	if err != nil {
		return "", ErrSealedElsewhere
	}
	return string(plain), nil
}
