package privacy

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ctfed/ctfed/privacy/privacytest"
)

// pmfRounded returns P(N = k) of a whole-number noise.
func pmfRounded(n Noise, k int) float64 {
	return n.CDF(float64(k)) - n.CDF(float64(k-1))
}

// bruteWithin computes P(|N_1 + … + N_k| ≤ m) by direct convolution.
func bruteWithin(noises []Noise, m int) float64 {
	dist, off := []float64{1}, 0 // dist[i] = P(S = i − off)
	for _, n := range noises {
		k := int(40*n.Scale) + 20
		next := make([]float64, len(dist)+2*k)
		for i, p := range dist {
			for j := -k; j <= k; j++ {
				next[i+j+k] += p * pmfRounded(n, j)
			}
		}
		dist, off = next, off+k
	}
	var s float64
	for i, p := range dist {
		if x := i - off; x >= -m && x <= m {
			s += p
		}
	}
	return s
}

func TestCombinerExact(t *testing.T) {
	c := NewCombiner()
	for _, tc := range []struct {
		name   string
		noises []Noise
	}{
		{"OneLaplace", []Noise{{Laplace, 2}}},
		{"OneSmallLaplace", []Noise{{Laplace, 0.3}}},
		{"OneGaussian", []Noise{{Gaussian, 8.0625}}},
		{"OneSmallGaussian", []Noise{{Gaussian, 0.7}}},
		{"TwoLaplace", []Noise{{Laplace, 2}, {Laplace, 2}}},
		{"Mixed", []Noise{{Laplace, 10}, {Laplace, 1}, {Gaussian, 3.7}, {Laplace, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := c.HalfWidth(tc.noises)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.noises) == 1 && h != tc.noises[0].HalfWidth() {
				t.Fatalf("one noise: got half-width %v, want %v", h, tc.noises[0].HalfWidth())
			}
			for _, m := range []int{int(h) - 1, int(h), int(h) + 3} {
				got, err := c.Within(tc.noises, float64(m))
				if err != nil {
					t.Fatal(err)
				}
				want := bruteWithin(tc.noises, m)
				if math.Abs(got-want) > 1e-9 {
					t.Fatalf("P(|S| ≤ %d): got %v, want %v", m, got, want)
				}
			}
			if in, _ := c.Within(tc.noises, h); in < Level {
				t.Fatalf("coverage at the half-width: got %v, want ≥ %v", in, Level)
			}
			if in, _ := c.Within(tc.noises, h-1); in >= Level {
				t.Fatalf("coverage one below the half-width: got %v, want < %v", in, Level)
			}
		})
	}
	t.Run("ContinuousMode", func(t *testing.T) {
		// Past the exact lattice grid the distribution is continuous; it
		// scales: 3 Laplace of b = 3000 are 10 times 3 Laplace of b = 300.
		big := []Noise{{Laplace, 3000}, {Laplace, 3000}, {Gaussian, 5000}}
		small := []Noise{{Laplace, 300}, {Laplace, 300}, {Gaussian, 500}}
		for _, x := range []float64{1000, 5000, 12000, 20000} {
			a, _ := c.Within(big, x)
			b, _ := c.Within(small, x/10)
			if math.Abs(a-b) > 1e-3 {
				t.Fatalf("P(|S| ≤ %v): got %v, want %v (scaled)", x, a, b)
			}
		}
	})
	t.Run("ErrEmpty", func(t *testing.T) {
		if _, err := c.Total(nil); err == nil {
			t.Fatal("got nil error, want one")
		}
		if _, err := c.Total([]Estimate{{Value: 1}}); err == nil {
			t.Fatal("zero scale: got nil error, want one")
		}
	})
	t.Run("NilCombiner", func(t *testing.T) {
		var nc *Combiner
		got, err := nc.Total([]Estimate{{Value: 5, Mechanism: Laplace, Scale: 2}})
		if err != nil || got != (Combined{Value: 5, Lo: -1, Hi: 11}) {
			t.Fatalf("got %+v, %v, want 5 ∓ 6", got, err)
		}
	})
}

// TestCoverageFederated checks the interval of a total over k = 5 nodes
// with different noises (released through NoisyCount): its simulated
// coverage matches the exact coverage the Combiner claims (which is at
// least 95%), while the normal approximation (±1.96·sd) and the interval
// with half the variance both fall below 95%, so the check has power.
func TestCoverageFederated(t *testing.T) {
	specs := []Spec{
		{Laplace, 0.1, 0, 1, 1},
		{Laplace, 0.5, 0, 1, 1},
		{Laplace, 0.5, 0, 1, 1},
		{Gaussian, 1, 1e-5, 1, 1},
		{Laplace, 1, 0, 1, 1},
	}
	c := NewCombiner()
	noises := make([]Noise, len(specs))
	var variance float64
	for i, s := range specs {
		noises[i] = mustSpec(t, s).Noise()
		variance += noises[i].Variance()
	}
	intervals := []struct {
		name string
		half float64
		pass bool
	}{
		{"Exact", 0, true},
		{"Normal", z975 * math.Sqrt(variance), false},
		{"HalfVariance", z975 * math.Sqrt(variance/2), false},
	}
	n := draws(40_000)
	covered := make([]int, len(intervals))
	truth := []int64{7, 0, 3, 12, 1}
	var exact float64
	for range n {
		parts := make([]Estimate, len(specs))
		var total float64
		for j, s := range specs {
			e, err := NoisyCount(truth[j], s)
			if err != nil {
				t.Fatal(err)
			}
			parts[j] = e
			total += float64(truth[j])
		}
		tot, err := c.Total(parts)
		if err != nil {
			t.Fatal(err)
		}
		exact = tot.Hi - tot.Value
		for i, iv := range intervals {
			h := iv.half
			if iv.name == "Exact" {
				h = exact
			}
			if math.Abs(tot.Value-total) <= h {
				covered[i]++
			}
		}
	}
	for i, iv := range intervals {
		h := iv.half
		if iv.name == "Exact" {
			h = exact
		}
		claimed, _ := c.Within(noises, h)
		lo, hi := privacytest.BinomialInterval(covered[i], n, alpha)
		t.Logf("%s interval ±%.2f: covered %d of %d (%.4f, interval [%.4f, %.4f]); exact coverage %.4f",
			iv.name, h, covered[i], n, float64(covered[i])/float64(n), lo, hi, claimed)
		if claimed < lo || claimed > hi {
			t.Errorf("%s: simulated coverage [%v, %v] does not match the exact coverage %v", iv.name, lo, hi, claimed)
		}
		if iv.pass && (claimed < Level || claimed > Level+0.01) {
			t.Errorf("%s: exact coverage %v, want in [0.95, 0.96]", iv.name, claimed)
		}
		if !iv.pass && hi >= Level {
			t.Errorf("%s: simulated coverage up to %v, want below 0.95 (the check has no power)", iv.name, hi)
		}
	}
}

// sampleNoise draws a whole-number noise from r: seeded, for the tests of
// interval arithmetic that need many draws and no privacy.
func sampleNoise(r *rand.Rand, n Noise) float64 {
	if n.Mechanism == Gaussian {
		return math.Round(n.Scale * r.NormFloat64())
	}
	return math.Round(n.Scale * (r.ExpFloat64() - r.ExpFloat64()))
}

func TestMean(t *testing.T) {
	c := NewCombiner()
	est := func(v, b float64) Estimate { return Estimate{Value: v, Mechanism: Laplace, Scale: b} }
	t.Run("Precise", func(t *testing.T) {
		m, err := c.Mean([]Estimate{est(30000, 1)}, []Estimate{est(1000, 0.01)}, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if m.Value != 30 || m.Lo > 30 || m.Hi < 30 || m.Hi-m.Lo > 0.05 {
			t.Fatalf("got %+v, want 30 with a narrow interval", m)
		}
	})
	t.Run("Clamped", func(t *testing.T) {
		m, _ := c.Mean([]Estimate{est(-500, 400)}, []Estimate{est(10, 4)}, 0, 100)
		if m.Value != 0 || m.Lo != 0 || m.Hi <= 0 || m.Hi > 100 {
			t.Fatalf("got %+v, want 0 within [0, 100]", m)
		}
	})
	t.Run("NoCount", func(t *testing.T) {
		m, _ := c.Mean([]Estimate{est(500, 400)}, []Estimate{est(-3, 4)}, 0, 100)
		if m != (Combined{Value: 50, Lo: 0, Hi: 100}) {
			t.Fatalf("got %+v, want 50 in [0, 100]", m)
		}
	})
	t.Run("ErrMismatch", func(t *testing.T) {
		if _, err := c.Mean([]Estimate{est(1, 1)}, nil, 0, 100); err == nil {
			t.Fatal("got nil error, want one")
		}
		if _, err := c.Mean([]Estimate{est(1, 1)}, []Estimate{est(1, 1)}, 10, 0); err == nil {
			t.Fatal("bad bounds: got nil error, want one")
		}
	})
}

// TestCoverageMean checks by simulation (seeded) that the mean's Fieller
// interval holds the true mean 95% of the time, for one node and for five,
// from small cells to large.
func TestCoverageMean(t *testing.T) {
	c := NewCombiner()
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{1, 5} {
		for _, cnt := range []int{10, 100, 1000} {
			const trials = 3000
			in := 0
			for range trials {
				sums := make([]Estimate, k)
				counts := make([]Estimate, k)
				var s, n float64
				for j := range k {
					bc := 4 * float64(1+j%2) // ε 0.5 or 0.25, split in half
					var sj float64
					for range cnt {
						sj += float64(20 + r.IntN(41))
					}
					s += sj
					n += float64(cnt)
					counts[j] = Estimate{Value: float64(cnt) + sampleNoise(r, Noise{Laplace, bc}), Mechanism: Laplace, Scale: bc}
					sums[j] = Estimate{Value: sj + sampleNoise(r, Noise{Laplace, 100 * bc}), Mechanism: Laplace, Scale: 100 * bc}
				}
				m, err := c.Mean(sums, counts, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				if m.Lo <= s/n && s/n <= m.Hi {
					in++
				}
			}
			cov := float64(in) / trials
			t.Logf("%d nodes, %d cases each: coverage %.4f", k, cnt, cov)
			if cov < 0.935 || cov > 0.965 {
				t.Errorf("%d nodes, %d cases: coverage %v, want 0.95 ± 0.015", k, cnt, cov)
			}
		}
	}
}

func TestQuantile(t *testing.T) {
	c := NewCombiner()
	t.Run("Precise", func(t *testing.T) {
		bins := make([]float64, 101)
		for v := 20; v <= 60; v++ {
			bins[v] = 100
		}
		h := Hist{Bins: bins, Mechanism: Laplace, Scale: 0.01}
		q, err := c.Quantile([]Hist{h}, 0.5, 0)
		if err != nil {
			t.Fatal(err)
		}
		if q.Value != 40 || q.Lo > 40 || q.Hi < 40 || q.Hi-q.Lo > 2 {
			t.Fatalf("got %+v, want 40 with a narrow interval", q)
		}
		q, _ = c.Quantile([]Hist{h, h}, 0.9, 10)
		if q.Value != 10+56 {
			t.Fatalf("two nodes, q 0.9, bins from 10: got %+v, want 66", q)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		h := Hist{Bins: []float64{1, 2}, Mechanism: Laplace, Scale: 1}
		for name, f := range map[string]func() error{
			"ErrEmpty":  func() error { _, err := c.Quantile(nil, 0.5, 0); return err },
			"ErrQ":      func() error { _, err := c.Quantile([]Hist{h}, 1, 0); return err },
			"ErrBins":   func() error { _, err := c.Quantile([]Hist{h, {Bins: []float64{1}, Scale: 1}}, 0.5, 0); return err },
			"ErrScale":  func() error { _, err := c.Quantile([]Hist{{Bins: []float64{1}}}, 0.5, 0); return err },
			"ErrNoBins": func() error { _, err := c.Quantile([]Hist{{Scale: 1}}, 0.5, 0); return err },
			"ErrInfinite": func() error {
				_, err := c.Quantile([]Hist{{Bins: []float64{math.Inf(1)}, Scale: 1}}, 0.5, 0)
				return err
			},
		} {
			if f() == nil {
				t.Errorf("%s: got nil error, want one", name)
			}
		}
	})
}

// TestCoverageQuantile checks by simulation (seeded) that the quantile's
// interval holds the true quantile at least 95% of the time.
func TestCoverageQuantile(t *testing.T) {
	c := NewCombiner()
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 3} {
		for _, cnt := range []int{30, 1000} {
			for _, q := range []float64{0.5, 0.9} {
				const trials = 600
				in := 0
				for range trials {
					hists := make([]Hist, k)
					exact := make([]float64, 101)
					n := 0
					for j := range hists {
						b := 4 * float64(1+j%2)
						bins := make([]float64, 101)
						for range cnt {
							v := min(max(int(math.Round(30+10*r.NormFloat64())), 0), 100)
							bins[v]++
							exact[v]++
							n++
						}
						for x := range bins {
							bins[x] += sampleNoise(r, Noise{Laplace, b})
						}
						hists[j] = Hist{Bins: bins, Mechanism: Laplace, Scale: b}
					}
					truth, cum := 0, 0.0
					for x, v := range exact {
						cum += v
						if cum >= q*float64(n) {
							truth = x
							break
						}
					}
					res, err := c.Quantile(hists, q, 0)
					if err != nil {
						t.Fatal(err)
					}
					if res.Lo <= float64(truth) && float64(truth) <= res.Hi {
						in++
					}
				}
				cov := float64(in) / trials
				t.Logf("%d nodes, %d cases each, q %v: coverage %.3f", k, cnt, q, cov)
				if cov < 0.93 {
					t.Errorf("%d nodes, %d cases, q %v: coverage %v, want at least 0.95 (−0.02)", k, cnt, q, cov)
				}
			}
		}
	}
}

// BenchmarkCombinerTotal combines 20 000 cells from 100 nodes whose noises
// take 3 different scales (the memoised case).
func BenchmarkCombinerTotal(b *testing.B) {
	const cells, nodes = 20_000, 100
	parts := make([]Estimate, nodes)
	for i := range parts {
		parts[i] = Estimate{Value: 3, Mechanism: Laplace, Scale: []float64{2, 4, 10}[i%3]}
	}
	for b.Loop() {
		c := NewCombiner()
		for range cells {
			if _, err := c.Total(parts); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCombinerMean combines the means of 20 000 cells from 100 nodes.
func BenchmarkCombinerMean(b *testing.B) {
	const cells, nodes = 20_000, 100
	sums := make([]Estimate, nodes)
	counts := make([]Estimate, nodes)
	for i := range sums {
		bc := []float64{4, 8, 20}[i%3]
		counts[i] = Estimate{Value: 10, Mechanism: Laplace, Scale: bc}
		sums[i] = Estimate{Value: 300, Mechanism: Laplace, Scale: 100 * bc}
	}
	for b.Loop() {
		c := NewCombiner()
		for i := range cells {
			sums[0].Value = float64(300 + i%50)
			if _, err := c.Mean(sums, counts, 0, 100); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCombinerQuantile combines the quantiles of 1 000 cells from 100
// nodes over 601 bins (months in exploitation).
func BenchmarkCombinerQuantile(b *testing.B) {
	const cells, nodes = 1_000, 100
	hists := make([]Hist, nodes)
	for i := range hists {
		bins := make([]float64, 601)
		for x := range bins {
			bins[x] = float64((x * 7 * (i + 1)) % 5)
		}
		hists[i] = Hist{Bins: bins, Mechanism: Laplace, Scale: []float64{4, 8, 20}[i%3]}
	}
	for b.Loop() {
		c := NewCombiner()
		for range cells {
			if _, err := c.Quantile(hists, 0.5, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkNoisyCount is the cost of one released count (the library's
// secure noise dominates).
func BenchmarkNoisyCount(b *testing.B) {
	s := Spec{Laplace, 0.5, 0, 1, 1}
	for b.Loop() {
		if _, err := NoisyCount(10, s); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCombinerTotal combines noises as a remote node could declare them:
// whatever the scales, the Combiner never panics and, for valid ones,
// returns a whole-number half-width with at least 95% coverage.
func FuzzCombinerTotal(f *testing.F) {
	f.Add(uint8(0), 2.0, uint8(1), 8.0625, uint8(0), 1e6)
	f.Add(uint8(0), 1e-3, uint8(0), 1e12, uint8(1), 0.5)
	f.Add(uint8(1), 0.0, uint8(2), -1.0, uint8(0), math.NaN())
	f.Fuzz(func(t *testing.T, m1 uint8, s1 float64, m2 uint8, s2 float64, m3 uint8, s3 float64) {
		parts := []Estimate{
			{Value: 1, Mechanism: Mechanism(m1), Scale: s1},
			{Value: 2, Mechanism: Mechanism(m2), Scale: s2},
			{Value: 3, Mechanism: Mechanism(m3), Scale: s3},
		}
		var c *Combiner
		tot, err := c.Total(parts)
		if err != nil {
			return
		}
		h := tot.Hi - tot.Value
		if !(h >= 0) || h != math.Trunc(h) || tot.Value-tot.Lo != h {
			t.Fatalf("got %+v, want a whole, symmetric half-width", tot)
		}
		noises := []Noise{parts[0].Noise(), parts[1].Noise(), parts[2].Noise()}
		if in, _ := c.Within(noises, h); in < Level-1e-4 {
			t.Fatalf("coverage of ±%v: got %v, want at least 0.95", h, in)
		}
	})
}
