package privacy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Micro is an amount of ε or δ in millionths, the unit the budget ledger
// keeps: integers, so that charges add up exactly.
type Micro int64

// MicroPerUnit is the number of micro-units in 1.
const MicroPerUnit = 1_000_000

// ToMicro converts x ≥ 0 to micro-units, rounding up, so that a charge is
// never less than what was spent, and any positive x costs at least one
// micro-unit. A value within a relative 10^-12 of a whole number of
// micro-units (the floating-point image of a decimal such as 0.1) counts as
// that number.
func ToMicro(x float64) (Micro, error) {
	if math.IsNaN(x) || x < 0 {
		return 0, fmt.Errorf("a privacy amount must be a non-negative number, got %v", x)
	}
	v := x * MicroPerUnit
	if v > math.MaxInt64/4 {
		return 0, fmt.Errorf("a privacy amount must be at most %v, got %v", float64(math.MaxInt64/4)/MicroPerUnit, x)
	}
	m := math.Ceil(v)
	if r := math.Round(v); math.Abs(v-r) <= 1e-12*math.Max(1, v) {
		m = r
	}
	if m == 0 && x > 0 {
		m = 1 // any positive amount is charged
	}
	return Micro(m), nil
}

// Float64 returns m in units.
func (m Micro) Float64() float64 { return float64(m) / MicroPerUnit }

// String formats m in units with at least one decimal: 8000000 → "8.0",
// 7800000 → "7.8", 1 → "0.000001".
func (m Micro) String() string {
	var b strings.Builder
	u := int64(m)
	if u < 0 {
		b.WriteByte('-')
		u = -u // a Micro never holds MinInt64 in practice; the ledger rejects negatives
	}
	b.WriteString(strconv.FormatInt(u/MicroPerUnit, 10))
	b.WriteByte('.')
	frac := fmt.Sprintf("%06d", u%MicroPerUnit)
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		frac = "0"
	}
	b.WriteString(frac)
	return b.String()
}

// Amount is an amount of privacy budget: ε and δ in micro-units.
type Amount struct {
	Epsilon Micro `json:"epsilon"`
	Delta   Micro `json:"delta"`
}

// ToAmount converts ε and δ to an Amount, each rounded up (see ToMicro).
func ToAmount(epsilon, delta float64) (Amount, error) {
	e, err := ToMicro(epsilon)
	if err != nil {
		return Amount{}, fmt.Errorf("epsilon: %w", err)
	}
	d, err := ToMicro(delta)
	if err != nil {
		return Amount{}, fmt.Errorf("delta: %w", err)
	}
	return Amount{Epsilon: e, Delta: d}, nil
}

// Add returns a + b.
func (a Amount) Add(b Amount) Amount {
	return Amount{Epsilon: a.Epsilon + b.Epsilon, Delta: a.Delta + b.Delta}
}

// Sub returns a − b floored at 0 in each part: what remains of a cap a
// after spending b.
func (a Amount) Sub(b Amount) Amount {
	return Amount{Epsilon: max(a.Epsilon-b.Epsilon, 0), Delta: max(a.Delta-b.Delta, 0)}
}

// The default budget, in units (see DESIGN.md "Budget").
const (
	DefaultQueryEpsilon    = 0.5  // ε of a query that asks for none
	DefaultGaussianDelta   = 1e-6 // δ of a Gaussian query that asks for none
	DefaultQueryEpsilonCap = 1.0  // the largest ε of one query
	DefaultQueryDeltaCap   = 1e-5 // the largest δ of one query
	DefaultNodeEpsilonCap  = 8.0  // node-wide ε per registration year
	DefaultNodeDeltaCap    = 1e-4 // node-wide δ per registration year
	DefaultOrgEpsilonCap   = 4.0  // ε per querier organisation per registration year
	DefaultOrgDeltaCap     = 1e-4 // δ per querier organisation per registration year
)

// Caps are the three limits of the budget: what one query may charge
// (PerQuery), what all queries together may charge per registration year
// (NodePerYear), and what one querier organisation may charge per
// registration year (OrgPerYear).
type Caps struct {
	NodePerYear Amount `json:"node_per_year"`
	OrgPerYear  Amount `json:"org_per_year"`
	PerQuery    Amount `json:"per_query"`
}

// DefaultCaps returns the default caps: ε 8 node-wide, 4 per organisation
// and 1 per query; δ 10^-4, 10^-4 and 10^-5.
func DefaultCaps() Caps {
	return Caps{
		NodePerYear: Amount{Epsilon: DefaultNodeEpsilonCap * MicroPerUnit, Delta: DefaultNodeDeltaCap * MicroPerUnit},
		OrgPerYear:  Amount{Epsilon: DefaultOrgEpsilonCap * MicroPerUnit, Delta: DefaultOrgDeltaCap * MicroPerUnit},
		PerQuery:    Amount{Epsilon: DefaultQueryEpsilonCap * MicroPerUnit, Delta: DefaultQueryDeltaCap * MicroPerUnit},
	}
}

// Validate reports whether every ε cap is positive and every δ cap is not
// negative (a δ cap of 0 refuses every Gaussian query).
func (c Caps) Validate() error {
	for _, x := range []struct {
		name string
		a    Amount
	}{{"node-wide", c.NodePerYear}, {"organisation", c.OrgPerYear}, {"per-query", c.PerQuery}} {
		if x.a.Epsilon <= 0 {
			return fmt.Errorf("the %s ε cap must be positive, got %v", x.name, x.a.Epsilon)
		}
		if x.a.Delta < 0 {
			return fmt.Errorf("the %s δ cap must not be negative, got %v", x.name, x.a.Delta)
		}
	}
	return nil
}

// The caps a CapError can name.
const (
	CapPerQuery = "per-query"
	CapNode     = "node-wide"
	CapOrg      = "organisation"
)

// CapError is the refusal of a charge that would exceed a cap. Cap is
// CapPerQuery, CapNode or CapOrg; Param is "ε" or "δ"; Year is the
// registration year (0 for the per-query cap); Limit is the cap, Spent what
// was spent before, Cost what the query asked. The caller maps it to
// BudgetExhausted. Its text names the node-wide spending, which is the
// node's own business: tell a remote querier Public() instead.
type CapError struct {
	Cap   string
	Param string
	Year  int
	Limit Micro
	Spent Micro
	Cost  Micro
}

// Error implements error: "per-query ε cap 1.0",
// "node-wide ε cap for 2021 (8.0; spent 7.8)",
// "organisation ε cap for 2021 (4.0; spent 3.9)".
func (e *CapError) Error() string {
	if e.Cap == CapPerQuery {
		return fmt.Sprintf("%s %s cap %v", e.Cap, e.Param, e.Limit)
	}
	return fmt.Sprintf("%s %s cap for %d (%v; spent %v)", e.Cap, e.Param, e.Year, e.Limit, e.Spent)
}

// Public returns the refusal without the node-wide spending, which a
// querier must not learn: "node-wide ε cap for 2021 reached".
func (e *CapError) Public() string {
	if e.Cap == CapNode {
		return fmt.Sprintf("%s %s cap for %d reached", e.Cap, e.Param, e.Year)
	}
	return e.Error()
}

// exceeds reports whether spent + cost > limit, without overflow.
func exceeds(spent, cost, limit Micro) bool {
	return cost > limit || spent > limit-cost
}

// Charge checks a query's cost against the caps and returns what would then
// be spent, node-wide and by the querier's organisation, in each year it
// charges. node and org hold what is spent now per registration year (a
// missing year has spent nothing); years are the years the query charges
// (its filter's range intersected with the codebook's years; duplicates are
// ignored). Charge never modifies its arguments: the returned maps hold
// exactly the charged years. If any cap would be exceeded it returns a
// *CapError naming the first (per-query ε, per-query δ, then by year:
// node-wide ε, node-wide δ, organisation ε, organisation δ) and nothing is
// charged. A cost with negative parts is an error.
func (c Caps) Charge(node, org map[int]Amount, cost Amount, years []int) (newNode, newOrg map[int]Amount, err error) {
	if cost.Epsilon < 0 || cost.Delta < 0 {
		return nil, nil, errors.New("a charge cannot be negative")
	}
	if exceeds(0, cost.Epsilon, c.PerQuery.Epsilon) {
		return nil, nil, &CapError{Cap: CapPerQuery, Param: "ε", Limit: c.PerQuery.Epsilon, Cost: cost.Epsilon}
	}
	if exceeds(0, cost.Delta, c.PerQuery.Delta) {
		return nil, nil, &CapError{Cap: CapPerQuery, Param: "δ", Limit: c.PerQuery.Delta, Cost: cost.Delta}
	}
	ys := slices.Clone(years)
	slices.Sort(ys)
	ys = slices.Compact(ys)
	newNode = make(map[int]Amount, len(ys))
	newOrg = make(map[int]Amount, len(ys))
	for _, y := range ys {
		n, o := node[y], org[y]
		for _, chk := range []struct {
			cap, param   string
			spent, limit Micro
			cost         Micro
		}{
			{CapNode, "ε", n.Epsilon, c.NodePerYear.Epsilon, cost.Epsilon},
			{CapNode, "δ", n.Delta, c.NodePerYear.Delta, cost.Delta},
			{CapOrg, "ε", o.Epsilon, c.OrgPerYear.Epsilon, cost.Epsilon},
			{CapOrg, "δ", o.Delta, c.OrgPerYear.Delta, cost.Delta},
		} {
			if exceeds(chk.spent, chk.cost, chk.limit) {
				return nil, nil, &CapError{Cap: chk.cap, Param: chk.param, Year: y, Limit: chk.limit, Spent: chk.spent, Cost: chk.cost}
			}
		}
		newNode[y] = n.Add(cost)
		newOrg[y] = o.Add(cost)
	}
	return newNode, newOrg, nil
}

// MoveYear returns what year D has spent after an edit moves a case from
// year S to year D: at least what S has spent, in ε and in δ separately
// (src is S's spending, dst is D's). The ledger applies it node-wide and
// for every organisation, so that no query answered before the move can
// be combined with one answered after it to spend more on that case than
// the caps allow.
func MoveYear(src, dst Amount) Amount {
	return Amount{Epsilon: max(src.Epsilon, dst.Epsilon), Delta: max(src.Delta, dst.Delta)}
}
