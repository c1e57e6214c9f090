// Package workload is the metadata of the feedback make bench sends, shared
// so that bench/floor stores the same kind of rows it measures.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
)

// Values of the generated metadata.
var (
	environments = []string{"production", "production", "staging", "development"}
	models       = []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"}
	comments     = []string{"spot on", "too long", "wrong answer, the refund policy changed", "thanks!", "did not answer the question"}
)

// The hot metadata value: what a Shape's HotValueShare of the feedback
// carries, one value each of keys that derived rows are kept by.
const (
	HotPrompt       = "p-0"
	HotOrganisation = "org-0"
	HotModel        = "gpt-4o"
)

// Metadata returns one feedback's metadata: a _user of users and a _prompt
// of 50 always, an _organisation of 100 on half, an _environment on three
// quarters, a model on a third, a comment on a tenth.
func Metadata(r *rand.Rand, users int) map[string]string {
	return metadata(r, fmt.Sprintf("user-%d", r.IntN(users)), false)
}

// metadata is Metadata's with the _user drawn; hot overrides the _prompt,
// _organisation and model with the hot value after drawing them, so that a
// hot feedback differs from a uniform one in these three keys only.
func metadata(r *rand.Rand, user string, hot bool) map[string]string {
	meta := map[string]string{
		"_user":   user,
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
	if hot {
		meta["_prompt"], meta["_organisation"], meta["model"] = HotPrompt, HotOrganisation, HotModel
	}
	return meta
}

// Shape is how skewed the generated metadata is; the zero Shape is
// Metadata's, uniform.
type Shape struct {
	// ZipfUsers, above 1, draws the _user by a Zipf law of that exponent
	// (user-0 the most frequent), so that a few users give most of the
	// feedback; 0 draws it uniformly.
	ZipfUsers float64
	// HotValueShare is the share of feedback, spread evenly, whose
	// _prompt, _organisation and model are HotPrompt, HotOrganisation and
	// HotModel: every such write updates the same derived rows.
	HotValueShare float64
}

// Validate rejects a shape no Generator can draw.
func (s Shape) Validate() error {
	if s.ZipfUsers != 0 && !(s.ZipfUsers > 1) {
		return fmt.Errorf("a Zipf exponent must be above 1 (or 0: uniform), not %g", s.ZipfUsers)
	}
	if !(s.HotValueShare >= 0 && s.HotValueShare <= 1) {
		return fmt.Errorf("a hot value's share must be from 0 to 1, not %g", s.HotValueShare)
	}
	return nil
}

// Generator draws metadata of one Shape from one source, one feedback at a
// time; it is not safe for concurrent use.
type Generator struct {
	r     *rand.Rand
	users int
	zipf  *rand.Zipf // nil when the _user is uniform
	hot   *Spread
}

// NewGenerator draws the metadata of feedback of shape s, with a _user of
// users, from r. With the zero Shape it draws what Metadata does, draw for
// draw.
func NewGenerator(r *rand.Rand, users int, s Shape) (*Generator, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{r: r, users: users, hot: NewSpread(s.HotValueShare)}
	if s.ZipfUsers > 0 {
		g.zipf = rand.NewZipf(r, s.ZipfUsers, 1, uint64(users-1))
	}
	return g, nil
}

// Metadata returns the next feedback's metadata: Metadata's, with the
// _user and the hot value drawn as the shape says.
func (g *Generator) Metadata() map[string]string {
	var user int
	if g.zipf != nil {
		user = int(g.zipf.Uint64())
	} else {
		user = g.r.IntN(g.users)
	}
	return metadata(g.r, fmt.Sprintf("user-%d", user), g.hot.Next() == 0)
}

// Spread picks items of a sequence for shares of it, each share's spread
// evenly over the sequence: of the first n items, floor(n*share) go to each
// share (one behind at most when shares fall due together), as long as the
// shares add up to at most 1. It is safe for concurrent use.
type Spread struct {
	mu     sync.Mutex
	shares []float64
	n      uint64
	taken  []uint64
}

// NewSpread picks items for shares, in the order given.
func NewSpread(shares ...float64) *Spread {
	return &Spread{shares: shares, taken: make([]uint64, len(shares))}
}

// Next returns the share the next item goes to, as its index among the
// shares, or -1 when it goes to none: the share furthest behind its due
// count, the first of those as far.
func (s *Spread) Next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	pick, behind := -1, uint64(0)
	for k, share := range s.shares {
		due := uint64(math.Floor(float64(s.n) * share))
		if due > s.taken[k] && due-s.taken[k] > behind {
			pick, behind = k, due-s.taken[k]
		}
	}
	if pick >= 0 {
		s.taken[pick]++
	}
	return pick
}
