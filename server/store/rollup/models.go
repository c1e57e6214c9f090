package rollup

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/feedbackd/feedbackd/server/store"
)

// feedbackd knows the AI model that served a request only through its
// feedback's metadata. A feedback's model is the string of its first model
// key that holds one (ModelOf); the model keys are the database's, set by
// the server's --model-keys, since every process writing to the database
// must derive the same model from the same row. The model rollups are the
// rollups of ModelMetaKey, whose meta value is the feedback's Dimension.

// DefaultModelKeys are the model keys of a database no server set others
// for.
var DefaultModelKeys = []string{"ai_model", "model"}

// ProviderKeys are the metadata keys that name a model's provider, first
// first, for Portkey's provider__model filter (OrgModelDimensions).
var ProviderKeys = []string{"ai_provider", "provider"}

// ModelMetaKey is the meta key of the model rollups. No metadata key is
// rolled up as "" (EntryValue), and a Dimension is never "", so the model
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

// ProviderOf returns the provider a feedback with metadata m names, if any.
func ProviderOf(m map[string]any) (string, bool) { return firstString(ProviderKeys, m) }

// SplitOrgModel splits Portkey's provider__model at its first "__"; ok is
// false when there is none.
func SplitOrgModel(item string) (provider, model string, ok bool) {
	return strings.Cut(item, orgModelSeparator)
}

// Dimension returns the meta value of the model rollups of a feedback with
// metadata m, and whether it has a model: the model and, when the feedback
// names one, its provider (the first string of ProviderKeys), spelled so
// that both can be told apart again: "-:" and the model without a
// provider, else the provider's length in characters, ":", the provider
// and the model. One rollup row then answers the ai-models graph (through
// DimensionModel) and Portkey's provider__model filter (OrgModelDimensions)
// alike.
func Dimension(keys []string, m map[string]any) (string, bool) {
	model, ok := ModelOf(keys, m)
	if !ok {
		return "", false
	}
	if provider, ok := ProviderOf(m); ok {
		return dimension(provider, model), true
	}
	return "-:" + model, true
}

func dimension(provider, model string) string {
	return strconv.Itoa(utf8.RuneCountInString(provider)) + ":" + provider + model
}

// DimensionModel returns the model of a Dimension.
func DimensionModel(d string) string {
	head, rest, _ := strings.Cut(d, ":")
	if head == "-" {
		return rest
	}
	n, _ := strconv.Atoi(head)
	for range n {
		_, size := utf8.DecodeRuneInString(rest)
		rest = rest[size:]
	}
	return rest
}

// OrgModelDimensions returns the Dimensions of the feedback that Portkey's
// ai_org_model items select: a feedback with a provider when provider +
// "__" + model is an item (at any "__" of it), one without when its model
// is an item or what follows an item's first "__".
func OrgModelDimensions(items []string) []string {
	var out []string
	add := func(d string) {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, item := range items {
		add("-:" + item)
		if _, model, ok := SplitOrgModel(item); ok && model != "" {
			add("-:" + model)
		}
		for i := 0; i+len(orgModelSeparator) <= len(item); i++ {
			if provider, model := item[:i], item[i+len(orgModelSeparator):]; item[i:i+len(orgModelSeparator)] == orgModelSeparator &&
				provider != "" && model != "" && utf8.RuneCountInString(provider) <= MaxEntryLength {
				add(dimension(provider, model))
			}
		}
	}
	return out
}

// ModelPlan is how a store answers the ai-models graph
// (Store.FeedbackModels).
type ModelPlan struct {
	Plan
	// Dimensions are the model rollups' meta values to read when Reads
	// is not empty; nil reads every model's.
	Dimensions []string
}

// PlanModels splits the ai-models graph between the model rollups and the
// rows: rollups answer a query filtered by nothing but time and models.
func PlanModels(q store.AnalyticsQuery) ModelPlan {
	from, to := q.From.UnixMicro(), q.To.UnixMicro()
	if len(q.TraceIDs) > 0 || q.WeightedMin != nil || q.WeightedMax != nil || len(q.Metadata) > 0 {
		return ModelPlan{Plan: Plan{Raw: [][2]int64{{from, to}}}}
	}
	p := ModelPlan{Dimensions: OrgModelDimensions(q.OrgModels)}
	p.cover(from, to, Grains)
	return p
}

// Models answers the plan: raw adds the rows created in [from, to] (Unix
// microseconds), rollups the model rollups of a range of slots with one
// dimension ("" for every one), both by Dimension as Tallies.AddRows reads
// them (traces unused), all from one snapshot. The models come ranked as
// Store.FeedbackModels ranks them.
func (p ModelPlan) Models(raw func(from, to int64, ts Tallies) error, rollups func(r Read, dimension string, ts Tallies) error) ([]store.ModelTally, error) {
	ts := Tallies{}
	for _, r := range p.Raw {
		if err := raw(r[0], r[1], ts); err != nil {
			return nil, err
		}
	}
	dims := p.Dimensions
	if dims == nil {
		dims = []string{""}
	}
	for _, r := range p.Reads {
		for _, d := range dims {
			if err := rollups(r, d, ts); err != nil {
				return nil, err
			}
		}
	}
	models := Tallies{}
	for d, s := range ts {
		models.Add(DimensionModel(d), *s)
	}
	out := make([]store.ModelTally, 0, len(models))
	for model, s := range models {
		if s.N > 0 {
			out = append(out, store.ModelTally{Model: model, Count: s.N, SumWeighted: s.SumWeighted})
		}
	}
	slices.SortFunc(out, func(a, b store.ModelTally) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Model, b.Model))
	})
	return out, nil
}
