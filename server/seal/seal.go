// Package seal seals small values with AES-256-GCM, for what feedbackd
// hands out or keeps and must be unreadable and unforgeable without its
// key: feedback tokens (package token) and webhooks' signing secrets
// (package webhook). A sealed value is a random nonce followed by the
// ciphertext, bound to its purpose, so a value sealed for one purpose does
// not open as another.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the length of a key in bytes.
const KeySize = 32

// NewKey returns a new random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}

// ErrOpen is Open's error for a value that was altered, sealed with
// another key or for another purpose, or is not a sealed value at all.
var ErrOpen = errors.New("seal: the value does not open with this key")

// Box seals and opens values with one key, for one purpose.
type Box struct {
	aead    cipher.AEAD
	purpose []byte
}

// New returns a Box for a KeySize-byte key; purpose names the use and its
// format's version.
func New(key []byte, purpose string) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: the key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, purpose: []byte(purpose)}, nil
}

// Seal returns plain sealed.
func (b *Box) Seal(plain []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return b.aead.Seal(nonce, nonce, plain, b.purpose)
}

// Open returns what Seal sealed; ErrOpen otherwise.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], b.purpose)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
