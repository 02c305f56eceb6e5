package privacytest

import (
	"math"
	"slices"
)

// DKW returns the distance t such that, for n independent draws from any
// distribution F, P(sup_x |F_n(x) − F(x)| > t) ≤ alpha, by the
// Dvoretzky–Kiefer–Wolfowitz inequality with Massart's constant:
// P(sup|F_n − F| > t) ≤ 2·exp(−2nt²), so t = sqrt(ln(2/alpha)/(2n)). For a
// distribution with atoms (whole-number noise) the bound is conservative.
func DKW(n int, alpha float64) float64 {
	return math.Sqrt(math.Log(2/alpha) / (2 * float64(n)))
}

// KS returns the Kolmogorov–Smirnov distance sup_x |F_n(x) − F(x)| between
// the empirical distribution of samples and a continuous CDF. It sorts
// samples in place.
func KS(samples []float64, cdf func(float64) float64) float64 {
	return ks(samples, cdf, func(x float64) float64 { return cdf(x) })
}

// KSLattice is KS for whole-number samples and the CDF of a whole-number
// distribution (cdf(x) = P(X ≤ x)): the distance is taken at every whole
// number, including just below each sample value. It sorts samples in
// place.
func KSLattice(samples []float64, cdf func(float64) float64) float64 {
	return ks(samples, cdf, func(x float64) float64 { return cdf(x - 1) })
}

// ks computes the distance; below(x) is F just below x.
func ks(samples []float64, cdf, below func(float64) float64) float64 {
	slices.Sort(samples)
	n := float64(len(samples))
	var d float64
	for i := 0; i < len(samples); {
		x := samples[i]
		j := i
		for j < len(samples) && samples[j] == x {
			j++
		}
		d = math.Max(d, math.Abs(float64(i)/n-below(x)))
		d = math.Max(d, math.Abs(float64(j)/n-cdf(x)))
		i = j
	}
	return d
}
