package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd"
)

// version describes this binary in one line: the release, which is the
// version of the contract it serves (openapi.yaml's info.version, bumped
// with CHANGELOG.md at each release), then the commit, its time and
// whether the tree had uncommitted changes, as go build stamped them.
func version() (string, error) {
	rel, err := release()
	if err != nil {
		return "", err
	}
	build := []string{"commit unknown"}
	goVersion := "go unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		vcs := map[string]string{}
		for _, s := range info.Settings {
			vcs[s.Key] = s.Value
		}
		if rev := vcs["vcs.revision"]; rev != "" {
			build = []string{"commit " + rev}
			if t := vcs["vcs.time"]; t != "" {
				build = append(build, t)
			}
			if vcs["vcs.modified"] == "true" {
				build = append(build, "with uncommitted changes")
			}
		}
	}
	return fmt.Sprintf("feedbackd %s (%s; %s)", rel, strings.Join(build, ", "), goVersion), nil
}

// release is the release this binary is: the version of the contract it
// serves.
func release() (string, error) {
	doc, err := openapi3.NewLoader().LoadFromData(feedbackd.OpenAPI())
	if err != nil {
		return "", fmt.Errorf("read the embedded contract: %w", err)
	}
	return doc.Info.Version, nil
}
