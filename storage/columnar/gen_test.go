package columnar_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// gen builds random valid cases: fictitious, with a skew towards a few
// countries and years so that cells are populated.
type gen struct {
	r         *rand.Rand
	countries []string // the commonest countries first
	lists     map[*node.CodeList][]string
}

func (g *gen) values(l *node.CodeList) []string {
	v, ok := g.lists[l]
	if !ok {
		v = l.Values()
		g.lists[l] = v
	}
	return v
}

func newGen(seed uint64) *gen {
	cb := node.DefaultCodebook()
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), lists: map[*node.CodeList][]string{}}
	g.countries = countryOrder(cb)
	return g
}

// countryOrder returns the countries in the order of how common they are in
// generated data, the same for every seed.
func countryOrder(cb *node.Codebook) []string {
	all := cb.Countries.Values()
	all = all[:len(all)-1] // without unknown
	var out []string
	for _, i := range rand.New(rand.NewPCG(1, 1)).Perm(len(all)) {
		out = append(out, all[i])
	}
	return out
}

func (g *gen) pick(l *node.CodeList) string {
	v := g.values(l)
	return v[g.r.IntN(len(v))]
}

// maybe returns a code of l, or "" (unknown) now and then.
func (g *gen) maybe(l *node.CodeList) string {
	if g.r.IntN(8) == 0 {
		return ""
	}
	return g.pick(l)
}

func (g *gen) country() string {
	switch x := g.r.IntN(20); {
	case x == 0:
		return ""
	case x < 14:
		return g.countries[g.r.IntN(8)] // the commonest
	default:
		return g.countries[g.r.IntN(len(g.countries))]
	}
}

// subset returns a random subset of l's codes, leaving out skip codes.
func (g *gen) subset(l *node.CodeList, maxN int, skip ...string) []string {
	var pool []string
	for _, v := range g.values(l) {
		if !slices.Contains(skip, v) {
			pool = append(pool, v)
		}
	}
	n := g.r.IntN(maxN + 1)
	var out []string
	for range n {
		out = append(out, pool[g.r.IntN(len(pool))])
	}
	return out
}

func (g *gen) intp(lo, hi int) *int {
	v := lo + g.r.IntN(hi-lo+1)
	return &v
}

// fill overwrites c with a random valid case of code code.
func (g *gen) fill(c *node.Case, code string) {
	r := g.r
	*c = node.Case{Code: code}
	year := 2000 + r.IntN(31)
	if r.IntN(3) > 0 {
		year = 2010 + r.IntN(15)
	}
	c.RegistrationDate = node.Date(fmt.Sprintf("%d-%02d-%02d", year, 1+r.IntN(12), 1+r.IntN(28)))
	c.DataSource = g.maybe(node.ListDataSource)
	c.Gender = g.maybe(node.ListGender)
	switch r.IntN(4) {
	case 0, 1:
		c.Age = g.intp(0, 120)
		if r.IntN(2) == 0 {
			c.AgeAtExploitation = g.intp(0, *c.Age)
		}
	case 2:
		c.AgeBand = g.maybe(node.ListAgeBand)
		c.AgeBandExploitation = g.maybe(node.ListAgeBand)
	default:
		c.Majority = g.maybe(node.ListMajority)
		c.MajorityAtExploitation = g.maybe(node.ListMajority)
	}
	c.Citizenship = g.country()
	c.CountryOfResidence = g.country()
	c.CountryOfOrigin = g.country()
	c.CountryOfExploitation = g.country()
	for range r.IntN(6) * r.IntN(2) {
		c.TransitCountries = append(c.TransitCountries, g.country())
	}
	c.RecruitmentType = g.maybe(node.ListRecruitment)
	c.RecruiterRelations = g.subset(node.ListRelation, 2, node.CodeUnknown)
	c.MeansOfControl = g.subset(node.ListMeans, 4, node.CodeNoneRecorded)
	if r.IntN(2) == 0 {
		c.MonthsInExploitation = g.intp(0, 600)
	} else {
		c.MonthsBand = g.maybe(node.ListMonthsBand)
	}
	c.ExploitationTypes = g.subset(node.ListExploitation, 3, node.CodeNoneRecorded)
	c.LabourTypes = g.subset(node.ListLabour, 2, node.CodeNoneRecorded)
	c.SexualExploitationTypes = g.subset(node.ListSexual, 2, node.CodeNoneRecorded)
	for range r.IntN(4) {
		c.Traffickers = append(c.Traffickers, node.Trafficker{
			Sex:         g.maybeOf(g.values(node.ListTraffSex)[:2]),
			Nationality: g.country(),
			Role:        g.maybeOf(g.values(node.ListTraffRole)[:4]),
			Relation:    g.maybe(node.ListRelation),
		})
	}
	services := g.values(node.ListService)
	services = services[:len(services)-1]
	for range r.IntN(4) * r.IntN(3) {
		c.Assistance = append(c.Assistance, node.Service{Service: services[r.IntN(len(services))]})
	}
	c.PreviouslyTrafficked = g.maybe(node.ListYesNo)
	c.Retrafficked = g.maybe(node.ListYesNo)
	c.Consent = g.maybe(node.ListYesNo)
	c.Normalize()
}

// maybe on a plain list of values.
func (g *gen) maybeOf(v []string) string {
	if g.r.IntN(8) == 0 {
		return ""
	}
	return v[g.r.IntN(len(v))]
}

// genCases returns n random valid cases.
func genCases(tb testing.TB, seed uint64, n int) []*node.Case {
	tb.Helper()
	cb := node.DefaultCodebook()
	g := newGen(seed)
	out := make([]*node.Case, n)
	for i := range out {
		c := &node.Case{}
		g.fill(c, fmt.Sprintf("C-%06d", i))
		if err := c.Validate(cb); err != nil {
			tb.Fatalf("generated case %d is invalid: %v", i, err)
		}
		out[i] = c
	}
	return out
}
