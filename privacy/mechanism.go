package privacy

import (
	"errors"
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// Mechanism is the noise distribution of a release: the DP library's secure
// Laplace noise (pure ε-DP, the default) or its secure Gaussian noise
// ((ε, δ)-DP, on request).
type Mechanism uint8

// The mechanisms. Their names are part of the wire format and of the
// configuration file.
const (
	Laplace Mechanism = iota
	Gaussian
)

// String returns the mechanism's stable name: "laplace" or "gaussian".
func (m Mechanism) String() string {
	switch m {
	case Laplace:
		return "laplace"
	case Gaussian:
		return "gaussian"
	}
	return fmt.Sprintf("mechanism(%d)", uint8(m))
}

// ParseMechanism returns the mechanism named s ("laplace" or "gaussian").
func ParseMechanism(s string) (Mechanism, error) {
	switch s {
	case "laplace":
		return Laplace, nil
	case "gaussian":
		return Gaussian, nil
	}
	return 0, fmt.Errorf("unknown noise mechanism %q (want \"laplace\" or \"gaussian\")", s)
}

// MarshalText implements encoding.TextMarshaler with the mechanism's name.
func (m Mechanism) MarshalText() ([]byte, error) {
	if m != Laplace && m != Gaussian {
		return nil, fmt.Errorf("unknown noise mechanism %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; see ParseMechanism.
func (m *Mechanism) UnmarshalText(b []byte) error {
	v, err := ParseMechanism(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Level is the confidence level of every interval this package computes.
const Level = 0.95

// z975 is the standard normal 0.975 quantile.
const z975 = 1.959963984540054

// maxL1 bounds L0·L∞ so that the library's int64 sensitivity arithmetic and
// every conversion to float64 stay exact.
const maxL1 = 1 << 53

// minEpsilon is the smallest ε the library accepts (2^-50).
const minEpsilon = 0x1p-50

// Spec is what one noisy release is asked to satisfy: the mechanism, its
// privacy parameters and the sensitivities of the released value. L0 is the
// number of released values (cells, or bins across cells) one case can
// change; LInf is by how much it can change each of them.
type Spec struct {
	Mechanism Mechanism
	Epsilon   float64
	Delta     float64
	L0        int64
	LInf      int64
}

// Validate reports whether s can be given to the DP library: ε finite and at
// least 2^-50 (the library's floor), δ = 0 for Laplace and 0 < δ < 1 for
// Gaussian, L0 ≥ 1, LInf ≥ 1, L0·LInf ≤ 2^53, and a noise scale in
// [MinScale, MaxScale].
func (s Spec) Validate() error {
	switch s.Mechanism {
	case Laplace, Gaussian:
	default:
		return fmt.Errorf("unknown noise mechanism %d", uint8(s.Mechanism))
	}
	if math.IsNaN(s.Epsilon) || math.IsInf(s.Epsilon, 0) || s.Epsilon < minEpsilon {
		return fmt.Errorf("epsilon must be positive and finite (at least 2^-50), got %v", s.Epsilon)
	}
	if math.IsNaN(s.Delta) || s.Delta < 0 || s.Delta >= 1 {
		return fmt.Errorf("delta must be in [0, 1), got %v", s.Delta)
	}
	if s.Mechanism == Laplace && s.Delta != 0 {
		return fmt.Errorf("delta must be 0 for laplace noise, got %v", s.Delta)
	}
	if s.Mechanism == Gaussian && s.Delta == 0 {
		return errors.New("delta must be positive for gaussian noise")
	}
	if s.L0 < 1 {
		return fmt.Errorf("L0 must be at least 1, got %d", s.L0)
	}
	if s.LInf < 1 {
		return fmt.Errorf("LInf must be at least 1, got %d", s.LInf)
	}
	if s.L0 > maxL1/s.LInf {
		return fmt.Errorf("L0·LInf must be at most 2^53, got %d·%d", s.L0, s.LInf)
	}
	if n := s.Noise(); n.Scale < MinScale {
		return fmt.Errorf("epsilon %v is too large for L0 %d and LInf %d: the noise scale would be %v, below %v", s.Epsilon, s.L0, s.LInf, n.Scale, MinScale)
	} else if n.Scale > MaxScale {
		return fmt.Errorf("epsilon %v is too small for L0 %d and LInf %d: the noise scale would be %v, above %v", s.Epsilon, s.L0, s.LInf, n.Scale, MaxScale)
	}
	return nil
}

// Half returns s with ε and δ halved: the share of each of the two releases
// (a count and a sum, or a count and a histogram) that make up one measure.
// By sequential composition the two halves together satisfy (ε, δ).
func (s Spec) Half() Spec {
	s.Epsilon /= 2
	s.Delta /= 2
	return s
}

// Noise returns the noise the DP library adds for s (s must be valid):
//
//   - Laplace: the library draws a two-sided geometric sample at granularity
//     g = 2^⌈log2(L0·LInf/ε/2^40)⌉ (a power of two, about 10^-12 of the
//     scale), which is a discretised Laplace of scale b = (L0·LInf + g)/ε,
//     and rounds it to a whole number. Scale is that b, i.e. L0·LInf/ε to
//     twelve significant digits.
//   - Gaussian: the library draws a binomial approximation of a normal of
//     standard deviation σ = noise.SigmaForGaussian(L0, LInf, ε, δ), the
//     smallest σ (to 0.1%, rounded up) for which the Gaussian mechanism with
//     L2 sensitivity sqrt(L0)·LInf is (ε, δ)-DP (Balle and Wang's analytic
//     calibration), and rounds it to a whole number. Scale is that σ.
func (s Spec) Noise() Noise {
	l1 := float64(s.L0) * float64(s.LInf)
	if s.Mechanism == Gaussian {
		return Noise{Mechanism: Gaussian, Scale: noise.SigmaForGaussian(s.L0, float64(s.LInf), s.Epsilon, s.Delta)}
	}
	g := ceilPowerOfTwo(l1 / s.Epsilon / 0x1p40)
	return Noise{Mechanism: Laplace, Scale: (l1 + g) / s.Epsilon}
}

// library returns the DP library's noise for m.
func (m Mechanism) library() noise.Noise {
	if m == Gaussian {
		return noise.Gaussian()
	}
	return noise.Laplace()
}

// ceilPowerOfTwo returns the smallest power of two at least x (x > 0 and
// finite), exactly as the DP library computes its granularity.
func ceilPowerOfTwo(x float64) float64 {
	frac, exp := math.Frexp(x) // x = frac·2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		return x
	}
	return math.Ldexp(1, exp)
}

// Noise describes the noise on one released whole number: the library's
// Laplace or Gaussian noise of the given scale, rounded to a whole number
// (which is what AddNoiseInt64 returns). Scale is the Laplace b or the
// Gaussian σ of the noise before rounding.
type Noise struct {
	Mechanism Mechanism `json:"mechanism"`
	Scale     float64   `json:"scale"`
}

// The range of noise scales ctfed releases and combines: beyond it the
// interval arithmetic loses precision, and no sensible query needs it (ε 100
// on a count gives 0.01; ε 0.001 on a sum bounded by 600 reaching 20 cells
// gives 1.2·10^7).
const (
	MinScale = 1e-3
	MaxScale = 1e12
)

// Validate reports whether n describes a noise: a known mechanism and a
// scale in [MinScale, MaxScale].
func (n Noise) Validate() error {
	if n.Mechanism != Laplace && n.Mechanism != Gaussian {
		return fmt.Errorf("unknown noise mechanism %d", uint8(n.Mechanism))
	}
	if !(n.Scale >= MinScale && n.Scale <= MaxScale) {
		return fmt.Errorf("noise scale must be in [%v, %v], got %v", MinScale, MaxScale, n.Scale)
	}
	return nil
}

// CDF returns P(N ≤ x) for the whole-number noise N: F(⌊x⌋ + ½) where F is
// the CDF of the noise before rounding (Laplace: ½e^(y/b) below 0 and
// 1 − ½e^(−y/b) above; Gaussian: Φ(y/σ)).
func (n Noise) CDF(x float64) float64 {
	if math.IsNaN(x) {
		return math.NaN()
	}
	return n.continuousCDF(math.Floor(x) + 0.5)
}

// continuousCDF is the CDF of the noise before rounding.
func (n Noise) continuousCDF(y float64) float64 {
	if n.Mechanism == Gaussian {
		return 0.5 * math.Erfc(-y/(n.Scale*math.Sqrt2))
	}
	if y < 0 {
		return 0.5 * math.Exp(y/n.Scale)
	}
	return 1 - 0.5*math.Exp(-y/n.Scale)
}

// Within returns P(|N| ≤ m) for the whole-number noise N and m ≥ 0.
func (n Noise) Within(m float64) float64 {
	if m < 0 {
		return 0
	}
	y := math.Floor(m) + 0.5
	if n.Mechanism == Gaussian {
		return math.Erf(y / (n.Scale * math.Sqrt2))
	}
	return -math.Expm1(-y / n.Scale)
}

// Variance returns the variance of the whole-number noise: for Laplace
// 2·sinh(1/2b)·r(1+r)/(1−r)³ with r = e^(−1/b) (about 2b² + 1/12), for
// Gaussian about σ² + 1/12 (Sheppard's correction; exact to e^(−2π²σ²)).
func (n Noise) Variance() float64 {
	if n.Mechanism == Gaussian {
		return n.Scale*n.Scale + 1.0/12
	}
	r := math.Exp(-1 / n.Scale)
	om := -math.Expm1(-1 / n.Scale) // 1 − r
	return 2 * math.Sinh(1/(2*n.Scale)) * r * (1 + r) / (om * om * om)
}

// HalfWidth returns the half-width of the 95% interval of a whole number
// released with this noise: the smallest whole m with P(|N| ≤ m) ≥ 0.95,
// so that [value − m, value + m] holds the true value at least 95% of the
// time. For Laplace m = ⌈b·ln 20 − ½⌉, for Gaussian m = ⌈1.959964σ − ½⌉
// (the continuous ±b·ln 20 and ±1.96σ, adjusted for rounding: the plain
// continuous half-width under-covers, e.g. 93.6% for b = 2).
func (n Noise) HalfWidth() float64 {
	var m float64
	if n.Mechanism == Gaussian {
		m = math.Ceil(z975*n.Scale - 0.5)
	} else {
		m = math.Ceil(n.Scale*math.Log(20) - 0.5)
	}
	m = math.Max(m, 0)
	for n.Within(m) < Level {
		m++
	}
	for m > 0 && n.Within(m-1) >= Level {
		m--
	}
	return m
}
