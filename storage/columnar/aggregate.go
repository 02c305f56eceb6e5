package columnar

import (
	crand "crypto/rand"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/ctfed/ctfed/node"
)

// Options says how Aggregate counts.
type Options struct {
	// ConsentOnly counts only cases whose consent is yes.
	ConsentOnly bool
	// Bound applies contribution bounding: for each case and each
	// multi-valued GROUP BY dimension, keep a uniformly random subset of at
	// most the dimension's L0 of its codes in the answer's domain, drawn
	// afresh per query.
	Bound bool
	// Rand seeds the per-query random generators of bounding. Nil: a ChaCha8
	// generator seeded from crypto/rand. Tests set it to repeat a draw.
	Rand *rand.Rand
	// MaxCells is the cell limit passed to Query.Check; 0 means
	// node.DefaultMaxCells.
	MaxCells int
}

// Tuning of the scan.
const (
	blockSize = 1024 // rows filtered and tallied together
	outside   = -(1 << 29)
)

// minWorkerRows is the fewest rows worth a goroutine of their own.
var minWorkerRows = 1 << 15

// Tally modes.
const (
	modeCount = iota
	modeSum
	modeHist
)

// filter is one WHERE condition compiled against a column.
type filter struct {
	col  *column
	lut  [256]uint8 // single and sparse: 1 for a selected code (never for noCode or overflow)
	mask uint16     // mask: the selected codes
	none uint8      // multi: 1 when the none code is selected
}

// group is one GROUP BY dimension compiled against a column.
type group struct {
	col     *column
	off     [256]int32 // code → its position in the domain times the stride, or outside
	noneOff int32      // multi: the offset of the none code, or outside
	domMask uint16     // mask: the codes in the domain
	l0      int        // bounded: the most codes one case keeps; 0 when unbounded
	size    int32      // the domain's size
	stride  int32      // cells between consecutive codes of the domain
	// dense: single-valued, pair path: code → position in the domain times
	// the stride among the single-valued dimensions only, or outside.
	dense [256]int32
}

// plan is a query compiled against the table.
type plan struct {
	singles, masks, sparses []*filter
	consent                 []uint8 // non-nil: keep only consenting cases
	values                  []int16 // non-nil: the measure column; keep only known values
	mode                    int
	lo                      int64
	bins                    int
	cells                   int
	singleGroups            []*group
	multiGroups             []*group

	// The pair path (see pairPlan): nil when not used.
	pairs *pairPlan
}

// pairPlan is the fast path for a query grouped by single-valued
// dimensions and one bitset dimension: a COUNT, or an unbounded SUM or AVG.
// The scan counts each case once under (its single-valued cell, the id of
// its bitset restricted to the domain), a branch-free increment, and
// expands the pair counts into cells at the end. Bounding draws there, for
// each of the n cases of a pair whose bitset has more than l0 codes, its own
// uniform subset of l0 codes: the cases of a pair are alike, so this is the
// same draw as one per case during the scan.
type pairPlan struct {
	baseCells int       // cells of the single-valued dimensions
	ids       int       // distinct restricted bitsets, id 0 reaching no cell
	remap     []uint16  // bitset → id
	idOffs    [][]int32 // id → the offsets of its cells within a base cell
	realBase  []int32   // dense base → offset of the base's first cell
}

// maxPairs bounds the pair path's tally per goroutine (base cells × ids).
const maxPairs = 1 << 20

// pairRowsPerEntry is how many rows per entry of its tally the pair path
// needs to be worth its setup.
var pairRowsPerEntry = 4

// Aggregate computes q's exact answer over the table's cases: one Tally per
// cell of q's grouped domain, every cell present, row-major with the last
// GROUP BY dimension varying fastest. A case counts in a cell when it passes
// every filter (for a multi-valued dimension: has any of the codes, a case
// with no code having the none code) and has the cell's code in each GROUP
// BY dimension; without bounding, a case with several codes of a
// multi-valued dimension counts in each. COUNT counts cases; SUM, AVG and
// QUANTILE count only cases whose field is known, with values clamped to the
// field's public bounds. The table's L0 is the most cells one case can
// reach: the product, over the multi-valued GROUP BY dimensions, of
// min(the dimension's L0, its domain's size) when bounded, of the domain's
// size when not. Returns Invalid when q fails Query.Check.
func (t *Table) Aggregate(q *node.Query, opt Options) (*node.ExactTable, error) {
	if err := q.Check(t.cb, opt.MaxCells); err != nil {
		return nil, err
	}
	domains := q.Domains(t.cb)

	t.mu.RLock()
	defer t.mu.RUnlock()
	p := t.compile(q, domains, opt)
	res := &node.ExactTable{Query: q, Domains: domains, L0: 1, Bounded: opt.Bound}
	for _, g := range p.multiGroups {
		if g.l0 > 0 {
			res.L0 *= g.l0
		} else {
			res.L0 *= len(domains[indexOf(q.GroupBy, g.col.dim.Name)])
		}
	}

	rows := len(t.refs)
	nw := max(1, min(runtime.GOMAXPROCS(0), rows/minWorkerRows))
	per := (rows + nw - 1) / nw
	per = (per + blockSize - 1) / blockSize * blockSize
	workers := make([]*worker, nw)
	for i := range workers {
		w, err := p.newWorker(opt)
		if err != nil {
			return nil, err
		}
		workers[i] = w
	}
	if nw == 1 {
		p.scan(workers[0], 0, rows)
	} else {
		var wg sync.WaitGroup
		for i, w := range workers {
			lo, hi := min(i*per, rows), min((i+1)*per, rows)
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.scan(w, lo, hi)
			}()
		}
		wg.Wait()
	}

	res.Cells = make([]node.Tally, p.cells)
	var hist []int64
	if p.mode == modeHist {
		hist = make([]int64, p.cells*p.bins)
	}
	for i := range res.Cells {
		c := &res.Cells[i]
		for _, w := range workers {
			c.Count += w.count[i]
			if p.mode != modeCount {
				c.Sum += w.sum[i]
			}
		}
		if hist != nil {
			c.Hist = hist[i*p.bins : (i+1)*p.bins : (i+1)*p.bins]
			for _, w := range workers {
				for j, v := range w.hist[i*p.bins : (i+1)*p.bins] {
					c.Hist[j] += v
				}
			}
		}
	}
	return res, nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// compile turns a checked query into a plan over t's columns. t.mu must be
// held.
func (t *Table) compile(q *node.Query, domains [][]string, opt Options) *plan {
	p := &plan{cells: 1}
	for _, d := range domains {
		p.cells *= len(d)
	}
	grouped := map[string]bool{}
	stride := int32(1)
	groups := make([]*group, len(q.GroupBy))
	for i := len(q.GroupBy) - 1; i >= 0; i-- {
		col := &t.cols[t.byName[q.GroupBy[i]]]
		grouped[col.dim.Name] = true
		g := &group{col: col, noneOff: outside, size: int32(len(domains[i])), stride: stride}
		for k := range g.off {
			g.off[k] = outside
		}
		for pos, code := range domains[i] {
			k := col.dim.Codes.Index(code)
			g.off[k] = int32(pos) * stride
			if col.kind == kindMask {
				g.domMask |= 1 << k
			}
			if col.dim.Multi && k == col.none {
				g.noneOff = int32(pos) * stride
			}
		}
		if opt.Bound && col.dim.Multi {
			g.l0 = min(max(col.dim.L0, 1), len(domains[i]))
		}
		stride *= int32(len(domains[i]))
		groups[i] = g
	}
	for _, g := range groups {
		if g.col.dim.Multi {
			p.multiGroups = append(p.multiGroups, g)
		} else {
			p.singleGroups = append(p.singleGroups, g)
		}
	}

	for _, f := range q.Filters {
		if grouped[f.Dim] {
			// The group's domain is the filter's codes: a case outside it
			// reaches no cell.
			continue
		}
		col := &t.cols[t.byName[f.Dim]]
		cf := &filter{col: col}
		for _, code := range f.Codes {
			k := col.dim.Codes.Index(code)
			switch {
			case col.dim.Multi && k == col.none:
				cf.none = 1
				if col.kind == kindMask {
					cf.mask |= 1 << k // an explicit none code counts as having it
				} else {
					cf.lut[k] = 1
				}
			case col.kind == kindMask:
				cf.mask |= 1 << k
			default:
				cf.lut[k] = 1
			}
		}
		switch col.kind {
		case kindSingle:
			p.singles = append(p.singles, cf)
		case kindMask:
			p.masks = append(p.masks, cf)
		case kindSparse:
			p.sparses = append(p.sparses, cf)
		}
	}
	if opt.ConsentOnly {
		p.consent = t.consent
	}

	switch q.Measure.Func {
	case node.FuncCount:
		p.mode = modeCount
	case node.FuncSum, node.FuncAvg:
		p.mode = modeSum
	case node.FuncQuantile:
		p.mode = modeHist
	}
	if len(p.multiGroups) == 1 && p.multiGroups[0].col.kind == kindMask &&
		(p.mode == modeCount || p.mode == modeSum && p.multiGroups[0].l0 == 0) {
		p.pairs = p.pairPlan(len(t.refs))
	}
	if p.mode != modeCount {
		for i := range t.measures {
			if m := &t.measures[i]; m.field.Name == q.Measure.Field {
				p.values = m.values
				p.lo = m.field.Lo
				p.bins = int(m.field.Hi - m.field.Lo + 1)
			}
		}
	}
	return p
}

// pairPlan builds the pair path's tables, or returns nil when its tally
// would be too large, or too large for the rows to scan.
func (p *plan) pairPlan(rows int) *pairPlan {
	g := p.multiGroups[0]
	seen := 0
	for _, w := range g.col.seen {
		seen += bits.OnesCount64(w)
	}
	base := 1
	for _, s := range p.singleGroups {
		base *= int(s.size)
	}
	if base*seen > maxPairs || rows < pairRowsPerEntry*base*seen {
		return nil
	}
	pp := &pairPlan{baseCells: 1}
	for i := len(p.singleGroups) - 1; i >= 0; i-- {
		s := p.singleGroups[i]
		for k, off := range s.off {
			s.dense[k] = outside
			if off >= 0 {
				s.dense[k] = off / s.stride * int32(pp.baseCells)
			}
		}
		pp.baseCells *= int(s.size)
	}
	pp.realBase = make([]int32, pp.baseCells)
	for d := range pp.realBase {
		rem, off := int32(d), int32(0)
		for i := len(p.singleGroups) - 1; i >= 0; i-- {
			s := p.singleGroups[i]
			off += rem % s.size * s.stride
			rem /= s.size
		}
		pp.realBase[d] = off
	}

	n := len(g.col.dim.Codes.Codes)
	pp.remap = make([]uint16, 1<<n)
	pp.idOffs = [][]int32{nil}
	ids := make([]uint16, 1<<n) // restricted bitset → id, 0 for none yet
	for v := range pp.remap {
		if g.col.seen[v>>6]&(1<<(v&63)) == 0 {
			continue // no case has had this bitset
		}
		eff := uint16(v)
		if eff == 0 {
			eff = 1 << g.col.none
		}
		eff &= g.domMask
		if eff == 0 {
			continue // id 0: no cell
		}
		id := ids[eff]
		if id == 0 {
			id = uint16(len(pp.idOffs))
			ids[eff] = id
			var offs []int32
			for m := eff; m != 0; m &= m - 1 {
				offs = append(offs, g.off[bits.TrailingZeros16(m)])
			}
			pp.idOffs = append(pp.idOffs, offs)
		}
		pp.remap[v] = id
	}
	pp.ids = len(pp.idOffs)
	return pp
}

// worker is one goroutine's share of a scan: its buffers and partial
// tallies.
type worker struct {
	sel, base  []int32
	comb, next []int32
	offs       []int32
	count, sum []int64
	hist       []int64
	rng        *rand.ChaCha8
	pairs      []uint32 // the pair path's counts
	pairSums   []int64  // the pair path's sums
}

func (p *plan) newWorker(opt Options) (*worker, error) {
	w := &worker{
		sel:   make([]int32, blockSize),
		base:  make([]int32, blockSize),
		count: make([]int64, p.cells),
	}
	if p.mode != modeCount {
		w.sum = make([]int64, p.cells)
	}
	if p.mode == modeHist {
		w.hist = make([]int64, p.cells*p.bins)
	}
	if pp := p.pairs; pp != nil {
		w.pairs = make([]uint32, pp.baseCells*pp.ids)
		if p.mode == modeSum {
			w.pairSums = make([]int64, pp.baseCells*pp.ids)
		}
	}
	if opt.Bound {
		var seed [32]byte
		if opt.Rand != nil {
			for i := 0; i < len(seed); i += 8 {
				v := opt.Rand.Uint64()
				for j := range 8 {
					seed[i+j] = byte(v >> (8 * j))
				}
			}
		} else if _, err := crand.Read(seed[:]); err != nil {
			return nil, node.E("columnar.Aggregate", node.Internal, "seeding the bounding generator: %w", err)
		}
		w.rng = rand.NewChaCha8(seed)
	}
	return w, nil
}

// scan tallies rows [lo, hi) into w.
func (p *plan) scan(w *worker, lo, hi int) {
	for b := lo; b < hi; b += blockSize {
		n := p.filter(w.sel, b, min(b+blockSize, hi))
		if n == 0 {
			continue
		}
		sel, base := w.sel[:n], w.base[:n]
		clear(base)
		for _, g := range p.singleGroups {
			col, off := g.col.single, &g.off
			if p.pairs != nil {
				off = &g.dense
			}
			for i, r := range sel {
				base[i] += off[col[r]]
			}
		}
		switch {
		case p.pairs != nil:
			p.scanPairs(w, sel, base)
		case len(p.multiGroups) == 0:
			if p.mode == modeCount {
				for _, c := range base {
					if c >= 0 {
						w.count[c]++
					}
				}
				continue
			}
			for i, c := range base {
				if c >= 0 {
					p.add(w, c, sel[i])
				}
			}
		case len(p.multiGroups) == 1 && p.multiGroups[0].col.kind == kindMask && p.multiGroups[0].l0 == 0:
			p.scanMask(w, sel, base)
		case len(p.multiGroups) == 1 && p.multiGroups[0].col.kind == kindMask:
			p.scanMaskBounded(w, sel, base)
		default:
			p.scanMulti(w, sel, base)
		}
	}
	if p.pairs != nil {
		p.expandPairs(w)
	}
}

// scanPairs tallies the selected rows on the pair path.
func (p *plan) scanPairs(w *worker, sel, base []int32) {
	pp := p.pairs
	col, remap, ids, pairs := p.multiGroups[0].col.mask, pp.remap, int32(pp.ids), w.pairs
	if p.mode == modeCount {
		for i, r := range sel {
			if b := base[i]; b >= 0 {
				pairs[b*ids+int32(remap[col[r]])]++
			}
		}
		return
	}
	sums, values := w.pairSums, p.values
	for i, r := range sel {
		if b := base[i]; b >= 0 {
			k := b*ids + int32(remap[col[r]])
			pairs[k]++
			sums[k] += int64(values[r])
		}
	}
}

// expandPairs adds the pair counts of w into its cells.
func (p *plan) expandPairs(w *worker) {
	pp := p.pairs
	l0 := p.multiGroups[0].l0
	var pick []int32
	for b, real := range pp.realBase {
		row := w.pairs[b*pp.ids : (b+1)*pp.ids]
		for id := 1; id < len(row); id++ {
			n := row[id]
			if n == 0 {
				continue
			}
			offs := pp.idOffs[id]
			if l0 > 0 && len(offs) > l0 {
				// Bounded COUNT: each case keeps its own l0 codes.
				pick = append(pick[:0], offs...)
				for range n {
					for k := range l0 {
						j := k + int(uniform(w.rng, uint64(len(pick)-k)))
						pick[k], pick[j] = pick[j], pick[k]
						w.count[real+pick[k]]++
					}
				}
				continue
			}
			for _, o := range offs {
				w.count[real+o] += int64(n)
				if w.pairSums != nil {
					w.sum[real+o] += w.pairSums[b*pp.ids+id]
				}
			}
		}
	}
}

// filter writes into sel the rows of [lo, hi) that pass every filter and
// returns how many there are.
func (p *plan) filter(sel []int32, lo, hi int) int {
	n := hi - lo
	singles := p.singles
	if len(singles) > 0 {
		// The first filter reads the block directly.
		col, lut := singles[0].col.single[lo:hi], &singles[0].lut
		m := 0
		for i, c := range col {
			sel[m] = int32(lo + i)
			m += int(lut[c])
		}
		n, singles = m, singles[1:]
	} else {
		for i := range n {
			sel[i] = int32(lo + i)
		}
	}
	for _, f := range singles {
		col, lut := f.col.single, &f.lut
		m := 0
		for _, r := range sel[:n] {
			sel[m] = r
			m += int(lut[col[r]])
		}
		n = m
	}
	for _, f := range p.masks {
		col, fm, none := f.col.mask, f.mask, f.none != 0
		m := 0
		for _, r := range sel[:n] {
			v := col[r]
			sel[m] = r
			if v&fm != 0 || v == 0 && none {
				m++
			}
		}
		n = m
	}
	for _, f := range p.sparses {
		m := 0
		for _, r := range sel[:n] {
			sel[m] = r
			if f.matchSparse(r) {
				m++
			}
		}
		n = m
	}
	if p.consent != nil {
		col := p.consent
		m := 0
		for _, r := range sel[:n] {
			sel[m] = r
			m += int(col[r])
		}
		n = m
	}
	if p.values != nil {
		col := p.values
		m := 0
		for _, r := range sel[:n] {
			sel[m] = r
			if col[r] != unknownValue {
				m++
			}
		}
		n = m
	}
	return n
}

func (f *filter) matchSparse(r int32) bool {
	s := f.col.sparse[slots*int(r) : slots*int(r)+slots]
	if s[0] == noCode {
		return f.none != 0
	}
	if f.lut[s[0]]|f.lut[s[1]]|f.lut[s[2]] != 0 {
		return true
	}
	if s[2] == overflow {
		for _, c := range f.col.extra[r] {
			if f.lut[c] != 0 {
				return true
			}
		}
	}
	return false
}

// add tallies row r's measure in cell c.
func (p *plan) add(w *worker, c int32, r int32) {
	w.count[c]++
	switch p.mode {
	case modeSum:
		w.sum[c] += int64(p.values[r])
	case modeHist:
		v := int64(p.values[r])
		w.sum[c] += v
		w.hist[int(c)*p.bins+int(v-p.lo)]++
	}
}

// scanMask tallies the selected rows when the only multi-valued GROUP BY
// dimension is a bitset and contributions are not bounded.
func (p *plan) scanMask(w *worker, sel, base []int32) {
	g := p.multiGroups[0]
	col, off, dm := g.col.mask, &g.off, g.domMask
	// A case with no code counts in the none code: give it that bit.
	noneBit := uint16(1) << g.col.none
	if p.mode == modeCount {
		count := w.count
		for i, r := range sel {
			b := base[i]
			if b < 0 {
				continue
			}
			v := col[r]
			if v == 0 {
				v = noneBit
			}
			for v &= dm; v != 0; v &= v - 1 {
				count[b+off[bits.TrailingZeros16(v)]]++
			}
		}
		return
	}
	for i, r := range sel {
		b := base[i]
		if b < 0 {
			continue
		}
		v := col[r]
		if v == 0 {
			v = noneBit
		}
		for v &= dm; v != 0; v &= v - 1 {
			p.add(w, b+off[bits.TrailingZeros16(v)], r)
		}
	}
}

// scanMaskBounded tallies the selected rows when the only multi-valued
// GROUP BY dimension is a bitset and contributions are bounded: a case with
// more than l0 codes in the domain keeps l0 of them drawn uniformly without
// replacement.
func (p *plan) scanMaskBounded(w *worker, sel, base []int32) {
	g := p.multiGroups[0]
	col, off, dm, l0 := g.col.mask, &g.off, g.domMask, g.l0
	noneBit := uint16(1) << g.col.none
	for i, r := range sel {
		b := base[i]
		if b < 0 {
			continue
		}
		v := col[r]
		if v == 0 {
			v = noneBit
		}
		v &= dm
		k := bits.OnesCount16(v)
		if k > l0 {
			var kept uint16
			for j := range l0 {
				// The n-th remaining code, n uniform over the k-j left.
				n := uniform(w.rng, uint64(k-j))
				m := v
				for range n {
					m &= m - 1
				}
				bit := m & -m
				kept |= bit
				v &^= bit
			}
			v = kept
		}
		for ; v != 0; v &= v - 1 {
			p.add(w, b+off[bits.TrailingZeros16(v)], r)
		}
	}
}

// uniform returns a uniform random integer in [0, n), n > 0, without bias
// (Lemire's multiply-and-reject method).
func uniform(r *rand.ChaCha8, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// scanMulti tallies the selected rows in the general case: any number of
// multi-valued GROUP BY dimensions, bounded or not.
func (p *plan) scanMulti(w *worker, sel, base []int32) {
	for i, r := range sel {
		b := base[i]
		if b < 0 {
			continue
		}
		w.comb = append(w.comb[:0], b)
		for _, g := range p.multiGroups {
			offs := g.offsets(w.offs[:0], r)
			w.offs = offs
			if g.l0 > 0 && len(offs) > g.l0 {
				// A uniformly random subset of l0 codes: the first l0
				// steps of a Fisher–Yates shuffle.
				for k := range g.l0 {
					j := k + int(uniform(w.rng, uint64(len(offs)-k)))
					offs[k], offs[j] = offs[j], offs[k]
				}
				offs = offs[:g.l0]
			}
			w.next = w.next[:0]
			for _, c := range w.comb {
				for _, o := range offs {
					w.next = append(w.next, c+o)
				}
			}
			w.comb, w.next = w.next, w.comb
		}
		for _, c := range w.comb {
			p.add(w, c, r)
		}
	}
}

// offsets appends the cell offsets of row r's codes in g's domain.
func (g *group) offsets(out []int32, r int32) []int32 {
	switch g.col.kind {
	case kindMask:
		v := g.col.mask[r]
		if v == 0 {
			if g.noneOff >= 0 {
				out = append(out, g.noneOff)
			}
			return out
		}
		for v &= g.domMask; v != 0; v &= v - 1 {
			out = append(out, g.off[bits.TrailingZeros16(v)])
		}
	case kindSparse:
		s := g.col.sparse[slots*int(r) : slots*int(r)+slots]
		if s[0] == noCode {
			if g.noneOff >= 0 {
				out = append(out, g.noneOff)
			}
			return out
		}
		for _, c := range s {
			if c == noCode {
				break
			}
			if c == overflow {
				for _, c := range g.col.extra[r] {
					if o := g.off[c]; o >= 0 {
						out = append(out, o)
					}
				}
				break
			}
			if o := g.off[c]; o >= 0 {
				out = append(out, o)
			}
		}
	}
	return out
}
