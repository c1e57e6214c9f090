package feedbackd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// lastRelease is the newest release CHANGELOG.md names, and its spec.
func lastRelease(t *testing.T) (version, spec string) {
	t.Helper()
	changelog, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$`).FindSubmatch(changelog)
	if m == nil {
		t.Fatal("CHANGELOG.md names no release (## [x.y.z] - YYYY-MM-DD)")
	}
	version = string(m[1])
	b, err := os.ReadFile(filepath.Join("compat", "released", "openapi-"+version+".yaml"))
	if err != nil {
		t.Fatalf("release %s keeps no spec: %v", version, err)
	}
	return version, string(b)
}

// semver splits x.y.z into numbers for comparison.
func semver(t *testing.T, v string) [3]int {
	t.Helper()
	var out [3]int
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		t.Fatalf("version %q is not x.y.z", v)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("version %q is not x.y.z", v)
		}
		out[i] = n
	}
	return out
}

// The released spec is what that release served, and openapi.yaml's
// version (which feedbackd version prints) is that release or a later one.
func TestTheLastReleaseKeepsItsSpec(t *testing.T) {
	version, spec := lastRelease(t)
	released, err := openapi3.NewLoader().LoadFromData([]byte(spec))
	if err != nil {
		t.Fatalf("released spec: %v", err)
	}
	if released.Info.Version != version {
		t.Errorf("compat/released/openapi-%s.yaml says version %s", version, released.Info.Version)
	}
	current := loadSpec(t).Info.Version
	if c, r := semver(t, current), semver(t, version); c[0] < r[0] || c[0] == r[0] && (c[1] < r[1] || c[1] == r[1] && c[2] < r[2]) {
		t.Errorf("openapi.yaml's version %s is older than the last release %s", current, version)
	}
}

// checkBreaking runs make check-breaking's script on spec with the allow
// file allow, and returns whether it passed and what it printed.
func checkBreaking(t *testing.T, spec, allow string) (bool, string) {
	t.Helper()
	dir := t.TempDir()
	specFile, allowFile := filepath.Join(dir, "openapi.yaml"), filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(allowFile, []byte(allow), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "scripts/check-breaking.sh", specFile, allowFile).CombinedOutput()
	if _, failed := err.(*exec.ExitError); err != nil && !failed {
		t.Fatalf("run the check: %v", err)
	}
	return err == nil, string(out)
}

// edit replaces old, which must occur exactly once, by new.
func edit(t *testing.T, spec, old, new string) string {
	t.Helper()
	if n := strings.Count(spec, old); n != 1 {
		t.Fatalf("the edit's anchor occurs %d times in the released spec, want once:\n%s", n, old)
	}
	return strings.Replace(spec, old, new, 1)
}

// make test compares openapi.yaml with the last released spec: a change
// that breaks that release's clients fails unless it is listed with a
// reason; an additive change passes.
func TestBreakingChangesFailTheCheck(t *testing.T) {
	_, released := lastRelease(t)
	const header = "# accepted breaks\n\n"
	tighter := edit(t, released, `
      type: integer
      minimum: -10
      maximum: 10
      example: 5
`, `
      type: integer
      minimum: -10
      maximum: 5
      example: 5
`)
	removed := edit(t, released, `
        updated_at:
          type: string
          format: date-time
          minLength: 1
          description: When the feedback was last updated; `+"`created_at`"+` until then.
          example: '2026-11-26T17:00:00.123456Z'
`, "\n")
	additive := edit(t, released, `
      properties:
        trace_id:
          $ref: '#/components/schemas/TraceID'
        value:
          $ref: '#/components/schemas/FeedbackValue'
        weight:
          $ref: '#/components/schemas/FeedbackWeight'
        metadata:
          $ref: '#/components/schemas/Metadata'

    FeedbackUpdate:`, `
      properties:
        trace_id:
          $ref: '#/components/schemas/TraceID'
        value:
          $ref: '#/components/schemas/FeedbackValue'
        weight:
          $ref: '#/components/schemas/FeedbackWeight'
        metadata:
          $ref: '#/components/schemas/Metadata'
        comment:
          type: string
          maxLength: 10

    FeedbackUpdate:`)
	// The tightening as the check prints it: once per operation that takes
	// a value.
	tighterChanges := []string{
		"POST /feedback the `oneOf[#/components/schemas/FeedbackRequest]/value` request property's max was decreased to `5.00`" +
			" (shared schema: `FeedbackValue`, also at `oneOf[#/components/schemas/FeedbackRequestList]/items/value`," +
			" `oneOf[#/components/schemas/FeedbackRequestIndexed]/additionalProperties/value`)",
		"POST /feedback/tokens/{token} the `value` request property's max was decreased to `5.00`",
		"POST /feedback/{id} the `value` request property's max was decreased to `5.00`",
		"PUT /feedback/{id} the `value` request property's max was decreased to `5.00`",
	}
	withReason := func(changes []string) string {
		var b strings.Builder
		b.WriteString(header)
		for _, c := range changes {
			b.WriteString(c + "  # scores above 5 were never sent\n")
		}
		return b.String()
	}

	for _, tc := range []struct {
		name, spec, allow string
		pass              bool
		says              []string
	}{
		{"the released spec itself passes", released, header, true, []string{"no unlisted breaking change"}},
		{"a tightened limit fails", tighter, header, false, append([]string{"request-property-max-decreased"}, tighterChanges[1:]...)},
		{"a removed response field fails", removed, header, false, []string{
			"GET /feedback/{id} removed the required property `updated_at` from the response with the `200` status",
		}},
		{"a new optional member passes", additive, header, true, []string{"no unlisted breaking change"}},
		{"a tightened limit listed with reasons passes", tighter, withReason(tighterChanges), true, nil},
		{"a listed break still fails where one of its operations is not listed", tighter, withReason(tighterChanges[1:]), false, []string{"request property's max was decreased"}},
		{"an entry without a reason fails", tighter, header + strings.Join(tighterChanges, "\n") + "\n", false, []string{"give no reason"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			passed, out := checkBreaking(t, tc.spec, tc.allow)
			if passed != tc.pass {
				t.Fatalf("check passed: %v, want %v; it printed:\n%s", passed, tc.pass, out)
			}
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("the check's output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}
