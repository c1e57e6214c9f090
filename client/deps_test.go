package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A program that imports the client links neither Echo nor the server.
func TestClientDoesNotLinkTheServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "labstack/echo") || strings.Contains(dep, "kin-openapi") ||
			strings.HasPrefix(dep, "github.com/feedbackd/feedbackd/server") || strings.HasPrefix(dep, "github.com/feedbackd/feedbackd/gen") {
			t.Errorf("client depends on %s", dep)
		}
	}
}
