package privacy

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
)

// This file computes the distribution of a weighted sum of independent
// whole-number noises, S = Σ w_i·N_i, from the product of their
// characteristic functions, inverted with one FFT on a grid.
//
//   - Exact lattice mode (every weight 1 and the sum's spread fits in 8192
//     whole numbers): S is a whole number; the characteristic function of
//     each rounded noise is computed exactly (rounded Laplace in closed
//     form, rounded Gaussian by Poisson summation), so the FFT returns
//     P(S = k) itself, up to the mass beyond ±R = ±(25·b_max + 10·sd),
//     which is below 10^-10, and floating-point rounding.
//   - Continuous mode (otherwise): each w·N is treated as w·(X + U), X the
//     noise before rounding and U uniform on [−½, ½] (the rounding; exact in
//     variance, and its effect vanishes next to the spreads involved), and
//     the FFT returns the masses of S in 4096 bins of width h = 2R/4096
//     (about 60 bins per standard deviation); the distribution function is
//     linear within a bin. Errors are of order 10^-5 in probability.
//
// The result is the half-width x of the symmetric 95% interval,
// P(|S| ≤ x) ≥ 0.95 (the smallest such whole number in lattice mode).

// term is one group of n independent noises, each multiplied by w ≥ 0.
type term struct {
	noise Noise
	w     float64
	n     int
}

// latticeMax is the largest grid of the exact lattice mode.
const latticeMax = 8192

// continuousN is the grid size of the continuous mode.
const continuousN = 4096

// sumDist is the distribution of |S| as a table of P(|S| ≤ x).
type sumDist struct {
	lattice bool
	h       float64
	// cum[k] is P(|S| ≤ k) in lattice mode, P(|S| ≤ (k+½)h) otherwise.
	cum  []float64
	half float64 // the 95% half-width
}

// within returns P(|S| ≤ x).
func (d *sumDist) within(x float64) float64 {
	if x < 0 {
		return 0
	}
	if d.lattice {
		k := int(math.Floor(x))
		if k >= len(d.cum) {
			return d.cum[len(d.cum)-1]
		}
		return d.cum[k]
	}
	// P(|S| ≤ x) is linear between (k−½)h and (k+½)h, and from 0 at 0.
	u := x/d.h + 0.5 // x = (u − ½)h
	k := int(math.Floor(u))
	if k >= len(d.cum) {
		return d.cum[len(d.cum)-1]
	}
	x0, c0 := 0.0, 0.0
	if k > 0 {
		x0, c0 = (float64(k)-0.5)*d.h, d.cum[k-1]
	}
	x1 := (float64(k) + 0.5) * d.h
	return c0 + (d.cum[k]-c0)*(x-x0)/(x1-x0)
}

// normalise sorts terms, merges equal ones and drops empty ones.
func normalise(ts []term) []term {
	out := ts[:0]
	for _, t := range ts {
		if t.n > 0 && t.w > 0 {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b term) int {
		return cmp.Or(cmp.Compare(a.noise.Mechanism, b.noise.Mechanism),
			cmp.Compare(a.noise.Scale, b.noise.Scale), cmp.Compare(a.w, b.w))
	})
	merged := out[:0]
	for _, t := range out {
		if k := len(merged) - 1; k >= 0 && merged[k].noise == t.noise && merged[k].w == t.w {
			merged[k].n += t.n
			continue
		}
		merged = append(merged, t)
	}
	return merged
}

// termsKey encodes normalised terms (and a mode bit) as a map key.
func termsKey(prefix byte, ts []term, extra ...float64) string {
	b := make([]byte, 0, 1+len(ts)*25+len(extra)*8)
	b = append(b, prefix)
	for _, x := range extra {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	for _, t := range ts {
		b = append(b, byte(t.noise.Mechanism))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.noise.Scale))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.w))
		b = binary.LittleEndian.AppendUint64(b, uint64(t.n))
	}
	return string(b)
}

// computeDist computes the distribution of the sum of normalised terms;
// continuous forces the continuous mode.
func computeDist(ts []term, continuous bool) *sumDist {
	var variance, bMax float64
	unit := true
	for _, t := range ts {
		variance += float64(t.n) * t.w * t.w * t.noise.Variance()
		if t.noise.Mechanism == Laplace {
			bMax = math.Max(bMax, t.w*t.noise.Scale)
		}
		if t.w != 1 {
			unit = false
		}
	}
	if len(ts) == 0 {
		return &sumDist{lattice: true, h: 1, cum: []float64{1}, half: 0}
	}
	r := 25*bMax + 10*math.Sqrt(variance) + 1
	d := &sumDist{h: 1}
	n := 256
	if unit && !continuous && 2*r+2 <= latticeMax {
		d.lattice = true
		for float64(n) < 2*r+2 {
			n *= 2
		}
	} else {
		n = continuousN
		d.h = 2 * r / float64(n)
	}
	spec := make([]complex128, n)
	for j := range spec {
		jj := j
		if j >= n/2 {
			jj = j - n
		}
		t := 2 * math.Pi * float64(jj) / (float64(n) * d.h)
		phi := 1.0
		for _, tm := range ts {
			var f float64
			if d.lattice {
				f = latticeCF(tm.noise, t)
			} else {
				f = continuousCF(tm.noise, tm.w*t)
			}
			phi *= math.Pow(f, float64(tm.n))
		}
		if !d.lattice {
			phi *= sinc(t * d.h / 2) // the bin of width h
		}
		spec[j] = complex(phi, 0)
	}
	fft(spec)
	half := n / 2
	d.cum = make([]float64, 0, 64)
	c := real(spec[0]) / float64(n)
	d.cum = append(d.cum, c)
	for k := 1; k < half; k++ {
		c += 2 * real(spec[k]) / float64(n)
		d.cum = append(d.cum, math.Min(c, 1))
		if c >= 1-1e-13 {
			break
		}
	}
	d.half = d.quantile(Level)
	if unit && !d.lattice {
		// S is a whole number: the whole-number interval ±⌈x⌉ holds at least
		// as much as ±x.
		d.half = math.Ceil(d.half - 1e-9)
	}
	return d
}

// quantile returns the smallest x with P(|S| ≤ x) ≥ p (to the bin
// interpolation in continuous mode).
func (d *sumDist) quantile(p float64) float64 {
	const slack = 1e-12 // floating-point rounding of the FFT
	k, _ := slices.BinarySearchFunc(d.cum, p-slack, func(c, target float64) int { return cmp.Compare(c, target) })
	if k >= len(d.cum) {
		k = len(d.cum) - 1
	}
	if d.lattice {
		return float64(k)
	}
	x0, c0 := 0.0, 0.0
	if k > 0 {
		x0, c0 = (float64(k)-0.5)*d.h, d.cum[k-1]
	}
	x1 := (float64(k) + 0.5) * d.h
	if d.cum[k] <= c0 {
		return x1
	}
	return x0 + (x1-x0)*math.Min(1, math.Max(0, (p-c0)/(d.cum[k]-c0)))
}

// sinc is sin(x)/x.
func sinc(x float64) float64 {
	if math.Abs(x) < 1e-8 {
		return 1
	}
	return math.Sin(x) / x
}

// continuousCF is the characteristic function of X + U at u: the noise X
// before rounding times the uniform rounding U.
func continuousCF(n Noise, u float64) float64 {
	s := n.Scale * u
	if n.Mechanism == Gaussian {
		return math.Exp(-s*s/2) * sinc(u/2)
	}
	return sinc(u/2) / (1 + s*s)
}

// latticeCF is the exact characteristic function of the rounded noise at u.
func latticeCF(n Noise, u float64) float64 {
	if n.Mechanism == Laplace {
		// P(0) = 1 − e^(−1/2b); P(k) = sinh(1/2b)·r^|k| with r = e^(−1/b).
		b := n.Scale
		r := math.Exp(-1 / b)
		om := -math.Expm1(-1 / b)
		s := math.Sin(u / 2)
		s2 := s * s
		re := r * (om - 2*s2) / (om*om + 4*r*s2) // Re Σ_{k≥1} r^k e^{iku}
		return -math.Expm1(-1/(2*b)) + 2*math.Sinh(1/(2*b))*re
	}
	sigma := n.Scale
	if sigma >= 2 {
		// Poisson summation of the rounded normal: Σ_m φ(u+2πm)·sinc((u+2πm)/2).
		var f float64
		for m := -2; m <= 2; m++ {
			v := u + 2*math.Pi*float64(m)
			f += math.Exp(-sigma*sigma*v*v/2) * sinc(v/2)
		}
		return f
	}
	// Few values carry the mass: sum the probabilities directly.
	f := math.Erf(0.5 / (sigma * math.Sqrt2)) // P(0)
	for k := 1; k <= 30; k++ {
		p := 0.5 * (math.Erfc((float64(k)-0.5)/(sigma*math.Sqrt2)) - math.Erfc((float64(k)+0.5)/(sigma*math.Sqrt2)))
		if p == 0 {
			break
		}
		f += 2 * p * math.Cos(u*float64(k))
	}
	return f
}
