package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/feedbackd/feedbackd/server/seal"
)

func TestSealedValuesOpenOnlyWithTheirKeyAndPurpose(t *testing.T) {
	key := seal.NewKey()
	box, err := seal.New(key, "a purpose v1")
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("whsec_secret")
	sealed := box.Seal(plain)
	if bytes.Contains(sealed, plain) {
		t.Fatal("the sealed value holds the plain text")
	}
	if again := box.Seal(plain); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if got, err := box.Open(sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}
	otherPurpose, _ := seal.New(key, "another purpose v1")
	otherKey, _ := seal.New(seal.NewKey(), "a purpose v1")
	altered := bytes.Clone(sealed)
	altered[len(altered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"another purpose": func() ([]byte, error) { return otherPurpose.Open(sealed) },
		"another key":     func() ([]byte, error) { return otherKey.Open(sealed) },
		"altered":         func() ([]byte, error) { return box.Open(altered) },
		"too short":       func() ([]byte, error) { return box.Open(sealed[:10]) },
	} {
		if got, err := open(); !errors.Is(err, seal.ErrOpen) || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", name, got, err)
		}
	}
	if _, err := seal.New(key[:16], "p"); err == nil {
		t.Error("New took a 16-byte key")
	}
}
