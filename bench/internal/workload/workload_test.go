package workload_test

import (
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/feedbackd/feedbackd/bench/internal/workload"
)

// The zero Shape is the uniform metadata make bench always sent: draw for
// draw, so that a run without shape flags sends exactly what it did.
func TestZeroShapeDrawsWhatMetadataDraws(t *testing.T) {
	want := rand.New(rand.NewPCG(1, 2))
	r := rand.New(rand.NewPCG(1, 2))
	g, err := workload.NewGenerator(r, 10_000, workload.Shape{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		if got, want := g.Metadata(), workload.Metadata(want, 10_000); !maps.Equal(got, want) {
			t.Fatalf("feedback %d: got %v, want %v", i, got, want)
		}
	}
}

func TestHotValueShareIsExact(t *testing.T) {
	g, err := workload.NewGenerator(rand.New(rand.NewPCG(1, 2)), 10_000, workload.Shape{HotValueShare: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	hot := 0
	for range 1000 {
		m := g.Metadata()
		if m["_prompt"] == workload.HotPrompt && m["_organisation"] == workload.HotOrganisation && m["model"] == workload.HotModel {
			hot++
		}
	}
	// p-0 alone can also be drawn, but never with org-0 and gpt-4o by chance this often.
	if hot < 300 || hot > 310 {
		t.Errorf("got %d of 1000 with the hot value, want 300 (and a few by chance at most)", hot)
	}
}

func TestZipfUsersConcentrate(t *testing.T) {
	g, err := workload.NewGenerator(rand.New(rand.NewPCG(1, 2)), 10_000, workload.Shape{ZipfUsers: 1.1})
	if err != nil {
		t.Fatal(err)
	}
	top := 0
	for range 10_000 {
		if g.Metadata()["_user"] == "user-0" {
			top++
		}
	}
	if top < 1000 {
		t.Errorf("got user-0 on %d of 10000, want a tenth or more", top)
	}
}

func TestSpreadGivesEachShareItsCount(t *testing.T) {
	shares := []float64{0.1, 0.5}
	s := workload.NewSpread(shares...)
	got := make([]int, len(shares))
	for n := 1; n <= 1000; n++ {
		if k := s.Next(); k >= 0 {
			got[k]++
		}
		for k, share := range shares {
			// One behind at most, when both fall due together.
			if due := int(float64(n) * share); got[k] != due && got[k] != due-1 {
				t.Fatalf("after %d items, share %g has %d, want %d", n, share, got[k], due)
			}
		}
	}
}

func TestSpreadOfOneShareIsExact(t *testing.T) {
	s := workload.NewSpread(0.1)
	got := 0
	for n := 1; n <= 1000; n++ {
		if s.Next() == 0 {
			got++
		}
		if want := n / 10; got != want {
			t.Fatalf("after %d items, got %d, want %d", n, got, want)
		}
	}
}

func TestShapeValidate(t *testing.T) {
	for _, s := range []workload.Shape{{ZipfUsers: 1}, {ZipfUsers: 0.5}, {HotValueShare: 1.5}, {HotValueShare: -0.1}} {
		if s.Validate() == nil {
			t.Errorf("%+v: got no error", s)
		}
	}
}
