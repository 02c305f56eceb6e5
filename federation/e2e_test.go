package federation_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/federation"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/storage"
)

// The end-to-end tests run ctfed's whole federated answer path: real libp2p
// hosts on 127.0.0.1, each contributor's node.QueryService (remote policy,
// approvals, replies kept per query ID) over a real storage.DB (badger, the
// columnar projection, the ledger, the answer cache, the audit log) holding
// synthetic cases, and the querier's Coordinator combining the answers.

// e2eCases is the number of synthetic cases of each contributor in
// TestFederatedCoverageOfTruth.
const e2eCases = 8000

// e2eTimeout bounds one federated query in these tests.
const e2eTimeout = 20 * time.Second

// e2eMember is one contributor of the end-to-end federation: its store, its
// query service and its node.
type e2eMember struct {
	org string
	db  *storage.DB
	svc *node.QueryService
	n   *federation.Node
}

// e2eSpec describes one contributor: its organisation, country, the synth
// profile and number of its cases, and an adjustment of its policy.
type e2eSpec struct {
	org, country, profile string
	cases                 int
	seed                  uint64
	policy                func(*node.Policy)
	// store, when set, adjusts the store's badger settings before it opens.
	store func(*storage.DB)
}

// e2eFed is a federation of contributors and one querier, all admitted by
// one authority and introduced to each other.
type e2eFed struct {
	querierOrg string
	querier    *federation.Node
	members    []*e2eMember
	coord      *federation.Coordinator
}

// e2eHugeCaps are caps no end-to-end test reaches unless it means to.
func e2eHugeCaps() privacy.Caps {
	big := privacy.Amount{Epsilon: 1e12, Delta: 1e5}
	return privacy.Caps{NodePerYear: big, OrgPerYear: big, PerQuery: big}
}

// newE2EFed builds and opens the federation: the querier's node (querier
// role only, answering nothing) and one store, query service and node per
// spec. The default policy with huge caps lets the querier's peer ask; spec
// policy functions adjust it. Everything is closed at the end of the test,
// nodes before stores.
func newE2EFed(t testing.TB, specs []e2eSpec) *e2eFed {
	t.Helper()
	key, err := federation.NewAuthorityKey()
	if err != nil {
		t.Fatal(err)
	}
	auth := federation.NewAuthority(key, nil)
	admit := func(org, country string, roles ...string) *federation.Identity {
		id, err := federation.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		req, err := federation.NewJoinRequest(id, org, country, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := auth.Admit(req, roles, 365*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		return id
	}
	f := &e2eFed{querierOrg: "Federation HQ"}
	qID := admit(f.querierOrg, "CHE", node.RoleQuerier)
	ids := make([]*federation.Identity, len(specs))
	for i, s := range specs {
		ids[i] = admit(s.org, s.country, node.RoleContributor)
	}
	for i, s := range specs {
		db := mustOpenE2EDB(t, s.store)
		mustPutSynth(t, db, s.cases, s.seed, s.profile)
		p := node.DefaultPolicy()
		p.Caps = e2eHugeCaps()
		p.Remote.AllowPeers = []string{qID.PeerID().String()}
		if s.policy != nil {
			s.policy(&p)
		}
		svc := &node.QueryService{Codebook: db.Codebook, Aggregator: db, Ledger: db, Approvals: db, Audit: db, Policy: p, Org: s.org}
		n := mustOpenE2ENode(t, auth, ids[i], func(n *federation.Node) { n.Answerer, n.Audit = svc, db })
		f.members = append(f.members, &e2eMember{org: s.org, db: db, svc: svc, n: n})
	}
	f.querier = mustOpenE2ENode(t, auth, qID, nil)
	nodes := []*federation.Node{f.querier}
	for _, m := range f.members {
		nodes = append(nodes, m.n)
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.AddPeerAddrs(b.PeerID().String(), b.Addrs()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	f.coord = federation.NewCoordinator(f.querier)
	return f
}

// mustOpenE2EDB opens a store in a new directory with an insecure keyring
// and small badger settings, after configure (if any) adjusted them, and
// closes it at the end of the test.
func mustOpenE2EDB(t testing.TB, configure func(*storage.DB)) *storage.DB {
	t.Helper()
	dir := t.TempDir()
	kr, _, err := storage.CreateKeyring(dir, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	db := storage.NewDB(dir, kr)
	db.SyncWrites = false
	db.MemTableSize = 16 << 20
	db.NumMemtables = 2
	db.ValueLogFileSize = 16 << 20
	db.BlockCacheSize = 1 << 20
	db.IndexCacheSize = 1 << 20
	if configure != nil {
		configure(db)
	}
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// mustPutSynth writes n synthetic cases of profile, in batches of at most
// storage.MaxBatch (smaller here: the test stores' memtables are small).
func mustPutSynth(t testing.TB, db *storage.DB, n int, seed uint64, profile string) {
	t.Helper()
	seq, err := synth.Generate(n, seed, profile)
	if err != nil {
		t.Fatal(err)
	}
	batch := min(storage.MaxBatch, 1000)
	var cases []*node.Case
	put := func() {
		if _, err := db.PutCases(context.Background(), cases, node.Upsert, "e2e-test"); err != nil {
			t.Fatal(err)
		}
		cases = cases[:0]
	}
	for c := range seq {
		if cases = append(cases, c); len(cases) == batch {
			put()
		}
	}
	if len(cases) > 0 {
		put()
	}
}

// mustOpenE2ENode opens a node for id on 127.0.0.1 with the authority's
// current roster, after configure (if any) adjusted it.
func mustOpenE2ENode(t testing.TB, auth *federation.Authority, id *federation.Identity, configure func(*federation.Node)) *federation.Node {
	t.Helper()
	n := federation.NewNode(id, auth.PublicKey())
	n.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	n.Roster = auth.Current()
	n.Logger = zap.NewNop()
	n.DialTimeout = 5 * time.Second
	if configure != nil {
		configure(n)
	}
	if err := n.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return n
}

// query runs one federated query and fails the test on error.
func (f *e2eFed) query(t *testing.T, req *node.QueryRequest) *federation.Result {
	t.Helper()
	res, err := f.coord.Query(context.Background(), req, e2eTimeout)
	if err != nil {
		t.Fatalf("query %s: %v", req.Query.Canonical(), err)
	}
	return res
}

// exact returns the exact table of q summed over every contributor: the
// truth the federated answer estimates. It never leaves the test.
func (f *e2eFed) exact(t *testing.T, q *node.Query) []node.Tally {
	t.Helper()
	var sum []node.Tally
	for _, m := range f.members {
		e, err := m.svc.Exact(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if sum == nil {
			sum = make([]node.Tally, len(e.Cells))
		}
		for i, c := range e.Cells {
			sum[i].Count += c.Count
			sum[i].Sum += c.Sum
		}
	}
	return sum
}

// coverageOf returns the result's coverage by organisation.
func coverageOf(res *federation.Result) map[string]federation.Coverage {
	out := make(map[string]federation.Coverage, len(res.Coverage))
	for _, c := range res.Coverage {
		out[c.Org] = c
	}
	return out
}

// spending returns m's ledger spending.
func (m *e2eMember) spending(t *testing.T) *node.Spending {
	t.Helper()
	sp, err := m.db.Spending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// mustParse parses sql in the default codebook.
func mustParse(t *testing.T, sql string) *node.Query {
	t.Helper()
	q, err := node.ParseSQL(node.DefaultCodebook(), sql)
	if err != nil {
		t.Fatalf("parse %q: %v", sql, err)
	}
	return q
}

// nodeNoises returns k copies of n with its scale divided by shrink.
func nodeNoises(n privacy.Noise, k int, shrink float64) []privacy.Noise {
	out := make([]privacy.Noise, k)
	for i := range out {
		out[i] = privacy.Noise{Mechanism: n.Mechanism, Scale: n.Scale / shrink}
	}
	return out
}

// rare is the largest chance the test accepts, per cell, of a noise-driven
// event that would select cells (a suppression, a clamped mean): with some
// 10 000 cells, one such event in about 10 000 runs.
const rare = 1e-8

// safeTruth returns the smallest true count at which a cell whose count
// carries the summed noises is suppressed by the release rule with
// probability below rare: the test asks only about such cells, so that
// which cells are released does not depend on their noise and the coverage
// of the released cells is the intervals' unconditional coverage.
func safeTruth(t *testing.T, comb *privacy.Combiner, noises []privacy.Noise, minCell int) int64 {
	t.Helper()
	h, err := comb.HalfWidth(noises)
	if err != nil {
		t.Fatal(err)
	}
	need := math.Max(float64(minCell), h+1) // the smallest released value
	for truth := int64(need); ; truth++ {
		// Suppressed when N ≤ need − truth − 1: P = (1 − P(|N| ≤ truth − need)) / 2.
		within, err := comb.Within(noises, float64(truth)-need)
		if err != nil {
			t.Fatal(err)
		}
		if (1-within)/2 < rare {
			return truth
		}
	}
}

// unclampedCount returns the smallest count n at which a cell whose mean is
// at least floor has a noisy sum (with the summed noises) at or below 0,
// which would clamp the released mean, with probability below rare.
func unclampedCount(t *testing.T, comb *privacy.Combiner, noises []privacy.Noise, floor float64) int64 {
	t.Helper()
	for n := int64(1); ; n++ {
		within, err := comb.Within(noises, math.Ceil(floor*float64(n))-1)
		if err != nil {
			t.Fatal(err)
		}
		if (1-within)/2 < rare {
			return n
		}
	}
}

// coverageQueries returns SQL texts of measure grouped by one single-valued
// dimension and registration_year, over year windows from the longest to
// the shortest, each restricted to the dimension's codes whose truth (from
// truth, keyed "code/year") is at least least in every year of the window,
// until their cells number at least target.
func coverageQueries(measure string, dims []string, truth map[string]map[string]int64, least int64, target int) ([]string, int) {
	var out []string
	cells := 0
	for span := synth.LastYear - synth.FirstYear + 1; span >= 1; span-- {
		for from := synth.FirstYear; from+span-1 <= synth.LastYear; from++ {
			to := from + span - 1
			for _, dim := range dims {
				var codes []string
				d, _ := node.DefaultCodebook().Dimension(dim)
				for _, code := range d.Codes.Values() {
					ok := true
					for y := from; y <= to && ok; y++ {
						ok = truth[dim][fmt.Sprintf("%s/%d", code, y)] >= least
					}
					if ok {
						codes = append(codes, "'"+code+"'")
					}
				}
				if len(codes) == 0 {
					continue
				}
				out = append(out, fmt.Sprintf("SELECT %s FROM cases WHERE %s IN (%s) AND registration_year BETWEEN %d AND %d GROUP BY %s, registration_year",
					measure, dim, strings.Join(codes, ", "), from, to, dim))
				if cells += len(codes) * span; cells >= target {
					return out, cells
				}
			}
		}
	}
	return out, cells
}

// tally counts released cells and those whose interval holds the truth.
type tally struct{ released, covered, halfCovered int }

func (c tally) frac() float64     { return float64(c.covered) / float64(c.released) }
func (c tally) halfFrac() float64 { return float64(c.halfCovered) / float64(c.released) }

// TestFederatedCoverageOfTruth asks five contributors, each with a
// different synthetic caseload in a real store, thousands of cells of
// federated COUNT and AVG queries, and checks that the released 95%
// intervals hold the exact truth (summed over the nodes' exact tables) 93%
// to 97% of the time — and that intervals recomputed from the same summed
// noise distribution with every node's variance halved do not, so the
// check has power to see noise that is claimed too small.
//
// Only single-valued dimensions are grouped: contribution bounding of
// multi-valued ones biases the answer against the unbounded truth. Each
// query's domain is restricted (by a filter on the grouped dimension) to
// cells whose truth makes their release all but certain (safeTruth), so the
// released cells are not selected by their noise.
func TestFederatedCoverageOfTruth(t *testing.T) {
	start := time.Now()
	profiles := []string{"sea-ngo", "ee-gov", "gulf-mission", "wa-ngo", "default"}
	countries := []string{"THA", "ROU", "ETH", "NGA", "CHE"}
	var specs []e2eSpec
	for i, p := range profiles {
		specs = append(specs, e2eSpec{org: fmt.Sprintf("Org %c %s", 'A'+i, p), country: countries[i], profile: p, cases: e2eCases, seed: uint64(100 + i)})
	}
	f := newE2EFed(t, specs)
	k := len(f.members)
	t.Logf("federation of %d contributors with %d cases each ready in %v", k, e2eCases, time.Since(start).Round(time.Millisecond))

	const (
		countEps    = 0.45 // k = 5: expected coverage 95.5%, half variance 86.9%
		avgEps      = 1.0
		countTarget = 6000
		avgTarget   = 5000
	)
	minCell := max(f.coord.MinCellSize, node.DefaultPolicy().MinCellSize)
	comb := privacy.NewCombiner()
	countNoise := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: countEps, L0: 1, LInf: 1}.Noise()
	age, _ := node.DefaultCodebook().Measure("age")
	avgCountNoise := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: avgEps / 2, L0: 1, LInf: 1}.Noise()
	avgSumNoise := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: avgEps / 2, L0: 1, LInf: privacy.SumLInf(age.Lo, age.Hi)}.Noise()
	countMin := safeTruth(t, comb, nodeNoises(countNoise, k, 1), minCell)
	// A mean is only asked of cells whose true mean is in [meanFloor,
	// 100 − 2·meanFloor] years, with enough known ages that neither its
	// release nor the clamping of its value depends on the noise: a noisy
	// sum at or below 0 has a chance below rare (unclampedCount), and one
	// above 100 times the noisy count, whose noise is at most √2 times as
	// spread, needs twice the distance.
	const meanFloor = 20
	avgMin := max(safeTruth(t, comb, nodeNoises(avgCountNoise, k, 1), minCell), unclampedCount(t, comb, nodeNoises(avgSumNoise, k, 1), meanFloor))

	// The truth by dimension and year, to choose each query's domain.
	truthBy := func(measure string, dims []string) map[string]map[string]int64 {
		out := map[string]map[string]int64{}
		for _, dim := range dims {
			q := mustParse(t, fmt.Sprintf("SELECT %s FROM cases GROUP BY %s, registration_year", measure, dim))
			cells := f.exact(t, q)
			out[dim] = map[string]int64{}
			key := &node.ExactTable{Domains: q.Domains(node.DefaultCodebook())}
			for i, c := range cells {
				if measure != "COUNT(*)" {
					if m := float64(c.Sum) / float64(c.Count); c.Count == 0 || m < meanFloor || m > float64(age.Hi)-2*meanFloor {
						continue
					}
				}
				out[dim][strings.Join(key.CellKey(i), "/")] = c.Count
			}
		}
		return out
	}
	countDims := []string{"citizenship", "country_of_exploitation", "age_band", "recruitment_type"}
	avgDims := []string{"citizenship", "country_of_exploitation", "recruitment_type", "gender", "age_band", "country_of_residence", "data_source"}
	countSQL, countCells := coverageQueries("COUNT(*)", countDims, truthBy("COUNT(*)", countDims), countMin, countTarget)
	avgSQL, avgCells := coverageQueries("AVG(age)", avgDims, truthBy("AVG(age)", avgDims), avgMin, avgTarget)
	t.Logf("%d COUNT queries (%d cells with true count ≥ %d) at ε %v, %d AVG queries (%d cells with ≥ %d known ages) at ε %v",
		len(countSQL), countCells, countMin, countEps, len(avgSQL), avgCells, avgMin, avgEps)

	// run asks one query and checks that every contributor answered,
	// charged what was asked; it returns the cells with their truth.
	run := func(sql string, eps float64) ([]node.ResultCell, []node.Tally) {
		q := mustParse(t, sql)
		res := f.query(t, &node.QueryRequest{Query: q, Epsilon: eps, Purpose: "coverage of the truth"})
		if len(res.Coverage) != k || res.Answered != k {
			t.Fatalf("%s: got %d coverage entries, %d answered, want %d and %d", sql, len(res.Coverage), res.Answered, k, k)
		}
		for _, c := range res.Coverage {
			if c.Status != federation.CoverageAnswered || c.ChargedEpsilon != eps {
				t.Fatalf("%s: %s got %s charged ε %v, want answered charged ε %v", sql, c.Org, c.Status, c.ChargedEpsilon, eps)
			}
		}
		truth := f.exact(t, q)
		key := &node.ExactTable{Domains: q.Domains(node.DefaultCodebook())}
		if len(res.Cells) != len(truth) {
			t.Fatalf("%s: got %d cells, want %d", sql, len(res.Cells), len(truth))
		}
		for i, c := range res.Cells {
			if !slices.Equal(c.Key, key.CellKey(i)) || c.Nodes != k {
				t.Fatalf("%s: cell %d is %v from %d nodes, want %v from %d", sql, i, c.Key, c.Nodes, key.CellKey(i), k)
			}
		}
		return res.Cells, truth
	}

	var counts, means tally
	suppressed, mismatched, clamped := 0, 0, 0
	countHalf, err := comb.HalfWidth(nodeNoises(countNoise, k, 1))
	if err != nil {
		t.Fatal(err)
	}
	shrunkHalf, err := comb.HalfWidth(nodeNoises(countNoise, k, math.Sqrt2))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range countSQL {
		cells, truth := run(sql, countEps)
		for i, c := range cells {
			if c.Value == nil {
				suppressed++
				continue
			}
			if c.Scale != countNoise.Scale || *c.Hi-*c.Value != countHalf || *c.Value-*c.Lo != countHalf {
				t.Fatalf("%s: cell %d has scale %v and interval ±%v, want %v and ±%v", sql, i, c.Scale, (*c.Hi-*c.Lo)/2, countNoise.Scale, countHalf)
			}
			x := float64(truth[i].Count)
			counts.released++
			if *c.Lo <= x && x <= *c.Hi {
				counts.covered++
			}
			if math.Abs(*c.Value-x) <= shrunkHalf {
				counts.halfCovered++
			}
		}
	}
	// AVG: the interval is Fieller's, recomputed from the released total
	// count C and the total sum S = value·C (the value is not clamped for
	// these cells) with each node's sum and count noise, once as released
	// (it must give the released interval back) and once with every scale
	// divided by √2.
	mean := func(s, n, shrink float64) (privacy.Combined, error) {
		sums := make([]privacy.Estimate, k)
		cnts := make([]privacy.Estimate, k)
		for i := range sums {
			sums[i] = privacy.Estimate{Value: s / float64(k), Mechanism: privacy.Laplace, Scale: avgSumNoise.Scale / shrink}
			cnts[i] = privacy.Estimate{Value: n / float64(k), Mechanism: privacy.Laplace, Scale: avgCountNoise.Scale / shrink}
		}
		return comb.Mean(sums, cnts, float64(age.Lo), float64(age.Hi))
	}
	for _, sql := range avgSQL {
		cells, truth := run(sql, avgEps)
		for i, c := range cells {
			if c.Value == nil {
				suppressed++
				continue
			}
			if c.Scale != avgSumNoise.Scale || c.Count == nil {
				t.Fatalf("%s: cell %d has scale %v and count %v, want scale %v and a count", sql, i, c.Scale, c.Count, avgSumNoise.Scale)
			}
			x := float64(truth[i].Sum) / float64(truth[i].Count)
			means.released++
			covered := *c.Lo <= x && x <= *c.Hi
			if covered {
				means.covered++
			}
			if !(*c.Value > float64(age.Lo) && *c.Value < float64(age.Hi)) {
				// Clamped (a chance below rare): S is unknown. Count the
				// half-variance interval as the released one, which can
				// only bring its coverage closer to the band.
				clamped++
				if covered {
					means.halfCovered++
				}
				continue
			}
			s, n := *c.Value**c.Count, *c.Count
			full, err := mean(s, n, 1)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(full.Lo-*c.Lo) > 1e-6 || math.Abs(full.Hi-*c.Hi) > 1e-6 {
				mismatched++
			}
			half, err := mean(s, n, math.Sqrt2)
			if err != nil {
				t.Fatal(err)
			}
			if half.Lo <= x && x <= half.Hi {
				means.halfCovered++
			}
		}
	}
	expected, err := comb.Within(nodeNoises(countNoise, k, 1), countHalf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("COUNT: %d released cells, %.2f%% hold the truth (expected %.2f%% from the summed noise), %.2f%% with half the variance",
		counts.released, 100*counts.frac(), 100*expected, 100*counts.halfFrac())
	t.Logf("AVG: %d released cells, %.2f%% hold the truth, %.2f%% with half the variance",
		means.released, 100*means.frac(), 100*means.halfFrac())
	t.Logf("%d cells suppressed, %d means clamped; %d federated queries; %v in all", suppressed, clamped, len(countSQL)+len(avgSQL), time.Since(start).Round(time.Millisecond))

	if mismatched > 0 {
		t.Errorf("%d AVG intervals recomputed from the released values and scales differ from the released ones", mismatched)
	}
	// A suppressed cell or a clamped mean here would mean the release rule
	// or the noise is off: each had a chance below rare.
	if suppressed > 0 || clamped > 0 {
		t.Errorf("got %d suppressed cells and %d clamped means, want none (each had a chance below %g)", suppressed, clamped, rare)
	}
	for _, tc := range []struct {
		name string
		c    tally
		min  int
	}{
		{"Count", counts, 3000},
		{"Mean", means, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.released < tc.min {
				t.Fatalf("got %d released cells, want at least %d", tc.c.released, tc.min)
			}
			if got := tc.c.frac(); got < 0.93 || got > 0.97 {
				t.Errorf("coverage: got %.4f, want between 0.93 and 0.97", got)
			}
			if got := tc.c.halfFrac(); got >= 0.93 && got <= 0.97 {
				t.Errorf("coverage with half the variance: got %.4f, want outside [0.93, 0.97]", got)
			}
		})
	}
}

// smallFed is a federation of the named contributors with a few hundred
// cases each; policies adjusts a contributor's policy by organisation.
func smallFed(t *testing.T, orgs []string, policies map[string]func(*node.Policy)) *e2eFed {
	t.Helper()
	profiles := []string{"sea-ngo", "ee-gov", "wa-ngo"}
	var specs []e2eSpec
	for i, org := range orgs {
		specs = append(specs, e2eSpec{org: org, country: "THA", profile: profiles[i%len(profiles)], cases: 400, seed: uint64(7 + i), policy: policies[org]})
	}
	return newE2EFed(t, specs)
}

// memberOf returns f's contributor of org.
func (f *e2eFed) memberOf(t *testing.T, org string) *e2eMember {
	t.Helper()
	for _, m := range f.members {
		if m.org == org {
			return m
		}
	}
	t.Fatalf("no contributor %s", org)
	return nil
}

// releasedValues returns the released cells' values and intervals, to
// compare two results.
func releasedValues(cells []node.ResultCell) [][3]float64 {
	out := make([][3]float64, len(cells))
	for i, c := range cells {
		if c.Value != nil {
			out[i] = [3]float64{*c.Value, *c.Lo, *c.Hi}
		} else {
			out[i] = [3]float64{math.NaN(), 0, 0}
		}
	}
	return out
}

// sameValues reports whether a and b are the same released values.
func sameValues(a, b [][3]float64) bool {
	return slices.EqualFunc(a, b, func(x, y [3]float64) bool {
		return (x[0] == y[0] || math.IsNaN(x[0]) && math.IsNaN(y[0])) && x[1] == y[1] && x[2] == y[2]
	})
}

// TestApprovalQueue: a contributor that holds every query for its
// operator's approval answers pending and charges nothing; once the
// operator approves, the querier collects the answer by asking again with
// the same query ID; asking a third time charges nothing more.
func TestApprovalQueue(t *testing.T) {
	const approving, open = "Approving Org", "Open Org"
	f := smallFed(t, []string{approving, open}, map[string]func(*node.Policy){
		approving: func(p *node.Policy) { p.Remote.RequireApproval = true },
	})
	a, o := f.memberOf(t, approving), f.memberOf(t, open)
	ctx := context.Background()
	const eps = 0.5
	req := &node.QueryRequest{ID: "q-approval-1", Query: mustParse(t, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY gender"), Epsilon: eps, Purpose: "annual report"}
	years := req.Query.Years(node.DefaultCodebook())

	status := func(t *testing.T, res *federation.Result, org string) federation.Coverage {
		t.Helper()
		c, ok := coverageOf(res)[org]
		if !ok {
			t.Fatalf("%s is not in the coverage", org)
		}
		return c
	}

	first := f.query(t, req)
	t.Run("PendingFirst", func(t *testing.T) {
		if c := status(t, first, approving); c.Status != federation.CoveragePending || c.ChargedEpsilon != 0 {
			t.Errorf("got %s charged ε %v, want %s charged 0", c.Status, c.ChargedEpsilon, federation.CoveragePending)
		}
		if c := status(t, first, open); c.Status != federation.CoverageAnswered || c.ChargedEpsilon != eps {
			t.Errorf("the other node: got %s charged ε %v, want %s charged %v", c.Status, c.ChargedEpsilon, federation.CoverageAnswered, eps)
		}
		if first.Answered != 1 {
			t.Errorf("got %d answered, want 1", first.Answered)
		}
		if sp := a.spending(t); len(sp.Node) != 0 || len(sp.Orgs) != 0 {
			t.Errorf("got spending %+v, want nothing charged", sp)
		}
	})

	pending, err := a.db.Approvals(ctx, node.ApprovalPending)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("got %d pending approvals, want 1", len(pending))
	}
	t.Run("QueueEntry", func(t *testing.T) {
		p := pending[0]
		if p.Peer.PeerID != f.querier.PeerID().String() || p.Peer.Org != f.querierOrg || p.Request.ID != req.ID || p.Request.Purpose != req.Purpose || p.Request.Query.Canonical() != req.Query.Canonical() {
			t.Errorf("got %s from %s (%s) for %q, want %s from %s (%s) for %q",
				p.Request.ID, p.Peer.Org, p.Peer.PeerID, p.Request.Purpose, req.ID, f.querierOrg, f.querier.PeerID(), req.Purpose)
		}
	})
	if _, err := a.db.DecideApproval(ctx, pending[0].ID, node.ApprovalApproved, "operator"); err != nil {
		t.Fatal(err)
	}

	second := f.query(t, req)
	spent := a.spending(t)
	t.Run("AnsweredOnceApproved", func(t *testing.T) {
		if c := status(t, second, approving); c.Status != federation.CoverageAnswered || c.ChargedEpsilon != eps {
			t.Errorf("got %s charged ε %v, want %s charged %v", c.Status, c.ChargedEpsilon, federation.CoverageAnswered, eps)
		}
		if c := status(t, second, open); c.Status != federation.CoverageAnswered || c.ChargedEpsilon != 0 {
			t.Errorf("the other node, asked again: got %s charged ε %v, want %s charged 0", c.Status, c.ChargedEpsilon, federation.CoverageAnswered)
		}
		if second.Answered != 2 {
			t.Errorf("got %d answered, want 2", second.Answered)
		}
		for _, c := range second.Cells {
			if c.Nodes != 2 {
				t.Errorf("cell %v: got %d nodes, want 2", c.Key, c.Nodes)
			}
		}
		cost, _ := privacy.ToAmount(eps, 0)
		for _, y := range years {
			if got := spent.Orgs[f.querierOrg][y]; got != cost {
				t.Errorf("year %d: got %v charged to %s, want %v", y, got, f.querierOrg, cost)
			}
			if got := spent.Node[y]; got != cost {
				t.Errorf("year %d: got %v charged node-wide, want %v", y, got, cost)
			}
		}
		if len(spent.Node) != len(years) {
			t.Errorf("got %d years charged, want %d", len(spent.Node), len(years))
		}
	})

	openSpent := o.spending(t)
	third := f.query(t, req)
	t.Run("NotChargedAgain", func(t *testing.T) {
		for _, c := range third.Coverage {
			if c.Status != federation.CoverageAnswered || c.ChargedEpsilon != 0 {
				t.Errorf("%s: got %s charged ε %v, want %s charged 0", c.Org, c.Status, c.ChargedEpsilon, federation.CoverageAnswered)
			}
		}
		if sp := a.spending(t); !reflect.DeepEqual(sp, spent) {
			t.Errorf("got spending %+v, want %+v", sp, spent)
		}
		if sp := o.spending(t); !reflect.DeepEqual(sp, openSpent) {
			t.Errorf("the other node: got spending %+v, want %+v", sp, openSpent)
		}
		// Both nodes gave the replies they kept: the same released result.
		if !sameValues(releasedValues(third.Cells), releasedValues(second.Cells)) {
			t.Error("got other values than the second answer, want the same")
		}
	})
}

// TestBudgetExhaustedAtOneNode: a contributor whose cap for the querier's
// organisation is too small refuses with the budget reason while the
// others answer; asking again with the same query ID charges no node
// again.
func TestBudgetExhaustedAtOneNode(t *testing.T) {
	const poor = "Tiny Cap Org"
	orgs := []string{"First Org", "Second Org", poor}
	f := smallFed(t, orgs, map[string]func(*node.Policy){
		poor: func(p *node.Policy) { p.Caps.OrgPerYear = privacy.Amount{Epsilon: privacy.MicroPerUnit / 10} },
	})
	const eps = 0.5
	req := &node.QueryRequest{ID: "q-budget-1", Query: mustParse(t, "SELECT COUNT(*) FROM cases GROUP BY majority"), Epsilon: eps, Purpose: "monitoring"}

	check := func(t *testing.T, res *federation.Result, charged float64) {
		t.Helper()
		cov := coverageOf(res)
		if len(cov) != len(orgs) {
			t.Fatalf("got %d coverage entries, want %d", len(cov), len(orgs))
		}
		for _, org := range orgs {
			c := cov[org]
			switch {
			case org == poor:
				if c.Status != federation.CoverageRefused || c.Reason != federation.RefusedBudget || c.Detail != federation.ReasonBudgetOrgCap || c.ChargedEpsilon != 0 {
					t.Errorf("%s: got %s %s %s charged ε %v, want %s %s %s charged 0", org, c.Status, c.Reason, c.Detail, c.ChargedEpsilon,
						federation.CoverageRefused, federation.RefusedBudget, federation.ReasonBudgetOrgCap)
				}
				if c.Message != node.BudgetExhausted.Message() {
					t.Errorf("%s: got message %q, want the kind's fixed message", org, c.Message)
				}
			case c.Status != federation.CoverageAnswered || c.ChargedEpsilon != charged:
				t.Errorf("%s: got %s charged ε %v, want %s charged %v", org, c.Status, c.ChargedEpsilon, federation.CoverageAnswered, charged)
			}
		}
		if res.Answered != 2 {
			t.Errorf("got %d answered, want 2", res.Answered)
		}
		for _, c := range res.Cells {
			if c.Nodes != 2 {
				t.Errorf("cell %v: got %d nodes, want 2", c.Key, c.Nodes)
			}
		}
	}

	first := f.query(t, req)
	t.Run("RefusedAtOne", func(t *testing.T) { check(t, first, eps) })
	before := map[string]*node.Spending{}
	for _, m := range f.members {
		before[m.org] = m.spending(t)
	}
	t.Run("NothingChargedAtTheRefusingNode", func(t *testing.T) {
		if sp := before[poor]; len(sp.Node) != 0 || len(sp.Orgs) != 0 {
			t.Errorf("got spending %+v, want nothing charged", sp)
		}
	})
	again := f.query(t, req)
	t.Run("RepeatedIDNotCharged", func(t *testing.T) {
		check(t, again, 0)
		for _, m := range f.members {
			if sp := m.spending(t); !reflect.DeepEqual(sp, before[m.org]) {
				t.Errorf("%s: got spending %+v, want %+v", m.org, sp, before[m.org])
			}
		}
		if !sameValues(releasedValues(again.Cells), releasedValues(first.Cells)) {
			t.Error("got other values than the first answer, want the same replies")
		}
	})
}
