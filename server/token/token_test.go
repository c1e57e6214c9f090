package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/server/token"
)

func sealer(t *testing.T) *token.Sealer {
	t.Helper()
	s, err := token.NewSealer(token.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func claims() token.Claims {
	return token.Claims{ID: token.NewID(), WorkspaceID: "ws", KeyID: "key", TraceID: "trace",
		Metadata: map[string]any{"_user": "secret-user"}, ExpiresAt: now.Add(time.Hour)}
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := sealer(t)
	c := claims()
	tok, err := s.Seal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "fbt_") {
		t.Errorf("token %q lacks the fbt_ prefix", tok)
	}
	if strings.Contains(tok, "secret-user") || strings.Contains(tok, "trace") {
		t.Errorf("token shows its contents: %s", tok)
	}
	got, err := s.Open(tok, now)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got.ID != c.ID || got.WorkspaceID != "ws" || got.KeyID != "key" || got.TraceID != "trace" ||
		got.Metadata["_user"] != "secret-user" || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Errorf("Open: got %+v, want %+v", got, c)
	}
	again, _ := s.Seal(c)
	if again == tok {
		t.Error("sealing the same claims twice gave the same token")
	}
}

func TestOpenRejects(t *testing.T) {
	s := sealer(t)
	tok, err := s.Seal(claims())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := sealer(t).Seal(claims())
	flip := func(i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":          "",
		"no prefix":      strings.TrimPrefix(tok, "fbt_"),
		"not base64":     "fbt_!!!",
		"too short":      "fbt_AAAA",
		"altered first":  flip(4),
		"altered middle": flip(len(tok) / 2),
		"altered last":   flip(len(tok) - 1),
		"truncated":      tok[:len(tok)-2],
		"another key":    other,
		"extended":       tok + "AA",
		"another prefix": "fbk_" + strings.TrimPrefix(tok, "fbt_"),
	}
	for name, bad := range cases {
		if _, err := s.Open(bad, now); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	// Every spelling of the last character but the one issued is refused,
	// including those that differ only in bits base64 leaves unused; three
	// trace id lengths give every length of sealed data modulo 3.
	for _, trace := range []string{"a", "ab", "abc"} {
		c := claims()
		c.TraceID = trace
		tok, err := s.Seal(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
			alt := tok[:len(tok)-1] + string(ch)
			if alt == tok {
				continue
			}
			if _, err := s.Open(alt, now); !errors.Is(err, token.ErrInvalid) {
				t.Errorf("trace %q, last character %q: got %v, want ErrInvalid", trace, ch, err)
			}
		}
	}
	if _, err := s.Open(tok, now.Add(time.Hour)); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("at expiry: got %v, want ErrInvalid", err)
	}
	if _, err := s.Open(tok, now.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
}

func TestNewSealerNeedsA256BitKey(t *testing.T) {
	if _, err := token.NewSealer(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}
