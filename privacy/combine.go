package privacy

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Combined is a value computed from released noisy values — a total over
// nodes, a mean, a quantile — with its 95% interval [Lo, Hi].
type Combined struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// maxMemo bounds each of a Combiner's tables; a full table is emptied.
const maxMemo = 1024

// Combiner computes the values and intervals of totals, means and quantiles
// from one or more nodes' independent noisy releases, from the exact
// distribution of the summed noise (see sumnoise.go), not from a normal
// approximation, which under-covers when few nodes answer. It is the same
// computation locally (one release) and across the federation.
//
// A Combiner memoises what it computes by the multiset of noises involved
// (most cells of an answer share them), so one should live as long as the
// answers it combines share scales: a query, or a node. It is safe for
// concurrent use. A nil *Combiner works and memoises nothing.
type Combiner struct {
	mu     sync.Mutex
	dists  map[string]*sumDist
	means  map[string]*meanTable
	quants map[string]*quantTable
}

// NewCombiner returns an empty Combiner.
func NewCombiner() *Combiner {
	return &Combiner{
		dists:  make(map[string]*sumDist),
		means:  make(map[string]*meanTable),
		quants: make(map[string]*quantTable),
	}
}

// memo returns m[key], computing and storing it with f when absent.
func memo[T any](c *Combiner, m *map[string]T, key string, f func() T) T {
	if c == nil {
		return f()
	}
	c.mu.Lock()
	v, ok := (*m)[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = f()
	c.mu.Lock()
	if len(*m) >= maxMemo {
		*m = make(map[string]T)
	}
	(*m)[key] = v
	c.mu.Unlock()
	return v
}

func (c *Combiner) dist(ts []term) *sumDist {
	ts = normalise(ts)
	if c == nil {
		return computeDist(ts, false)
	}
	return memo(c, &c.dists, termsKey('d', ts), func() *sumDist { return computeDist(ts, false) })
}

func unitTerms(noises []Noise) ([]term, error) {
	if len(noises) == 0 {
		return nil, errors.New("nothing to combine")
	}
	ts := make([]term, len(noises))
	for i, n := range noises {
		if err := n.Validate(); err != nil {
			return nil, fmt.Errorf("part %d: %w", i, err)
		}
		ts[i] = term{noise: n, w: 1, n: 1}
	}
	return ts, nil
}

// HalfWidth returns the half-width of the 95% interval of a sum of
// independent whole numbers released with the given noises: the smallest
// whole m with P(|N_1 + … + N_k| ≤ m) ≥ 0.95 (to within 10^-5 when the
// sum's spread exceeds the exact lattice grid; see sumnoise.go).
func (c *Combiner) HalfWidth(noises []Noise) (float64, error) {
	ts, err := unitTerms(noises)
	if err != nil {
		return 0, err
	}
	return c.dist(ts).half, nil
}

// Within returns P(|N_1 + … + N_k| ≤ x) for independent whole-number noises:
// the coverage of the interval value ± x.
func (c *Combiner) Within(noises []Noise, x float64) (float64, error) {
	ts, err := unitTerms(noises)
	if err != nil {
		return 0, err
	}
	return c.dist(ts).within(x), nil
}

// Total sums independent noisy releases of the same cell (one per node) and
// returns the total with its 95% interval from the exact distribution of the
// summed noise.
func (c *Combiner) Total(parts []Estimate) (Combined, error) {
	noises := make([]Noise, len(parts))
	var v float64
	for i, p := range parts {
		noises[i] = p.Noise()
		if !finite(p.Value) {
			return Combined{}, fmt.Errorf("part %d: value is not finite", i)
		}
		v += p.Value
	}
	h, err := c.HalfWidth(noises)
	if err != nil {
		return Combined{}, err
	}
	return Combined{Value: v, Lo: v - h, Hi: v + h}, nil
}

// meanGrid is the number of points of a mean table.
const meanGrid = 33

// meanScan is the number of points scanned for a mean's interval.
const meanScan = 129

// meanTable holds, for one set of (sum noise, count noise) pairs, the
// standardised 95% half-width κ(μ) = q(μ)/sd(μ) of the pivot
// D(μ) = Σ (N_sum,i − μ·N_count,i) on a grid of μ over [lo, hi].
type meanTable struct {
	lo, hi float64
	vs, vc float64 // Σ variances of the sum noises and of the count noises
	kappa  []float64
}

func (t *meanTable) sd(mu float64) float64 { return math.Sqrt(t.vs + mu*mu*t.vc) }

// q returns the 95% half-width of D(μ).
func (t *meanTable) q(mu float64) float64 {
	u := (mu - t.lo) / (t.hi - t.lo) * float64(len(t.kappa)-1)
	u = math.Min(math.Max(u, 0), float64(len(t.kappa)-1))
	i := min(int(u), len(t.kappa)-2)
	f := u - float64(i)
	return ((1-f)*t.kappa[i] + f*t.kappa[i+1]) * t.sd(mu)
}

func computeMeanTable(sum, count []term, lo, hi float64) *meanTable {
	t := &meanTable{lo: lo, hi: hi, kappa: make([]float64, meanGrid)}
	for _, s := range sum {
		t.vs += float64(s.n) * s.noise.Variance()
	}
	for _, s := range count {
		t.vc += float64(s.n) * s.noise.Variance()
	}
	ts := make([]term, 0, len(sum)+len(count))
	for i := range t.kappa {
		mu := lo + (hi-lo)*float64(i)/float64(meanGrid-1)
		ts = append(ts[:0], sum...)
		for _, s := range count {
			ts = append(ts, term{noise: s.noise, w: math.Abs(mu), n: s.n})
		}
		d := computeDist(normalise(ts), true)
		t.kappa[i] = d.half / t.sd(mu)
	}
	return t
}

// Mean returns AVG = total sum / total count of one cell from each node's
// noisy sum and noisy count (sums[i] and counts[i] from node i; values
// clamped to the public bounds [lo, hi]), with a 95% interval.
//
// The interval is Fieller's: the set of means μ in [lo, hi] for which
// |S − μ·C| ≤ q(μ), where S and C are the noisy totals and q(μ) is the 95%
// half-width of the exact distribution of the noise of S − μ·C, that is of
// Σ (N_sum,i − μ·N_count,i). At the true mean, S − μ·C is exactly that
// noise, so the set holds the true mean 95% of the time, whatever the
// count, with no normal approximation; it is computed from public scales
// only (post-processing). q is tabulated on 33 points of [lo, hi] per set
// of scales and the set's ends are found to 10^-9 of the range. The value
// is S/C clamped to [lo, hi]; when C ≤ 0 it is the middle of [lo, hi] and
// the interval is [lo, hi] (such a cell never passes the release rule).
func (c *Combiner) Mean(sums, counts []Estimate, lo, hi float64) (Combined, error) {
	if len(sums) == 0 || len(sums) != len(counts) {
		return Combined{}, fmt.Errorf("a mean needs one sum and one count per node, got %d sums and %d counts", len(sums), len(counts))
	}
	if !finite(lo) || !finite(hi) || lo > hi {
		return Combined{}, fmt.Errorf("bad bounds [%v, %v]", lo, hi)
	}
	st := make([]term, len(sums))
	ct := make([]term, len(counts))
	var s, n float64
	for i := range sums {
		if err := sums[i].Noise().Validate(); err != nil {
			return Combined{}, fmt.Errorf("sum %d: %w", i, err)
		}
		if err := counts[i].Noise().Validate(); err != nil {
			return Combined{}, fmt.Errorf("count %d: %w", i, err)
		}
		if !finite(sums[i].Value) || !finite(counts[i].Value) {
			return Combined{}, fmt.Errorf("node %d: value is not finite", i)
		}
		st[i] = term{noise: sums[i].Noise(), w: 1, n: 1}
		ct[i] = term{noise: counts[i].Noise(), w: 1, n: 1}
		s += sums[i].Value
		n += counts[i].Value
	}
	if lo == hi {
		return Combined{Value: lo, Lo: lo, Hi: hi}, nil
	}
	if n <= 0 {
		return Combined{Value: (lo + hi) / 2, Lo: lo, Hi: hi}, nil
	}
	st, ct = normalise(st), normalise(ct)
	build := func() *meanTable { return computeMeanTable(st, ct, lo, hi) }
	var t *meanTable
	if c == nil {
		t = build()
	} else {
		key := termsKey('m', st, lo, hi) + termsKey('c', ct)
		t = memo(c, &c.means, key, build)
	}
	g := func(mu float64) float64 { return math.Abs(s-mu*n) - t.q(mu) }
	value := math.Min(math.Max(s/n, lo), hi)
	a, b := solveSet(g, lo, hi, value)
	return Combined{Value: value, Lo: a, Hi: b}, nil
}

// solveSet returns the hull of {μ in [lo, hi] : g(μ) ≤ 0}, scanned on a grid
// (plus the point at) and refined by bisection; when the set is empty it
// returns the grid point where g is smallest, as a point.
func solveSet(g func(float64) float64, lo, hi, at float64) (float64, float64) {
	xs := make([]float64, 0, meanScan+1)
	for i := range meanScan {
		xs = append(xs, lo+(hi-lo)*float64(i)/float64(meanScan-1))
	}
	// keep xs sorted with at inside
	for i := 1; i < len(xs); i++ {
		if at > xs[i-1] && at < xs[i] {
			xs = append(xs[:i], append([]float64{at}, xs[i:]...)...)
			break
		}
	}
	gs := make([]float64, len(xs))
	first, last, best := -1, -1, 0
	for i, x := range xs {
		gs[i] = g(x)
		if gs[i] <= 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
		if gs[i] < gs[best] {
			best = i
		}
	}
	if first < 0 {
		return xs[best], xs[best]
	}
	a, b := xs[first], xs[last]
	if first > 0 {
		a = bisect(g, xs[first-1], xs[first]) // g > 0 at the left end
	}
	if last < len(xs)-1 {
		b = bisect(g, xs[last+1], xs[last])
	}
	return a, b
}

// bisect returns the point between out (g > 0) and in (g ≤ 0) where g
// crosses 0, on the in side, to 10^-9 of the distance.
func bisect(g func(float64) float64, out, in float64) float64 {
	for range 32 {
		mid := (out + in) / 2
		if g(mid) <= 0 {
			in = mid
		} else {
			out = mid
		}
	}
	return in
}

// quantTable holds, for one set of bin noises, one q and one number of bins,
// the 95% half-width z[x] of Z(x) = (1−q)·Σ_{j≤x} e_j − q·Σ_{j>x} e_j, the
// noise of the statistic T(x) used by Quantile.
type quantTable struct {
	z []float64
}

func computeQuantTable(bin []term, q float64, nb int) *quantTable {
	t := &quantTable{z: make([]float64, nb)}
	ts := make([]term, 0, 2*len(bin))
	for x := range nb {
		ts = ts[:0]
		for _, b := range bin {
			ts = append(ts, term{noise: b.noise, w: 1 - q, n: b.n * (x + 1)},
				term{noise: b.noise, w: q, n: b.n * (nb - 1 - x)})
		}
		t.z[x] = computeDist(normalise(ts), true).half
	}
	return t
}

// Quantile returns the q-quantile of one cell's values from the nodes'
// noisy histograms over the same public 1-unit bins lo, lo+1, …
// (hists[i] from node i), with a 95% interval. The histograms are summed bin
// by bin (unclamped, as released).
//
// With F̃(x) the noisy cumulative count up to bin x and F̃(hi) the noisy
// total, the statistic T(x) = F̃(x) − q·F̃(hi) estimates F(x) − q·n without
// bias. The value is the first bin with T(x) ≥ 0 (the last bin if none).
// The interval is the hull of the bins x that a test does not reject as the
// true quantile Q (the first bin with F(Q) ≥ q·n): x is kept when
// T(x) ≥ −z(x) and T(x−1) < z(x−1), where z is the 95% half-width of the
// exact distribution of T's noise, so each condition fails at Q with
// probability at most 2.5% and the interval holds Q at least 95% of the time
// (conservatively). Negative bins are not clamped: clamping adds the
// positive part of the noise of every empty bin, a bias that pulls quantiles
// of small cells toward the middle of the range.
func (c *Combiner) Quantile(hists []Hist, q float64, lo int64) (Combined, error) {
	if len(hists) == 0 {
		return Combined{}, errors.New("nothing to combine")
	}
	if !(q > 0 && q < 1) {
		return Combined{}, fmt.Errorf("quantile must be in (0, 1), got %v", q)
	}
	nb := len(hists[0].Bins)
	if nb == 0 {
		return Combined{}, errors.New("a histogram has no bins")
	}
	bins := make([]float64, nb)
	bt := make([]term, len(hists))
	for i, h := range hists {
		if len(h.Bins) != nb {
			return Combined{}, fmt.Errorf("histogram %d has %d bins, want %d", i, len(h.Bins), nb)
		}
		if err := h.Noise().Validate(); err != nil {
			return Combined{}, fmt.Errorf("histogram %d: %w", i, err)
		}
		for j, v := range h.Bins {
			if !finite(v) {
				return Combined{}, fmt.Errorf("histogram %d: bin %d is not finite", i, j)
			}
			bins[j] += v
		}
		bt[i] = term{noise: h.Noise(), w: 1, n: 1}
	}
	bt = normalise(bt)
	build := func() *quantTable { return computeQuantTable(bt, q, nb) }
	var t *quantTable
	if c == nil {
		t = build()
	} else {
		t = memo(c, &c.quants, termsKey('q', bt, q, float64(nb)), build)
	}
	var total float64
	for _, v := range bins {
		total += v
	}
	est, first, last := nb-1, -1, -1
	var cum, prevT float64
	for x, v := range bins {
		cum += v
		tx := cum - q*total
		if tx >= -t.z[x] && (x == 0 || prevT < t.z[x-1]) {
			if first < 0 {
				first = x
			}
			last = x
		}
		prevT = tx
	}
	for x, cum := 0, 0.0; x < nb; x++ {
		cum += bins[x]
		if cum-q*total >= 0 {
			est = x
			break
		}
	}
	if first < 0 {
		first, last = est, est
	}
	l := float64(lo)
	return Combined{Value: l + float64(est), Lo: l + float64(first), Hi: l + float64(last)}, nil
}
