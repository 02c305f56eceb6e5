package node

// Measure functions.
const (
	FuncCount    = "COUNT"
	FuncSum      = "SUM"
	FuncAvg      = "AVG"
	FuncQuantile = "QUANTILE"
)

// Limits of the query language.
const (
	MaxGroupBy      = 3
	DefaultMaxCells = 20000
)

// Measure is what a query computes per cell: COUNT(*) of cases, or SUM,
// AVG or QUANTILE of a measure field. For SUM, AVG and QUANTILE only cases
// whose field is known count, and the cell's count is theirs.
type Measure struct {
	Func  string  `json:"func"`
	Field string  `json:"field,omitempty"`
	Q     float64 `json:"q,omitempty"` // QUANTILE only, in (0,1)
}

// Filter restricts a query to cases having any of Codes in dimension Dim
// (for a single-valued dimension: having one of them). Codes are kept in the
// dimension's code-list order. "=", IN and BETWEEN all become a Filter.
type Filter struct {
	Dim   string   `json:"dim"`
	Codes []string `json:"codes"`
}

// Query is one statistical question in canonical form: at one codebook
// version, one measure, up to MaxGroupBy dimensions in the order given,
// filters sorted by dimension, one filter per dimension.
type Query struct {
	Codebook string   `json:"codebook"`
	Measure  Measure  `json:"measure"`
	GroupBy  []string `json:"group_by,omitempty"`
	Filters  []Filter `json:"filters,omitempty"`
}

// Tally is the exact aggregate of one cell: how many cases (Count), the sum
// of their clamped measure values (Sum) and, for QUANTILE, the histogram of
// those values over the field's public 1-unit bins [Lo, Hi] (Hist).
type Tally struct {
	Count int64
	Sum   int64
	Hist  []int64
}

// ExactTable is the exact answer to a query over one node's cases: one Tally
// per cell of the grouped domain, every cell present (domains are public),
// row-major over Domains (the last dimension varies fastest). It never
// leaves the node: only a noisy table built from it may.
type ExactTable struct {
	Query   *Query
	Domains [][]string // the codes of each GROUP BY dimension, in code-list order
	Cells   []Tally
	// L0 is the most cells one case reaches: the product of the L0 of each
	// multi-valued GROUP BY dimension when contributions were bounded, 1
	// when nothing is grouped by a multi-valued dimension.
	L0 int
	// Bounded reports whether multi-valued codes were subsampled to L0.
	Bounded bool
}

// CellKey returns the codes of cell i.
func (t *ExactTable) CellKey(i int) []string {
	key := make([]string, len(t.Domains))
	for d := len(t.Domains) - 1; d >= 0; d-- {
		n := len(t.Domains[d])
		key[d] = t.Domains[d][i%n]
		i /= n
	}
	return key
}
