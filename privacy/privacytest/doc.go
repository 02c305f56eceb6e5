// Package privacytest holds the statistical checks ctfed's differential
// privacy tests share: the Kolmogorov–Smirnov distance with the
// Dvoretzky–Kiefer–Wolfowitz bound (does a noise fit its claimed
// distribution?), exact-tail binomial confidence intervals (does a rate match
// its prediction?) and a privacy-loss lower bound from output histograms of
// two neighbouring datasets (is a release (ε, δ)-DP?). Each check has a
// stated failure probability, so a test built from them fails by chance
// with a probability the test chooses.
//
// privacytest is pure, imports only the standard library, and is imported
// only by tests (of privacy, node, storage, federation).
package privacytest
