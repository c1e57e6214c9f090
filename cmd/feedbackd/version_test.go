package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// feedbackd version names the release, which is the contract's version,
// and the commit the binary was built from.
func TestVersionNamesTheReleaseAndTheCommit(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, nil, "version")
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if want := "feedbackd " + doc.Info.Version + " ("; !strings.HasPrefix(out, want) {
		t.Errorf("version: got %q, want it to start with %q", out, want)
	}

	// A binary built from a git checkout, as make build builds it, knows
	// its commit.
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): the commit is not checked", err)
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	built, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	if want := "feedbackd " + doc.Info.Version + " (commit " + strings.TrimSpace(string(head)); !strings.HasPrefix(string(built), want) {
		t.Errorf("built binary's version: got %q, want it to start with %q", built, want)
	}
}
