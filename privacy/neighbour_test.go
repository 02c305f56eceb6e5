package privacy

import (
	"math"
	"testing"

	"github.com/ctfed/ctfed/privacy/privacytest"
)

// TestNeighbourDP checks (ε, δ) on neighbouring datasets from output
// histograms. A case reaching L0 cells is removed (D) or added (D′): each of
// its L0 cells holds one more case in D′. The output studied is the sum of
// the L0 noisy counts, the statistic where one case's whole contribution
// adds up. With the noise scaled to L0 the lower confidence bound on the
// privacy loss must not exceed ε; with the noise scaled as if L0 were 1 it
// must (the check has power).
func TestNeighbourDP(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		n    int
	}{
		// Laplace: scaled as if L0 were 1, the sum of 3 counts carries a loss
		// of about 1.5–2 (instead of at most 1) where most of its mass is.
		{"Laplace", Spec{Laplace, 1, 0, 3, 1}, 30_000},
		// Gaussian: scaled as if L0 were 1, the shift of 9 cells is 3 times
		// as many standard deviations. The Gaussian mechanism pays most of
		// its ε in the far tails, so the check uses a large δ (10^-2) for the
		// loss to show where the outputs are.
		{"Gaussian", Spec{Gaussian, 2, 1e-2, 9, 1}, 13_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSpec(t, tc.spec)
			n := draws(tc.n)
			const base = 20 // every cell's count in D
			sample := func(spec Spec, extra int64) []float64 {
				out := make([]float64, n)
				for i := range out {
					var sum float64
					for range tc.spec.L0 {
						e, err := NoisyCount(base+extra, spec)
						if err != nil {
							t.Fatal(err)
						}
						sum += e.Value
					}
					out[i] = sum - base*float64(tc.spec.L0)
				}
				return out
			}
			wrong := s
			wrong.L0 = 1
			for _, c := range []struct {
				name string
				spec Spec
				pass bool
			}{{"ScaledToL0", s, true}, {"ScaledAsL0One", wrong, false}} {
				sd := math.Sqrt(float64(s.L0) * c.spec.Noise().Variance()) // of the sum
				edges := span(math.Floor(-4*sd), math.Ceil(float64(s.L0)+4*sd), math.Max(1, math.Round(sd/4)))
				loss := privacytest.PrivacyLoss(sample(c.spec, 0), sample(c.spec, 1), edges, s.Delta, alpha)
				t.Logf("%s: noise %s %.3f per cell, %d outputs per dataset: privacy loss lower bound %.3f (point %.3f) for ε = %v",
					c.name, c.spec.Mechanism, c.spec.Noise().Scale, n, loss.Lower, loss.Point, s.Epsilon)
				if c.pass && loss.Lower > s.Epsilon {
					t.Errorf("%s: privacy loss lower bound %v exceeds ε = %v", c.name, loss.Lower, s.Epsilon)
				}
				if !c.pass && loss.Lower <= s.Epsilon {
					t.Errorf("%s: privacy loss lower bound %v, want above ε = %v (the check has no power)", c.name, loss.Lower, s.Epsilon)
				}
			}
		})
	}
}

// span returns from, from+step, … up to to.
func span(from, to, step float64) []float64 {
	var out []float64
	for x := from; x <= to+1e-9; x += step {
		out = append(out, math.Round(x*1e9)/1e9)
	}
	return out
}
