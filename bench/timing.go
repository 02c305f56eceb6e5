package bench

import (
	"slices"
	"time"
)

// Interleave runs every f in turn, warm rounds unmeasured then iters
// measured rounds, and returns each f's durations, shortest first. Taking
// turns spreads whatever else the machine is doing evenly over the engines
// compared.
func Interleave(warm, iters int, fs ...func() error) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(fs))
	for round := range warm + iters {
		for i, f := range fs {
			start := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			if round >= warm {
				out[i] = append(out[i], time.Since(start))
			}
		}
	}
	for _, ts := range out {
		slices.Sort(ts)
	}
	return out, nil
}

// Median returns the median of sorted durations.
func Median(sorted []time.Duration) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if n := len(sorted); n%2 == 0 {
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return sorted[len(sorted)/2]
}
