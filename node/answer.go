package node

import (
	"fmt"
	"math"

	"github.com/ctfed/ctfed/privacy"
)

// NoisyCell is one cell of a node's noisy answer: its noisy count, and the
// noisy sum (SUM, AVG) or noisy histogram (QUANTILE) of its measure. Values
// are unclamped and unsuppressed, as released.
type NoisyCell struct {
	Count privacy.Estimate  `json:"count"`
	Sum   *privacy.Estimate `json:"sum,omitempty"`
	Hist  *privacy.Hist     `json:"hist,omitempty"`
}

// NoisyTable is one node's differentially private answer to a query: every
// cell of the grouped domain, row-major like ExactTable, with the noise each
// value carries and the node's minimum cell size. It is what may leave a
// node; the release rule is applied by whoever shows it to people (Combine).
type NoisyTable struct {
	Query       *Query            `json:"query"`
	Domains     [][]string        `json:"domains"`
	Cells       []NoisyCell       `json:"cells"`
	Mechanism   privacy.Mechanism `json:"mechanism"`
	Epsilon     float64           `json:"epsilon"`
	Delta       float64           `json:"delta,omitempty"`
	MinCellSize int               `json:"min_cell_size"`
	// Epoch is the answer-cache epoch the table was computed in.
	Epoch int64 `json:"epoch"`
}

// CellKey returns the codes of cell i.
func (t *NoisyTable) CellKey(i int) []string {
	return (&ExactTable{Domains: t.Domains}).CellKey(i)
}

// Check verifies that t is a well-formed answer to q: matching domains, one
// cell per domain combination, the parts its measure needs, finite values
// and valid noise. A table from another node is checked before it is
// combined. Returns Invalid.
func (t *NoisyTable) Check(cb *Codebook, q *Query) error {
	const op = "check answer"
	if t.Query == nil || t.Query.Canonical() != q.Canonical() {
		return E(op, Invalid, "the answer is for another query")
	}
	if len(t.Domains) != len(q.GroupBy) {
		return E(op, Invalid, "the answer has %d dimensions, want %d", len(t.Domains), len(q.GroupBy))
	}
	want := q.Domains(cb)
	n := 1
	for i, d := range t.Domains {
		if len(d) != len(want[i]) {
			return E(op, Invalid, "dimension %s has %d codes, want %d", q.GroupBy[i], len(d), len(want[i]))
		}
		for j := range d {
			if d[j] != want[i][j] {
				return E(op, Invalid, "dimension %s differs from the codebook's", q.GroupBy[i])
			}
		}
		n *= len(d)
	}
	if len(t.Cells) != n {
		return E(op, Invalid, "the answer has %d cells, want %d", len(t.Cells), n)
	}
	if t.MinCellSize < 1 {
		return E(op, Invalid, "the answer's minimum cell size is %d", t.MinCellSize)
	}
	m, _ := cb.Measure(q.Measure.Field)
	for i := range t.Cells {
		c := &t.Cells[i]
		if err := checkEstimate(c.Count); err != nil {
			return E(op, Invalid, "cell %d count: %v", i, err)
		}
		switch q.Measure.Func {
		case FuncSum, FuncAvg:
			if c.Sum == nil {
				return E(op, Invalid, "cell %d has no sum", i)
			}
			if err := checkEstimate(*c.Sum); err != nil {
				return E(op, Invalid, "cell %d sum: %v", i, err)
			}
		case FuncQuantile:
			if c.Hist == nil || m == nil || int64(len(c.Hist.Bins)) != m.Hi-m.Lo+1 {
				return E(op, Invalid, "cell %d has no histogram of the field's bins", i)
			}
			if err := c.Hist.Noise().Validate(); err != nil {
				return E(op, Invalid, "cell %d histogram: %v", i, err)
			}
			for _, b := range c.Hist.Bins {
				if math.IsNaN(b) || math.IsInf(b, 0) {
					return E(op, Invalid, "cell %d histogram has a value that is not finite", i)
				}
			}
		}
	}
	return nil
}

func checkEstimate(e privacy.Estimate) error {
	if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
		return fmt.Errorf("value is not finite")
	}
	return e.Noise().Validate()
}

// ResultCell is one cell of a released result. Value, Lo and Hi (the 95%
// interval) are nil when the cell is suppressed, with the reason in
// Suppressed. Count is the cell's noisy count, shown with SUM, AVG and
// QUANTILE. Mechanism, Scale, L0 and LInf describe the noise of the measure's
// main value (the count for COUNT, the sum for SUM and AVG, each histogram
// bin for QUANTILE), so anyone can recompute the interval.
type ResultCell struct {
	Key        []string `json:"key"`
	Value      *float64 `json:"value"`
	Lo         *float64 `json:"lo,omitempty"`
	Hi         *float64 `json:"hi,omitempty"`
	Count      *float64 `json:"count,omitempty"`
	Suppressed string   `json:"suppressed,omitempty"`
	Mechanism  string   `json:"mechanism"`
	Scale      float64  `json:"scale"`
	L0         int64    `json:"l0"`
	LInf       int64    `json:"linf"`
	Nodes      int      `json:"nodes,omitempty"`
}

// Combine adds up one or more nodes' noisy answers to q and applies the
// release rule with the largest of minCellSize and every table's own
// minimum: counts and sums are summed, AVG is total sum / total count,
// quantiles are read from the summed histograms, and every interval comes
// from the exact distribution of the summed noise. With one table it is the
// node's own released answer. The tables must have passed Check.
func Combine(cb *Codebook, q *Query, tables []*NoisyTable, minCellSize int, comb *privacy.Combiner) ([]ResultCell, int, error) {
	const op = "combine"
	if len(tables) == 0 {
		return nil, minCellSize, nil
	}
	minSize := minCellSize
	for _, t := range tables {
		minSize = max(minSize, t.MinCellSize)
	}
	m, _ := cb.Measure(q.Measure.Field)
	cells := make([]ResultCell, len(tables[0].Cells))
	counts := make([]privacy.Estimate, len(tables))
	sums := make([]privacy.Estimate, len(tables))
	hists := make([]privacy.Hist, len(tables))
	for i := range cells {
		for j, t := range tables {
			c := &t.Cells[i]
			counts[j] = c.Count
			if c.Sum != nil {
				sums[j] = *c.Sum
			}
			if c.Hist != nil {
				hists[j] = *c.Hist
			}
		}
		total, err := comb.Total(counts)
		if err != nil {
			return nil, 0, E(op, Internal, "cell %d: %w", i, err)
		}
		rc := ResultCell{Key: tables[0].CellKey(i), Nodes: len(tables)}
		main := counts[0]
		var val privacy.Combined
		switch q.Measure.Func {
		case FuncCount:
			val = total
		case FuncSum:
			main = sums[0]
			if val, err = comb.Total(sums); err != nil {
				return nil, 0, E(op, Internal, "cell %d: %w", i, err)
			}
		case FuncAvg:
			main = sums[0]
			if val, err = comb.Mean(sums, counts, float64(m.Lo), float64(m.Hi)); err != nil {
				return nil, 0, E(op, Internal, "cell %d: %w", i, err)
			}
		case FuncQuantile:
			h := hists[0]
			main = privacy.Estimate{Mechanism: h.Mechanism, Scale: h.Scale, L0: h.L0, LInf: h.LInf}
			if val, err = comb.Quantile(hists, q.Measure.Q, m.Lo); err != nil {
				return nil, 0, E(op, Internal, "cell %d: %w", i, err)
			}
		}
		rc.Mechanism, rc.Scale, rc.L0, rc.LInf = main.Mechanism.String(), main.Scale, main.L0, main.LInf
		// The release rule reads only the released count: post-processing.
		if ok, reason := privacy.ReleaseTotal(total, int64(minSize)); !ok {
			rc.Suppressed = reason
		} else {
			v, lo, hi := val.Value, val.Lo, val.Hi
			rc.Value, rc.Lo, rc.Hi = &v, &lo, &hi
			if q.Measure.Func != FuncCount {
				c := total.Value
				rc.Count = &c
			}
		}
		cells[i] = rc
	}
	return cells, minSize, nil
}
