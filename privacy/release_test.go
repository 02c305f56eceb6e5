package privacy

import (
	"math"
	"testing"

	"github.com/ctfed/ctfed/privacy/privacytest"
)

func TestRelease(t *testing.T) {
	for _, tc := range []struct {
		name     string
		count    Estimate
		min      int64
		released bool
		reason   string
	}{
		{"OK", Estimate{Value: 12, Lo: 6, Hi: 18}, 5, true, ""},
		{"OKAtMinimum", Estimate{Value: 7, Lo: 1, Hi: 13}, 7, true, ""},
		{"BelowMinimum", Estimate{Value: 4, Lo: 3.5, Hi: 4.5}, 5, false, ReasonBelowMinimum},
		{"BelowMinimumFirst", Estimate{Value: 3, Lo: -3, Hi: 9}, 5, false, ReasonBelowMinimum},
		{"Negative", Estimate{Value: -2, Lo: -8, Hi: 4}, 5, false, ReasonBelowMinimum},
		{"Indistinguishable", Estimate{Value: 6, Lo: 0, Hi: 12}, 5, false, ReasonIndistinguishable},
		{"IndistinguishableNoMinimum", Estimate{Value: 1, Lo: -5, Hi: 7}, 0, false, ReasonIndistinguishable},
		{"NaN", Estimate{Value: math.NaN()}, 0, false, ReasonBelowMinimum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			released, reason := Release(tc.count, tc.min)
			if released != tc.released || reason != tc.reason {
				t.Fatalf("got %v %q, want %v %q", released, reason, tc.released, tc.reason)
			}
			released, reason = ReleaseTotal(Combined{Value: tc.count.Value, Lo: tc.count.Lo, Hi: tc.count.Hi}, tc.min)
			if released != tc.released || reason != tc.reason {
				t.Fatalf("ReleaseTotal: got %v %q, want %v %q", released, reason, tc.released, tc.reason)
			}
		})
	}
}

func TestReleaseProbability(t *testing.T) {
	// Laplace b = 2 (ε 0.5): half-width 6, so a cell shows when its noisy
	// count is at least 7: P(N ≥ 7 − c) = ½·e^(−(6.5 − c)/2).
	s := Spec{Laplace, 0.5, 0, 1, 1}
	for _, c := range []int64{0, 1, 3} {
		got, err := ReleaseProbability(c, s, 5)
		if err != nil {
			t.Fatal(err)
		}
		want := 0.5 * math.Exp(-(6.5-float64(c))/2)
		if math.Abs(got-want) > 1e-12 {
			t.Fatalf("true count %d: got %v, want %v", c, got, want)
		}
	}
	// With a large minimum the minimum decides.
	got, _ := ReleaseProbability(0, s, 20)
	if want := 0.5 * math.Exp(-19.5/2); math.Abs(got-want) > 1e-15 {
		t.Fatalf("minimum 20: got %v, want %v", got, want)
	}
	if _, err := ReleaseProbability(-1, s, 5); err == nil {
		t.Fatal("negative true count: got nil error, want one")
	}
	if _, err := ReleaseProbability(0, Spec{}, 5); err == nil {
		t.Fatal("invalid spec: got nil error, want one")
	}
}

// releaseRate draws n noisy counts of trueCount and returns how many are
// shown by the release rule.
func releaseRate(t *testing.T, trueCount int64, s Spec, minSize int64, n int) int {
	t.Helper()
	shown := 0
	for range n {
		e, err := NoisyCount(trueCount, s)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := Release(e, minSize); ok {
			shown++
		}
	}
	return shown
}

// TestReleaseRate checks that a cell of true count 10 at ε = 0.1 is
// suppressed at the rate its noise predicts (neither never nor always).
func TestReleaseRate(t *testing.T) {
	s := mustSpec(t, Spec{Laplace, 0.1, 0, 1, 1})
	p, err := ReleaseProbability(10, s, DefaultMinCellSize)
	if err != nil {
		t.Fatal(err)
	}
	n := draws(40_000)
	suppressed := n - releaseRate(t, 10, s, DefaultMinCellSize, n)
	lo, hi := privacytest.BinomialInterval(suppressed, n, alpha)
	t.Logf("true count 10, ε 0.1, minimum %d: suppressed %d of %d (%.4f, interval [%.4f, %.4f]); predicted %.4f",
		DefaultMinCellSize, suppressed, n, float64(suppressed)/float64(n), lo, hi, 1-p)
	if suppressed == 0 || suppressed == n {
		t.Fatalf("suppressed %d of %d, want neither none nor all", suppressed, n)
	}
	if 1-p < lo || 1-p > hi {
		t.Fatalf("suppression rate: got %d of %d (interval [%v, %v]), want %v", suppressed, n, lo, hi, 1-p)
	}
}

// TestPhantomRates checks how often a true 0 and a true 1 still show as a
// number at the default ε 0.5 and minimum 5, against ReleaseProbability, and
// prints the figures given in docs/privacy.md.
func TestPhantomRates(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"Laplace", Spec{Laplace, DefaultQueryEpsilon, 0, 1, 1}},
		{"Gaussian", Spec{Gaussian, DefaultQueryEpsilon, DefaultGaussianDelta, 1, 1}},
	} {
		for _, c := range []int64{0, 1} {
			t.Run(tc.name+"/"+[]string{"Zero", "One"}[c], func(t *testing.T) {
				s := mustSpec(t, tc.spec)
				p, err := ReleaseProbability(c, s, DefaultMinCellSize)
				if err != nil {
					t.Fatal(err)
				}
				n := draws(30_000)
				shown := releaseRate(t, c, s, DefaultMinCellSize, n)
				lo, hi := privacytest.BinomialInterval(shown, n, alpha)
				t.Logf("%s ε %v: true count %d shows as a number with probability %.4f (measured %d of %d = %.4f, interval [%.4f, %.4f])",
					s.Mechanism, s.Epsilon, c, p, shown, n, float64(shown)/float64(n), lo, hi)
				if p < lo || p > hi {
					t.Fatalf("phantom rate: got %d of %d (interval [%v, %v]), want %v", shown, n, lo, hi, p)
				}
			})
		}
	}
	t.Run("Table", func(t *testing.T) {
		// The analytic figures for docs/privacy.md (minimum 5).
		for _, m := range []Mechanism{Laplace, Gaussian} {
			for _, l0 := range []int64{1, 3} {
				for _, eps := range []float64{0.1, 0.25, 0.5, 1} {
					s := Spec{Mechanism: m, Epsilon: eps, L0: l0, LInf: 1}
					if m == Gaussian {
						s.Delta = DefaultGaussianDelta
					}
					p0, _ := ReleaseProbability(0, s, DefaultMinCellSize)
					p1, _ := ReleaseProbability(1, s, DefaultMinCellSize)
					p10, _ := ReleaseProbability(10, s, DefaultMinCellSize)
					n := s.Noise()
					t.Logf("%-8s ε %-4v L0 %d: scale %7.3f, ±%3.0f: P(shown | 0) %.4f, P(shown | 1) %.4f, P(shown | 10) %.4f",
						m, eps, l0, n.Scale, n.HalfWidth(), p0, p1, p10)
				}
			}
		}
	})
}
