package bench

import (
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage/columnar"
)

// Cell is one cell of the cross-tab: a citizenship and an exploitation type.
type Cell struct{ Citizenship, ExploitationType string }

// Counts is a cross-tab as cell → number of cases, without its empty cells.
type Counts map[Cell]int64

// CtfedCounts runs the cross-tab on tab, exactly (no contribution bounding,
// every case whatever its consent), and returns its non-empty cells.
func CtfedCounts(tab *columnar.Table, q *node.Query) (Counts, error) {
	res, err := tab.Aggregate(q, columnar.Options{})
	if err != nil {
		return nil, err
	}
	out := Counts{}
	for i, c := range res.Cells {
		if c.Count != 0 {
			k := res.CellKey(i)
			out[Cell{k[0], k[1]}] = c.Count
		}
	}
	return out, nil
}

// Diff returns how many cells differ between a and b and the first of them
// in key order (the key only: exact counts are not printed), or 0 when they
// agree.
func Diff(a, b Counts) (int, Cell) {
	n, first := 0, Cell{}
	note := func(c Cell) {
		if n == 0 || c.Citizenship < first.Citizenship ||
			c.Citizenship == first.Citizenship && c.ExploitationType < first.ExploitationType {
			first = c
		}
		n++
	}
	for c, v := range a {
		if b[c] != v {
			note(c)
		}
	}
	for c := range b {
		if _, ok := a[c]; !ok {
			note(c)
		}
	}
	return n, first
}
