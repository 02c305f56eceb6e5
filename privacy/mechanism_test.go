package privacy

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/ctfed/ctfed/privacy/privacytest"
	"github.com/google/differential-privacy/go/v3/noise"
)

func TestMechanism(t *testing.T) {
	for _, m := range []Mechanism{Laplace, Gaussian} {
		t.Run(m.String(), func(t *testing.T) {
			got, err := ParseMechanism(m.String())
			if err != nil || got != m {
				t.Fatalf("ParseMechanism(%q): got %v, %v, want %v", m.String(), got, err, m)
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var back Mechanism
			if err := json.Unmarshal(b, &back); err != nil || back != m {
				t.Fatalf("JSON round trip of %s: got %v, %v", b, back, err)
			}
		})
	}
	t.Run("ErrUnknown", func(t *testing.T) {
		if _, err := ParseMechanism("Laplace"); err == nil {
			t.Fatal("got nil error, want one")
		}
		if _, err := json.Marshal(Mechanism(7)); err == nil {
			t.Fatal("got nil error marshalling mechanism 7, want one")
		}
	})
}

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"OK", Spec{Laplace, 0.5, 0, 1, 1}, true},
		{"OKGaussian", Spec{Gaussian, 0.5, 1e-6, 3, 100}, true},
		{"ErrEpsilonZero", Spec{Laplace, 0, 0, 1, 1}, false},
		{"ErrEpsilonNegative", Spec{Laplace, -1, 0, 1, 1}, false},
		{"ErrEpsilonInf", Spec{Laplace, math.Inf(1), 0, 1, 1}, false},
		{"ErrEpsilonNaN", Spec{Laplace, math.NaN(), 0, 1, 1}, false},
		{"ErrEpsilonTiny", Spec{Laplace, 1e-16, 0, 1, 1}, false},
		{"ErrLaplaceDelta", Spec{Laplace, 0.5, 1e-6, 1, 1}, false},
		{"ErrGaussianNoDelta", Spec{Gaussian, 0.5, 0, 1, 1}, false},
		{"ErrDeltaOne", Spec{Gaussian, 0.5, 1, 1, 1}, false},
		{"ErrDeltaNaN", Spec{Gaussian, 0.5, math.NaN(), 1, 1}, false},
		{"ErrL0", Spec{Laplace, 0.5, 0, 0, 1}, false},
		{"ErrLInf", Spec{Laplace, 0.5, 0, 1, 0}, false},
		{"ErrOverflow", Spec{Laplace, 0.5, 0, 1 << 30, 1 << 30}, false},
		{"ErrScaleTooSmall", Spec{Laplace, 5000, 0, 1, 1}, false},
		{"ErrScaleTooLarge", Spec{Laplace, 1e-9, 0, 10, 600}, false},
		{"ErrMechanism", Spec{Mechanism(9), 0.5, 0, 1, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v): got %v, want ok=%v", tc.spec, err, tc.ok)
			}
			if _, err := NoisySum(10, tc.spec); (err == nil) != tc.ok {
				t.Fatalf("NoisySum: got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestSpecNoise(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"LaplaceCount", Spec{Laplace, 0.5, 0, 1, 1}},
		{"LaplaceL0", Spec{Laplace, 0.3, 0, 6, 1}},
		{"LaplaceSum", Spec{Laplace, 0.25, 0, 2, 600}},
		{"GaussianCount", Spec{Gaussian, 0.5, 1e-6, 1, 1}},
		{"GaussianSum", Spec{Gaussian, 0.25, 5e-7, 3, 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			n := s.Noise()
			if s.Mechanism == Laplace {
				want := float64(s.L0*s.LInf) / s.Epsilon
				if math.Abs(n.Scale-want) > 1e-9*want || n.Scale < want {
					t.Fatalf("Laplace scale: got %v, want L0·LInf/ε = %v (plus the granularity)", n.Scale, want)
				}
			} else {
				want := noise.SigmaForGaussian(s.L0, float64(s.LInf), s.Epsilon, s.Delta)
				if n.Scale != want {
					t.Fatalf("Gaussian scale: got %v, want %v", n.Scale, want)
				}
			}
			h := n.HalfWidth()
			if h != math.Trunc(h) || n.Within(h) < Level || (h > 0 && n.Within(h-1) >= Level) {
				t.Fatalf("HalfWidth %v: coverage %v, one less %v; want the smallest whole number covering 95%%", h, n.Within(h), n.Within(h-1))
			}
			// The interval of a release is value ∓ HalfWidth.
			e, err := NoisySum(1000, s)
			if err != nil {
				t.Fatal(err)
			}
			if e.Lo != e.Value-h || e.Hi != e.Value+h || e.Scale != n.Scale || e.L0 != s.L0 || e.LInf != s.LInf || e.Mechanism != s.Mechanism {
				t.Fatalf("estimate %+v does not carry the spec's noise %+v and half-width %v", e, n, h)
			}
			if e.Value != math.Trunc(e.Value) {
				t.Fatalf("got non-integer release %v", e.Value)
			}
		})
	}
	t.Run("RoundingMatters", func(t *testing.T) {
		// The continuous interval ±b·ln 20 holds a rounded Laplace count of
		// b = 2 only 93.6% of the time; the whole-number half-width fixes it.
		n := Noise{Laplace, 2}
		if c := n.Within(2 * math.Log(20)); c >= Level {
			t.Fatalf("coverage of ±b·ln20: got %v, want below 0.95", c)
		}
		if h := n.HalfWidth(); h != 6 {
			t.Fatalf("HalfWidth: got %v, want 6", h)
		}
	})
}

func TestNoisyCountForcesLInf(t *testing.T) {
	c, err := NoisyCount(3, Spec{Laplace, 1, 0, 2, 50})
	if err != nil {
		t.Fatal(err)
	}
	if c.LInf != 1 || !near(c.Scale, 2) {
		t.Fatalf("got LInf %d scale %v, want 1 and 2", c.LInf, c.Scale)
	}
	h, err := NoisyHistogram([]int64{1, 2, 3}, Spec{Laplace, 1, 0, 2, 50})
	if err != nil {
		t.Fatal(err)
	}
	if h.LInf != 1 || !near(h.Scale, 2) || len(h.Bins) != 3 {
		t.Fatalf("got %+v, want 3 bins, LInf 1, scale 2", h)
	}
	sum, count, err := NoisySumAndCount(100, 3, Spec{Laplace, 1, 0, 2, SumLInf(0, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if !near(sum.Scale, 400) || !near(count.Scale, 4) || sum.LInf != 100 {
		t.Fatalf("got sum %+v count %+v, want scales 400 and 4 (ε split in half)", sum, count)
	}
	cnt, hist, err := NoisyCountAndHistogram(3, []int64{1, 2}, Spec{Gaussian, 1, 2e-6, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Spec{Gaussian, 0.5, 1e-6, 1, 1}).Noise().Scale; cnt.Scale != want || hist.Scale != want {
		t.Fatalf("got scales %v and %v, want %v (ε and δ split in half)", cnt.Scale, hist.Scale, want)
	}
	if got := SumLInf(-7, 5); got != 7 {
		t.Fatalf("SumLInf(-7, 5): got %d, want 7", got)
	}
}

// near reports whether a Laplace scale is b up to the library's granularity.
func near(scale, b float64) bool { return math.Abs(scale-b) <= 1e-9*b }

// TestNoiseScale checks that the noise of a released count and of a released
// sum has exactly the distribution Spec.Noise claims (the library's noise
// rounded to a whole number): the Kolmogorov–Smirnov distance of draws to
// the claimed CDF is within the DKW bound, and the same distance to the CDF
// of half the scale is beyond it, so the test would catch a wrong scale.
func TestNoiseScale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  Spec
		exact int64
		count bool
	}{
		{"LaplaceCount", Spec{Laplace, 0.5, 0, 1, 1}, 10, true},
		{"LaplaceSum", Spec{Laplace, 0.25, 0, 2, 100}, 12345, false},
		{"GaussianCount", Spec{Gaussian, 0.5, 1e-6, 1, 1}, 10, true},
		{"GaussianSum", Spec{Gaussian, 0.25, 5e-7, 2, 100}, 12345, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSpec(t, tc.spec)
			n := draws(100_000)
			xs := make([]float64, n)
			for i := range xs {
				var e Estimate
				var err error
				if tc.count {
					e, err = NoisyCount(tc.exact, s)
				} else {
					e, err = NoisySum(tc.exact, s)
				}
				if err != nil {
					t.Fatal(err)
				}
				xs[i] = e.Value - float64(tc.exact)
			}
			claimed := s.Noise()
			bound := privacytest.DKW(n, alpha)
			d := privacytest.KSLattice(xs, claimed.CDF)
			half := Noise{claimed.Mechanism, claimed.Scale / 2}
			dHalf := privacytest.KSLattice(xs, half.CDF)
			t.Logf("%s scale %.4f: KS distance %.5f (DKW bound %.5f for n=%d, alpha=%g); at half the scale %.5f",
				claimed.Mechanism, claimed.Scale, d, bound, n, alpha, dHalf)
			if d > bound {
				t.Fatalf("KS distance to the claimed noise: got %v, want at most %v", d, bound)
			}
			if dHalf <= bound {
				t.Fatalf("KS distance to half the scale: got %v, want above %v (no power)", dHalf, bound)
			}
			if tc.name == "LaplaceCount" {
				// Ignoring the rounding is a visible error at this scale.
				dCont := privacytest.KSLattice(xs, claimed.continuousCDF)
				t.Logf("KS distance to the unrounded Laplace: %.5f", dCont)
				if dCont <= bound {
					t.Fatalf("KS distance to the unrounded Laplace: got %v, want above %v", dCont, bound)
				}
			}
		})
	}
}

func FuzzParseMechanism(f *testing.F) {
	for _, s := range []string{"laplace", "gaussian", "", "Laplace", "gauss"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMechanism(s)
		if err != nil {
			return
		}
		if m.String() != s {
			t.Fatalf("ParseMechanism(%q) = %v, whose name is %q", s, m, m.String())
		}
	})
}
