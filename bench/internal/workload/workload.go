// Package workload is the metadata of the feedback make bench sends, shared
// so that bench/floor stores the same kind of rows it measures.
package workload

import (
	"fmt"
	"math/rand/v2"
)

// Values of the generated metadata.
var (
	environments = []string{"production", "production", "staging", "development"}
	models       = []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"}
	comments     = []string{"spot on", "too long", "wrong answer, the refund policy changed", "thanks!", "did not answer the question"}
)

// Metadata returns one feedback's metadata: a _user of users and a _prompt
// of 50 always, an _organisation of 100 on half, an _environment on three
// quarters, a model on a third, a comment on a tenth.
func Metadata(r *rand.Rand, users int) map[string]string {
	meta := map[string]string{
		"_user":   fmt.Sprintf("user-%d", r.IntN(users)),
		"_prompt": fmt.Sprintf("p-%d", r.IntN(50)),
	}
	if r.IntN(2) == 0 {
		meta["_organisation"] = fmt.Sprintf("org-%d", r.IntN(100))
	}
	if r.IntN(4) > 0 {
		meta["_environment"] = environments[r.IntN(len(environments))]
	}
	if r.IntN(3) == 0 {
		meta["model"] = models[r.IntN(len(models))]
	}
	if r.IntN(10) == 0 {
		meta["comment"] = comments[r.IntN(len(comments))]
	}
	return meta
}
