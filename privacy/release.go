package privacy

import (
	"fmt"
	"math"
)

// The reasons a cell is suppressed. They are part of the wire format.
const (
	// ReasonBelowMinimum: the cell's noisy count is below the minimum cell
	// size.
	ReasonBelowMinimum = "below_minimum"
	// ReasonIndistinguishable: the lower end of the 95% interval of the
	// cell's noisy count is not above 0.
	ReasonIndistinguishable = "indistinguishable_from_zero"
)

// DefaultMinCellSize is the default minimum cell size of the release rule.
const DefaultMinCellSize = 5

// Release applies the release rule to a cell's noisy count: the cell's
// numbers are shown only if the noisy count is at least minSize and the
// lower end of its 95% interval is above 0. Otherwise it returns the reason
// (ReasonBelowMinimum first). Every measure of the cell follows this
// decision. It reads only released values, so it is post-processing and
// costs no privacy.
func Release(count Estimate, minSize int64) (released bool, reason string) {
	return releaseRule(count.Value, count.Lo, minSize)
}

// ReleaseTotal is Release for a count combined from several nodes (see
// Combiner.Total); minSize is the largest of the federation's and the
// answering nodes' minimum cell sizes.
func ReleaseTotal(count Combined, minSize int64) (released bool, reason string) {
	return releaseRule(count.Value, count.Lo, minSize)
}

func releaseRule(value, lo float64, minSize int64) (bool, string) {
	if math.IsNaN(value) || value < float64(minSize) {
		return false, ReasonBelowMinimum
	}
	if !(lo > 0) {
		return false, ReasonIndistinguishable
	}
	return true, ""
}

// ReleaseProbability returns the probability that a cell whose exact count is
// trueCount is shown as a number when its count is released with the noise
// of s (s.LInf is taken as 1) under the release rule with minSize. With N the
// whole-number noise and m its 95% half-width, the cell is shown when
// trueCount + N ≥ minSize and trueCount + N − m > 0, that is when
// N ≥ max(minSize, m + 1) − trueCount, so the probability is
// P(N ≥ t) = CDF(−t) with t = max(minSize, m + 1) − trueCount (the noise is
// symmetric). For trueCount 0 and 1 this is
// the rate of phantom cells.
func ReleaseProbability(trueCount int64, s Spec, minSize int64) (float64, error) {
	s.LInf = 1
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if trueCount < 0 {
		return 0, fmt.Errorf("a true count cannot be negative, got %d", trueCount)
	}
	n := s.Noise()
	t := math.Max(float64(minSize), n.HalfWidth()+1) - float64(trueCount)
	return n.CDF(-t), nil
}
