package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/bench/internal/workload"
)

// The open loop's requests are uniform by default: each to a new trace,
// its metadata drawn by workload.Metadata. Adversarial shapes concentrate
// them, each on what a store may serialize on, to every server alike, so
// that feedbackd is still measured beside its ceiling in the same run:
//
//   - -hot-share: a share to one trace filled first to -hot-rows feedback
//     (the trace's first-feedback bookkeeping);
//   - -zipf-users: the _user drawn by a Zipf law, a few users giving most
//     feedback (the rows of a _user's groups);
//   - -hot-value-share: a share with one and the same _prompt,
//     _organisation and model (the derived rows of that value, row locks
//     on PostgreSQL);
//   - -hot-id-share: a share sending one fixed feedback id on one trace, so
//     that each replaces the same feedback, as thumbs toggled again and
//     again do (one row, and its trace's first feedback).
//
// The metadata shapes are drawn into the corpus's pre-generated contents
// (workload.Generator); the hot trace and the hot id are prefixes that
// replace a new trace id on their share of the requests (hotBodies).

// openBodies returns the open loop's bodies of cfg's shape, filling the
// hot trace on feedbackd first when there is one.
func openBodies(ctx context.Context, cfg config, backend string, sv servers, c *corpus) (func() []byte, error) {
	if cfg.shape != (workload.Shape{}) {
		var err error
		if c, err = newCorpus(corpusSize, cfg.shape); err != nil {
			return nil, err
		}
	}
	var hots []hotBody
	if cfg.hotShare > 0 {
		trace := "open-hot-" + c.prefix
		// Every feedbackd compared (with -webhook, two) gets the same hot
		// trace.
		for _, p := range []*process{sv.fd, sv.hooked} {
			if p == nil {
				continue
			}
			if _, err := fillHot(ctx, newAPIClient(p.url), backend, trace, cfg.hotRows, newSkewed(2)); err != nil {
				return nil, fmt.Errorf("%s: fill the open loop's hot trace on %s: %w", backend, p.name, err)
			}
		}
		hots = append(hots, hotBody{cfg.hotShare, `{"trace_id":"` + trace})
	}
	if cfg.hotIDShare > 0 {
		// One workspace (the benchmark's key) on a fresh store: one id
		// is one feedback, created by the first request and replaced by
		// every later one.
		hots = append(hots, hotBody{cfg.hotIDShare, `{"id":"` + uuid.NewString() + `","trace_id":"open-hot-id-` + c.prefix})
	}
	return c.mixed(hots), nil
}

// hotBody is a share of the requests whose bodies start with prefix (up to
// the end of the trace id) instead of a new trace id.
type hotBody struct {
	share  float64
	prefix string
}

// mixed is single, but for each hot body's share of the bodies, spread
// evenly (workload.Spread), which start with its prefix instead.
func (c *corpus) mixed(hots []hotBody) func() []byte {
	if len(hots) == 0 {
		return c.single
	}
	shares := make([]float64, len(hots))
	for i, h := range hots {
		shares[i] = h.share
	}
	spread := workload.NewSpread(shares...)
	return func() []byte {
		k := spread.Next()
		if k < 0 {
			return c.single()
		}
		n := c.next.Add(1)
		buf := append(make([]byte, 0, 256), hots[k].prefix...)
		return append(buf, c.tails[n%uint64(len(c.tails))]...)
	}
}

// shapeFlags names the flags that shape the open loop's requests, with
// their values, or is empty when they are uniform.
func shapeFlags(cfg config) string {
	var flags []string
	for _, f := range []struct {
		name  string
		value float64
	}{{"-hot-share", cfg.hotShare}, {"-zipf-users", cfg.shape.ZipfUsers}, {"-hot-value-share", cfg.shape.HotValueShare}, {"-hot-id-share", cfg.hotIDShare}} {
		if f.value > 0 {
			flags = append(flags, f.name+" "+strconv.FormatFloat(f.value, 'g', -1, 64))
		}
	}
	if cfg.hotShare > 0 {
		flags = append(flags, "-hot-rows "+strconv.Itoa(cfg.hotRows))
	}
	return strings.Join(flags, " ")
}

// shapeProse says what the open loop's requests were, for the report.
func shapeProse(cfg config) string {
	if shapeFlags(cfg) == "" {
		return fmt.Sprintf("uniform: each request to a new trace, its _user of %d drawn uniformly, no hot metadata value or feedback id", corpusUsers)
	}
	var parts []string
	if cfg.hotShare > 0 {
		parts = append(parts, fmt.Sprintf("%s of the requests to one trace filled first to %d feedback", percent(cfg.hotShare), cfg.hotRows))
	}
	if cfg.shape.ZipfUsers > 0 {
		parts = append(parts, fmt.Sprintf("_user drawn by a Zipf law of exponent %g over %d users", cfg.shape.ZipfUsers, corpusUsers))
	}
	if cfg.shape.HotValueShare > 0 {
		parts = append(parts, fmt.Sprintf("%s with _prompt %s, _organisation %s and model %s", percent(cfg.shape.HotValueShare),
			workload.HotPrompt, workload.HotOrganisation, workload.HotModel))
	}
	if cfg.hotIDShare > 0 {
		parts = append(parts, fmt.Sprintf("%s sending one fixed feedback id on one trace, each replacing the same feedback", percent(cfg.hotIDShare)))
	}
	return fmt.Sprintf("`%s`: %s", shapeFlags(cfg), strings.Join(parts, "; "))
}

func percent(share float64) string { return strconv.FormatFloat(100*share, 'g', 3, 64) + "%" }
