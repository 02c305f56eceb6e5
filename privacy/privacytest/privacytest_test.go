package privacytest

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDKW(t *testing.T) {
	if got, want := DKW(100_000, 5e-6), math.Sqrt(math.Log(4e5)/2e5); math.Abs(got-want) > 1e-15 {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestKS(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20_000
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	normal := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	wide := func(x float64) float64 { return normal(x / 2) }
	bound := DKW(n, 1e-6)
	if d := KS(xs, normal); d > bound {
		t.Fatalf("KS to the right CDF: got %v, want at most %v", d, bound)
	}
	if d := KS(xs, wide); d <= bound {
		t.Fatalf("KS to the wrong CDF: got %v, want above %v", d, bound)
	}
	// Whole numbers: a fair die.
	die := make([]float64, n)
	for i := range die {
		die[i] = float64(1 + r.IntN(6))
	}
	cdf := func(x float64) float64 { return math.Min(math.Max(math.Floor(x), 0), 6) / 6 }
	if d := KSLattice(die, cdf); d > bound {
		t.Fatalf("KSLattice to the die: got %v, want at most %v", d, bound)
	}
	shifted := func(x float64) float64 { return cdf(x - 1) }
	if d := KSLattice(die, shifted); d < 1.0/6-bound {
		t.Fatalf("KSLattice to a shifted die: got %v, want about 1/6", d)
	}
}

func TestBinomialInterval(t *testing.T) {
	for _, tc := range []struct{ k, n int }{{0, 100}, {5, 100}, {50, 100}, {100, 100}, {1940, 100_000}} {
		lo, hi := BinomialInterval(tc.k, tc.n, 1e-3)
		p := float64(tc.k) / float64(tc.n)
		if lo > p || hi < p || lo < 0 || hi > 1 {
			t.Errorf("k=%d n=%d: got [%v, %v], want around %v", tc.k, tc.n, lo, hi, p)
		}
	}
	// Coverage: 2 000 experiments at alpha 0.05 miss at most a few percent.
	r := rand.New(rand.NewPCG(3, 4))
	miss := 0
	for range 2000 {
		k := 0
		for range 400 {
			if r.Float64() < 0.03 {
				k++
			}
		}
		if lo, hi := BinomialInterval(k, 400, 0.05); 0.03 < lo || 0.03 > hi {
			miss++
		}
	}
	if miss > 100 {
		t.Fatalf("the 95%% interval missed %d of 2000, want at most 100", miss)
	}
}

func TestPrivacyLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	lap := func(b, shift float64) []float64 {
		out := make([]float64, 50_000)
		for i := range out {
			out[i] = shift + b*(r.ExpFloat64()-r.ExpFloat64())
		}
		return out
	}
	var edges []float64
	for x := -8.0; x <= 9; x += 0.5 {
		edges = append(edges, x)
	}
	// Laplace of scale 1 shifted by 1 is exactly 1-DP; by 2, 2-DP.
	l1 := PrivacyLoss(lap(1, 0), lap(1, 1), edges, 0, 1e-6)
	l2 := PrivacyLoss(lap(1, 0), lap(1, 2), edges, 0, 1e-6)
	if l1.Lower > 1 || l1.Point < 0.8 {
		t.Fatalf("shift 1: got %+v, want a lower bound at most 1 and a point near 1", l1)
	}
	if l2.Lower <= 1 {
		t.Fatalf("shift 2: got %+v, want a lower bound above 1", l2)
	}
}
