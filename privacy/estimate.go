package privacy

import (
	"fmt"
	"math"
)

// Estimate is one whole number released with noise: the noisy value, the
// mechanism and scale of its noise (see Spec.Noise), the sensitivities the
// noise was scaled to, and its 95% interval [Lo, Hi] = Value ∓ HalfWidth
// (see Noise.HalfWidth), which holds the exact value at least 95% of the
// time. Anyone can recompute the interval from Mechanism and Scale. Value is
// never clamped: a noisy count may be negative.
type Estimate struct {
	Value     float64   `json:"value"`
	Mechanism Mechanism `json:"mechanism"`
	Scale     float64   `json:"scale"`
	L0        int64     `json:"l0"`
	LInf      int64     `json:"linf"`
	Lo        float64   `json:"lo"`
	Hi        float64   `json:"hi"`
}

// Noise returns the noise e was released with.
func (e Estimate) Noise() Noise { return Noise{Mechanism: e.Mechanism, Scale: e.Scale} }

// Hist is a histogram released with noise: one noisy whole number per public
// bin, every bin with the same noise (Mechanism, Scale). One case adds 1 to
// one bin of each cell it reaches, so L0 is the number of cells one case
// reaches and LInf is 1.
type Hist struct {
	Bins      []float64 `json:"bins"`
	Mechanism Mechanism `json:"mechanism"`
	Scale     float64   `json:"scale"`
	L0        int64     `json:"l0"`
	LInf      int64     `json:"linf"`
}

// Noise returns the noise on each bin of h.
func (h Hist) Noise() Noise { return Noise{Mechanism: h.Mechanism, Scale: h.Scale} }

// SumLInf returns the L∞ sensitivity of a sum of values clamped to
// [lo, hi]: max(|lo|, |hi|), the most one case can change the sum by.
func SumLInf(lo, hi int64) int64 {
	return max(absInt64(lo), absInt64(hi))
}

func absInt64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// release adds the library's noise for s to exact and describes the result.
func release(exact int64, s Spec) (Estimate, error) {
	if err := s.Validate(); err != nil {
		return Estimate{}, err
	}
	v, err := s.Mechanism.library().AddNoiseInt64(exact, s.L0, s.LInf, s.Epsilon, s.Delta)
	if err != nil {
		return Estimate{}, fmt.Errorf("adding noise: %w", err)
	}
	n := s.Noise()
	m := n.HalfWidth()
	return Estimate{
		Value: float64(v), Mechanism: s.Mechanism, Scale: n.Scale,
		L0: s.L0, LInf: s.LInf, Lo: float64(v) - m, Hi: float64(v) + m,
	}, nil
}

// NoisyCount releases an exact count with the noise of s. A case adds at
// most 1 to a count, so s.LInf is taken as 1 whatever it holds; s.L0 is the
// number of cells one case reaches.
func NoisyCount(exact int64, s Spec) (Estimate, error) {
	s.LInf = 1
	return release(exact, s)
}

// NoisySum releases an exact sum of values already clamped to public
// bounds [lo, hi], with the noise of s; s.LInf must be SumLInf(lo, hi) (or
// more) and s.L0 the number of cells one case reaches. The sum is an
// integer: never accumulate a released sum in floating point.
func NoisySum(exact int64, s Spec) (Estimate, error) {
	return release(exact, s)
}

// NoisyHistogram releases exact bin counts with the noise of s on each bin.
// One case adds 1 to one bin of each cell it reaches, so s.LInf is taken as
// 1 and s.L0 is the number of cells one case reaches.
func NoisyHistogram(exact []int64, s Spec) (Hist, error) {
	s.LInf = 1
	if err := s.Validate(); err != nil {
		return Hist{}, err
	}
	lib := s.Mechanism.library()
	bins := make([]float64, len(exact))
	for i, x := range exact {
		v, err := lib.AddNoiseInt64(x, s.L0, 1, s.Epsilon, s.Delta)
		if err != nil {
			return Hist{}, fmt.Errorf("adding noise: %w", err)
		}
		bins[i] = float64(v)
	}
	return Hist{Bins: bins, Mechanism: s.Mechanism, Scale: s.Noise().Scale, L0: s.L0, LInf: 1}, nil
}

// NoisySumAndCount releases the two values SUM and AVG are built from: the
// noisy count and the noisy bounded sum of the cell, each with half of the
// ε and δ of s (s.LInf is the sum's L∞, see SumLInf). AVG is then
// Combiner.Mean over the two.
func NoisySumAndCount(exactSum, exactCount int64, s Spec) (sum, count Estimate, err error) {
	h := s.Half()
	if count, err = NoisyCount(exactCount, h); err != nil {
		return Estimate{}, Estimate{}, err
	}
	if sum, err = NoisySum(exactSum, h); err != nil {
		return Estimate{}, Estimate{}, err
	}
	return sum, count, nil
}

// NoisyCountAndHistogram releases the two values QUANTILE is built from: the
// noisy count of the cell and its noisy histogram over the field's public
// 1-unit bins, each with half of the ε and δ of s. The quantile is then
// Combiner.Quantile over the histogram; the count decides the release.
func NoisyCountAndHistogram(exactCount int64, exactBins []int64, s Spec) (count Estimate, hist Hist, err error) {
	h := s.Half()
	if count, err = NoisyCount(exactCount, h); err != nil {
		return Estimate{}, Hist{}, err
	}
	if hist, err = NoisyHistogram(exactBins, h); err != nil {
		return Estimate{}, Hist{}, err
	}
	return count, hist, nil
}

// finite reports whether x is neither NaN nor infinite.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
