package privacytest

import (
	"math"
	"slices"
)

// Loss is what PrivacyLoss found.
type Loss struct {
	// Lower is a lower confidence bound on the privacy loss the samples
	// show: with probability at least 1 − alpha it is at most the ε of any
	// (ε, δ) the mechanism satisfies. A check fails when Lower > ε.
	Lower float64
	// Point is the largest plug-in loss ln((p̂ − δ)/p̂′) over the buckets
	// holding at least 100 samples on both sides (for the record).
	Point float64
	// Bucket is the index of the bucket giving Lower (−1 if none).
	Bucket int
}

// PrivacyLoss bounds from below the privacy loss of a mechanism from its
// outputs xs on one dataset and ys on a neighbouring one, bucketed by sorted
// edges (bucket 0 is below edges[0], bucket i is [edges[i−1], edges[i]),
// the last is from the last edge up). (ε, δ)-DP means that for every bucket
// B, P(x ∈ B) ≤ e^ε·P(y ∈ B) + δ and the same with x and y exchanged. For
// each bucket and direction it takes a lower confidence bound on the first
// probability and an upper one on the second (each wrong with probability
// alpha/(4·buckets)), so Lower = max ln((lower − δ)/upper) exceeds a true ε
// with probability at most alpha.
func PrivacyLoss(xs, ys, edges []float64, delta, alpha float64) Loss {
	cx, cy := bucket(xs, edges), bucket(ys, edges)
	a := alpha / float64(4*len(cx))
	out := Loss{Lower: math.Inf(-1), Point: math.Inf(-1), Bucket: -1}
	type side struct {
		c []int
		n int
	}
	x, y := side{cx, len(xs)}, side{cy, len(ys)}
	for _, dir := range [2][2]side{{x, y}, {y, x}} {
		p, q, np, nq := dir[0].c, dir[1].c, dir[0].n, dir[1].n
		for i := range p {
			lo := Lower(p[i], np, a) - delta
			hi := Upper(q[i], nq, a)
			if lo > 0 && hi > 0 {
				if l := math.Log(lo / hi); l > out.Lower {
					out.Lower, out.Bucket = l, i
				}
			}
			if p[i] >= 100 && q[i] >= 100 {
				ph := float64(p[i])/float64(np) - delta
				if ph > 0 {
					out.Point = math.Max(out.Point, math.Log(ph/(float64(q[i])/float64(nq))))
				}
			}
		}
	}
	out.Lower = math.Max(out.Lower, 0)
	out.Point = math.Max(out.Point, 0)
	return out
}

// bucket counts samples per bucket of edges.
func bucket(samples, edges []float64) []int {
	c := make([]int, len(edges)+1)
	for _, s := range samples {
		i, _ := slices.BinarySearch(edges, s)
		if i < len(edges) && edges[i] == s {
			i++
		}
		c[i]++
	}
	return c
}
