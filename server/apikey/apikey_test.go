package apikey_test

import (
	"regexp"
	"testing"

	"github.com/feedbackd/feedbackd/server/apikey"
)

func TestGenerateMakesDistinctPrefixedKeys(t *testing.T) {
	format := regexp.MustCompile(`^fbk_[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 100 {
		key, hash := apikey.Generate()
		if !format.MatchString(key) {
			t.Fatalf("key %q does not match %s", key, format)
		}
		if seen[key] {
			t.Fatalf("key %q generated twice", key)
		}
		seen[key] = true
		if !apikey.Equal(hash, apikey.Hash(key)) {
			t.Fatalf("hash of %q is not Hash(key)", key)
		}
	}
}

func TestFromHeaders(t *testing.T) {
	cases := []struct{ portkey, auth, want string }{
		{"fbk_a", "", "fbk_a"},
		{"", "Bearer fbk_b", "fbk_b"},
		{"", "bearer  fbk_c ", "fbk_c"},
		{"fbk_a", "Bearer fbk_b", "fbk_a"},
		{"", "Basic fbk_b", ""},
		{"", "fbk_b", ""},
		{"  ", "", ""},
	}
	for _, c := range cases {
		if got := apikey.FromHeaders(c.portkey, c.auth); got != c.want {
			t.Errorf("FromHeaders(%q, %q): got %q, want %q", c.portkey, c.auth, got, c.want)
		}
	}
}
