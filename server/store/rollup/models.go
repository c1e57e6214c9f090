package rollup

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/server/store"
)

// feedbackd knows the AI model that served a request only through its
// feedback's metadata. A feedback's model is the string of its first model
// key that holds one (ModelOf); the model keys are the database's, set by
// the server's --model-keys, since every process writing to the database
// must derive the same model from the same row. The model rollups are the
// rollups of ModelMetaKey, whose meta value is the model.

// DefaultModelKeys are the model keys of a database no server set others
// for.
var DefaultModelKeys = []string{"ai_model", "model"}

// ProviderKeys are the metadata keys that name a model's provider, first
// first, for Portkey's provider__model filter (MatchesOrgModel).
var ProviderKeys = []string{"ai_provider", "provider"}

// ModelMetaKey is the meta key of the model rollups. No metadata key is
// rolled up as "" (EntryValue), and a model is never "", so the model
// rollups cannot meet those of all feedback ("" and "").
const ModelMetaKey = ""

// orgModelSeparator separates provider and model in Portkey's ai_org_model.
const orgModelSeparator = "__"

// CheckModelKeys says what is wrong with keys as model keys, if anything:
// one to eight names of letters, digits and _ - . : /, each spelled once,
// so that a store can name them in SQL as they are.
func CheckModelKeys(keys []string) error {
	if len(keys) == 0 || len(keys) > 8 {
		return fmt.Errorf("model keys: give 1 to 8 metadata keys, got %d", len(keys))
	}
	for i, k := range keys {
		if k == "" || len(k) > 64 || strings.IndexFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:/", r))
		}) >= 0 {
			return fmt.Errorf("model keys: %q is not a key of 1 to 64 letters, digits or _ - . : /", k)
		}
		if slices.Contains(keys[:i], k) {
			return fmt.Errorf("model keys: %q is given twice", k)
		}
	}
	return nil
}

// EncodeModelKeys is how a store keeps model keys, which hold no comma.
func EncodeModelKeys(keys []string) string { return strings.Join(keys, ",") }

// DecodeModelKeys reads what EncodeModelKeys wrote.
func DecodeModelKeys(stored string) ([]string, error) {
	keys := strings.Split(stored, ",")
	return keys, CheckModelKeys(keys)
}

// firstString returns the value of the first of keys that m holds as a
// string of 1 to MaxEntryLength characters.
func firstString(keys []string, m map[string]any) (string, bool) {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" && utf8.RuneCountInString(s) <= MaxEntryLength {
			return s, true
		}
	}
	return "", false
}

// ModelOf returns the model of a feedback with metadata m under the model
// keys, and whether it has one.
func ModelOf(keys []string, m map[string]any) (string, bool) { return firstString(keys, m) }

// SplitOrgModel splits Portkey's provider__model at its first "__"; ok is
// false when there is none.
func SplitOrgModel(item string) (provider, model string, ok bool) {
	return strings.Cut(item, orgModelSeparator)
}

// MatchesOrgModel says whether a feedback with metadata m is served by
// item, an ai_org_model filter's provider__model: its model is item's
// model and its provider item's provider or absent, or its model is item
// itself.
func MatchesOrgModel(keys []string, m map[string]any, item string) bool {
	model, ok := ModelOf(keys, m)
	if !ok {
		return false
	}
	if model == item {
		return true
	}
	p, mod, split := SplitOrgModel(item)
	if !split || model != mod {
		return false
	}
	provider, has := firstString(ProviderKeys, m)
	return !has || provider == p
}

// PlanModels splits the model graph between the model rollups and the
// rows: rollups answer a query filtered by nothing but time.
func PlanModels(q store.AnalyticsQuery) Plan {
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	if len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil || len(q.Metadata) > 0 || len(q.OrgModels) > 0 {
		return Plan{Raw: [][2]int64{{from, to}}}
	}
	var p Plan
	p.cover(from, to, Grains)
	return p
}

// Models answers the plan: raw adds the rows created in [from, to] (Unix
// microseconds), rollups the model rollups of a range of slots, both as
// Tallies.AddRows reads them (traces unused), all from one snapshot. The
// models come ranked as Store.FeedbackModels ranks them.
func (p Plan) Models(raw func(from, to int64, ts Tallies) error, rollups func(r Read, ts Tallies) error) ([]store.ModelTally, error) {
	ts := Tallies{}
	for _, r := range p.Raw {
		if err := raw(r[0], r[1], ts); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Reads {
		if err := rollups(r, ts); err != nil {
			return nil, err
		}
	}
	out := make([]store.ModelTally, 0, len(ts))
	for model, s := range ts {
		if s.N > 0 {
			out = append(out, store.ModelTally{Model: model, Count: s.N, SumWeighted: s.SumWeighted})
		}
	}
	slices.SortFunc(out, func(a, b store.ModelTally) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Model, b.Model))
	})
	return out, nil
}
