// Package privacy is ctfed's differential privacy: the noise every answer
// carries, the contribution bounding that limits what one case can change,
// the release rule that withholds small cells, the combination of several
// nodes' noisy answers into one table with honest intervals, and the
// arithmetic of the privacy budget. docs/privacy.md explains the model to
// operators and queriers; DESIGN.md "Privacy model" is the specification.
//
// Mechanisms. Noise comes from github.com/google/differential-privacy/go/v3
// (secure Laplace by default, secure Gaussian with δ on request), always
// through AddNoiseInt64: counts, integer sums and histogram bins are whole
// numbers and their noise is the library's noise rounded to a whole number.
// Spec says what one release must satisfy (mechanism, ε, δ, L0, L∞) and is
// validated up front; Spec.Noise gives the scale the library applies (Laplace
// b = L0·L∞/ε up to the library's granularity, Gaussian σ from
// noise.SigmaForGaussian for L2 sensitivity sqrt(L0)·L∞). NoisyCount,
// NoisySum and NoisyHistogram release one value (or one histogram) and
// return an Estimate (Hist) carrying the mechanism, scale, L0, L∞ and the 95%
// interval; NoisySumAndCount (SUM, AVG) and NoisyCountAndHistogram
// (QUANTILE) split ε and δ half and half.
//
// Release rule. Release shows a cell only if its noisy count is at least the
// minimum cell size and the lower end of its 95% interval is above 0;
// ReleaseProbability gives the exact probability that a cell of a given true
// count is shown (the phantom-cell rate for true counts 0 and 1).
//
// Combination. A Combiner sums independent noisy releases (one per node, or
// one alone) and computes each total's interval from the exact distribution
// of the summed noise (an FFT of the product of the noises' characteristic
// functions), AVG with Fieller's interval over the same distributions, and
// QUANTILE from summed histograms by test inversion. It memoises by the
// multiset of noise scales.
//
// Budget. Amounts of ε and δ are kept as integer micro-units (Micro,
// rounded up); Caps.Charge checks a charge against the per-query, node-wide
// and per-organisation caps for every year charged and either returns the
// new amounts or a *CapError, charging nothing; MoveYear is the rule for a
// case moved between registration years.
//
// Bounding. Bound and BoundMask keep a uniformly random subset of at most
// L0 of one case's codes in a multi-valued dimension, without allocating.
//
// privacy is pure: no I/O, no globals beyond constants. It imports only the
// standard library and the differential privacy library (its noise package),
// and no ctfed package: its errors are plain errors (and *CapError), which
// callers wrap into node errors. Its subpackage privacytest holds the
// statistical checks shared by tests.
package privacy
