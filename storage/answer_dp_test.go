package storage_test

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/privacy/privacytest"
	"github.com/ctfed/ctfed/storage"
)

// The statistical tests of ctfed's answer path: noise scale, neighbouring
// datasets, the release rule and phantom cells, each through a real store,
// the QueryService (charge, bounding, noise, cache) and node.Combine (the
// release rule). The DP library's noise cannot be seeded, so each check has
// a fixed failure probability, alpha (answer_test.go). A draw is one noisy
// value (or one output of the mechanism) that enters a statistic; each test
// takes at most 300 000, ten times as many under CTFED_DP_AUDIT=1.

// fourMeans are the means of control the neighbouring-datasets query
// groups by.
var fourMeans = []string{"debt_bondage_earnings", "threats", "abuse", "false_promises"}

// rowCodes returns the citizenship codes of the codebook: the rows of the
// tests' many-cell queries.
func rowCodes() []string { return node.DefaultCodebook().Countries.Values() }

// TestAnswerNoiseScale checks that the noise of COUNT and SUM cells read
// from QueryService answers (the noisy table's value minus the exact value)
// fits the distribution each cell claims (its Mechanism and Scale, whole
// numbers: a lattice Kolmogorov–Smirnov test against the DKW bound at
// alpha), and that the same test rejects half the claimed scale, so it has
// power. Every query has about 1 000 cells (citizenship × gender or
// citizenship × means of control) and each answer is asked in a new epoch,
// so no answer comes from the cache.
//
// A rejection check fails by chance only if the empirical distribution is
// further from the true one than the distance between the true and the
// half-scale distributions (about 0.12) minus the DKW bound (0.02): far less
// likely than alpha.
func TestAnswerNoiseScale(t *testing.T) {
	db := MustOpenAnswerDB(t, t.TempDir())
	// A few cases in some cells, so that exact values are not all zero;
	// every case has at most 3 means of control (the dimension's L0), so
	// bounding keeps all of them and the bounded table is the exact one.
	var cases []*node.Case
	genders := node.ListGender.Values()
	rows := rowCodes()
	for i := range 3000 {
		c := plainCase(fmt.Sprintf("N%05d", i), 2015+i%10, rows[(i*7)%len(rows)], genders[i%len(genders)])
		c.Age = node.IntPtr(i % 101)
		c.MeansOfControl = []string{node.ListMeans.Values()[i%9], node.ListMeans.Values()[(i+3)%9]}[:1+i%2]
		cases = append(cases, c)
	}
	mustPutAll(t, db, cases)
	p := statPolicy()
	clk := newTestClock(p.Epoch)
	s := newAnswerService(db, p, clk)

	count := mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY citizenship, gender")
	sum := mustQuery(t, "SELECT SUM(age) FROM cases GROUP BY citizenship, gender")
	means := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2015 AND 2024 GROUP BY citizenship, means_of_control")
	const eps = privacy.DefaultQueryEpsilon
	for _, tc := range []struct {
		name  string
		q     *node.Query
		mech  string
		draws int
		// want is the noise each cell must claim; part picks the value.
		want privacy.Spec
		part func(c node.NoisyCell, e node.Tally) (noisy privacy.Estimate, exact int64)
	}{
		{"CountLaplace", count, "", 20_000,
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps, L0: 1, LInf: 1},
			func(c node.NoisyCell, e node.Tally) (privacy.Estimate, int64) { return c.Count, e.Count }},
		{"CountGaussian", count, "gaussian", 20_000,
			privacy.Spec{Mechanism: privacy.Gaussian, Epsilon: eps, Delta: privacy.DefaultGaussianDelta, L0: 1, LInf: 1},
			func(c node.NoisyCell, e node.Tally) (privacy.Estimate, int64) { return c.Count, e.Count }},
		{"CountMeansOfControlL0Three", means, "", 20_000,
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps, L0: 3, LInf: 1},
			func(c node.NoisyCell, e node.Tally) (privacy.Estimate, int64) { return c.Count, e.Count }},
		{"SumOfAge", sum, "", 20_000,
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps / 2, L0: 1, LInf: 100},
			func(c node.NoisyCell, e node.Tally) (privacy.Estimate, int64) { return *c.Sum, e.Sum }},
		{"SumOfAgeCount", sum, "", 20_000,
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps / 2, L0: 1, LInf: 1},
			func(c node.NoisyCell, e node.Tally) (privacy.Estimate, int64) { return c.Count, e.Count }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want.Noise()
			if tc.want.Mechanism == privacy.Laplace {
				// The model's b = L0·L∞/ε, to the library's granularity.
				if b := float64(tc.want.L0*tc.want.LInf) / tc.want.Epsilon; math.Abs(want.Scale-b) > 1e-9*b {
					t.Fatalf("Spec.Noise: got scale %v, want %v", want.Scale, b)
				}
			}
			exact := mustExact(t, s, tc.q)
			n := auditDraws(tc.draws)
			samples := make([]float64, 0, n)
			for len(samples) < n {
				a := mustAnswer(t, s, &node.AnswerRequest{Query: tc.q, Mechanism: tc.mech})
				if a.Cached {
					t.Fatal("got a cached answer, want a new one in a new epoch")
				}
				clk.Advance(p.Epoch)
				for i, c := range a.Table.Cells {
					e, x := tc.part(c, exact.Cells[i])
					if e.Noise() != want || e.L0 != tc.want.L0 || e.LInf != tc.want.LInf {
						t.Fatalf("cell %d: got %v scale %v L0 %d L∞ %d, want %v scale %v L0 %d L∞ %d",
							i, e.Mechanism, e.Scale, e.L0, e.LInf, want.Mechanism, want.Scale, tc.want.L0, tc.want.LInf)
					}
					if len(samples) < n {
						samples = append(samples, e.Value-float64(x))
					}
				}
			}
			bound := privacytest.DKW(n, alpha)
			d := privacytest.KSLattice(samples, want.CDF)
			half := privacy.Noise{Mechanism: want.Mechanism, Scale: want.Scale / 2}
			dHalf := privacytest.KSLattice(samples, half.CDF)
			t.Logf("%s %v scale %.4g: %d draws, KS distance %.4f to the claimed noise, %.4f to half its scale; DKW bound %.4f",
				tc.name, want.Mechanism, want.Scale, n, d, dHalf, bound)
			if d > bound {
				t.Errorf("KS distance to the claimed noise: got %v, want at most %v", d, bound)
			}
			if dHalf <= bound {
				t.Errorf("KS distance to half the scale: got %v, want above %v (the test has no power)", dHalf, bound)
			}
		})
	}
}

// TestAnswerNeighbourDP checks ε on neighbouring datasets from output
// histograms, through the whole answer path. A case x with many
// multi-valued codes (8 means of control, 6 exploitation types) is added to
// a store; the query groups by means of control (L0 3), restricted to 4 of
// x's means, so that bounding keeps 3 of its 4 codes at random; the output
// is the sum of the 4 cells x can reach, as released by Combine (a
// suppressed cell counts 0: any function of the release is a release).
//
// To take many draws from few answers, the query also groups by
// citizenship: store A holds the same 48 base cases in every citizenship row
// (each cell 36), store B holds them and one copy of x per row. A row's
// cells are computed from that row's cases alone (per-case bounding,
// independent noise per cell), so every row of an answer from A is an
// independent draw of the mechanism on the base data, and the same row from
// B one on the base data plus x: one case added. With the noise scaled to
// L0 = 3 the lower confidence bound on the privacy loss must not exceed ε
// (it does with probability at most alpha). The same check on the same
// stores with the noise scaled as if L0 were 1 must exceed ε: that variant
// is the QueryService's own path (the bounded aggregate of the store, the
// noise of privacy.NoisyCount, the table, Combine) with the noise's Spec
// forced to L0 = 1. Its expected loss bound is about 1.5 at ε 1 with 25 000
// draws a side, 8 standard deviations above ε, so the power check fails by
// chance far less often than alpha.
func TestAnswerNeighbourDP(t *testing.T) {
	const (
		eps       = 1.0
		baseCases = 48 // per row, each with 3 of fourMeans: 36 per cell
		baseSum   = baseCases * 3
	)
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE means_of_control IN ('"+strings.Join(fourMeans, "', '")+
		"') GROUP BY citizenship, means_of_control")
	rows := rowCodes()
	build := func(withX bool) *storage.DB {
		db := MustOpenAnswerDB(t, t.TempDir())
		var cases []*node.Case
		for r, code := range rows {
			for j := range baseCases {
				c := plainCase(fmt.Sprintf("B%03d-%02d", r, j), 2020, code, "woman")
				for k, m := range fourMeans {
					if k != j%len(fourMeans) {
						c.MeansOfControl = append(c.MeansOfControl, m)
					}
				}
				cases = append(cases, c)
			}
			if withX {
				x := plainCase(fmt.Sprintf("X%03d", r), 2020, code, "woman")
				x.MeansOfControl = node.ListMeans.Values()[:8]
				x.ExploitationTypes = node.ListExploitation.Values()[:6]
				cases = append(cases, x)
			}
		}
		mustPutAll(t, db, cases)
		return db
	}
	dbA, dbB := build(false), build(true)
	p := statPolicy()
	right := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps, L0: 3, LInf: 1}
	wrong := right
	wrong.L0 = 1
	n := auditDraws(25_000)
	width := len(fourMeans)

	// rowSums appends the released sum of each row's cells, less the base.
	rowSums := func(out []float64, cells []node.ResultCell, tab *node.NoisyTable) []float64 {
		for r := range len(cells) / width {
			var sum float64
			for j := range width {
				i := r*width + j
				if v := cells[i].Value; v != nil {
					if *v != tab.Cells[i].Count.Value {
						t.Fatalf("cell %d: released %v, want the table's %v", i, *v, tab.Cells[i].Count.Value)
					}
					sum += *v
				}
			}
			out = append(out, sum-baseSum)
		}
		return out
	}
	// viaService draws outputs from QueryService answers.
	viaService := func(db *storage.DB) []float64 {
		clk := newTestClock(p.Epoch)
		s := newAnswerService(db, p, clk)
		var out []float64
		for len(out) < n {
			a := mustAnswer(t, s, &node.AnswerRequest{Query: q, Epsilon: eps})
			clk.Advance(p.Epoch)
			if a.Cached {
				t.Fatal("got a cached answer, want a new one in a new epoch")
			}
			for i, c := range a.Table.Cells {
				if c.Count.Noise() != right.Noise() || c.Count.L0 != right.L0 {
					t.Fatalf("cell %d: got scale %v L0 %d, want %v L0 %d", i, c.Count.Scale, c.Count.L0, right.Noise().Scale, right.L0)
				}
			}
			out = rowSums(out, mustCombine(t, s, a.Table), a.Table)
		}
		return out[:n]
	}
	// withSpec draws outputs from the service's path with the noise of
	// spec: the bounded aggregate the service asks for, noised cell by cell
	// as the service does, released by Combine.
	withSpec := func(db *storage.DB, spec privacy.Spec) []float64 {
		s := newAnswerService(db, p, newTestClock(p.Epoch))
		var out []float64
		for len(out) < n {
			exact, err := db.Aggregate(q, node.AggregateOptions{ConsentOnly: true, Bound: true, MaxCells: p.MaxCells})
			if err != nil {
				t.Fatal(err)
			}
			if !exact.Bounded || exact.L0 != 3 {
				t.Fatalf("got bounded %v L0 %d, want bounded to 3", exact.Bounded, exact.L0)
			}
			tab := &node.NoisyTable{Query: q, Domains: exact.Domains, Cells: make([]node.NoisyCell, len(exact.Cells)),
				Mechanism: spec.Mechanism, Epsilon: spec.Epsilon, MinCellSize: p.MinCellSize}
			for i, c := range exact.Cells {
				if tab.Cells[i].Count, err = privacy.NoisyCount(c.Count, spec); err != nil {
					t.Fatal(err)
				}
			}
			out = rowSums(out, mustCombine(t, s, tab), tab)
		}
		return out[:n]
	}

	// Bounding is in place: x adds exactly L0 = 3 to its row's sum.
	for _, tc := range []struct {
		db   *storage.DB
		want int64
	}{{dbA, baseSum}, {dbB, baseSum + 3}} {
		exact, err := tc.db.Aggregate(q, node.AggregateOptions{ConsentOnly: true, Bound: true, MaxCells: p.MaxCells})
		if err != nil {
			t.Fatal(err)
		}
		for r := range len(exact.Cells) / width {
			var sum int64
			for j := range width {
				sum += exact.Cells[r*width+j].Count
			}
			if sum != tc.want {
				t.Fatalf("row %d: bounded sum %d, want %d", r, sum, tc.want)
			}
		}
	}

	// Buckets: the two tails, where the loss of a mis-scaled noise shows,
	// and the middle in three parts. x shifts the sum by 3; the edges are
	// symmetric about 1.5.
	edges := []float64{-3.5, 0.5, 2.5, 6.5}
	for _, c := range []struct {
		name string
		draw func(*storage.DB) []float64
		pass bool
	}{
		{"ScaledToL0", viaService, true},
		{"ScaledAsL0One", func(db *storage.DB) []float64 { return withSpec(db, wrong) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			xs, ys := c.draw(dbA), c.draw(dbB)
			loss := privacytest.PrivacyLoss(xs, ys, edges, 0, alpha)
			t.Logf("%s: %d outputs per dataset, privacy loss lower bound %.3f (point %.3f, bucket %d) for ε = %v",
				c.name, n, loss.Lower, loss.Point, loss.Bucket, eps)
			if c.pass && loss.Lower > eps {
				t.Errorf("privacy loss lower bound: got %v, want at most ε = %v", loss.Lower, eps)
			}
			if !c.pass && loss.Lower <= eps {
				t.Errorf("privacy loss lower bound: got %v, want above ε = %v (the check has no power)", loss.Lower, eps)
			}
		})
	}
}

// releaseStore returns a store where every citizenship row holds 10
// consenting women aged 30 and one man aged 40: cells of true count 10 and
// 1, and (trans_nonconforming, unknown) true zeros.
func releaseStore(t *testing.T) *storage.DB {
	db := MustOpenAnswerDB(t, t.TempDir())
	var cases []*node.Case
	for r, code := range rowCodes() {
		for j := range 10 {
			c := plainCase(fmt.Sprintf("W%03d-%d", r, j), 2022, code, "woman")
			c.Age = node.IntPtr(30)
			cases = append(cases, c)
		}
		c := plainCase(fmt.Sprintf("M%03d", r), 2022, code, "man")
		c.Age = node.IntPtr(40)
		cases = append(cases, c)
	}
	mustPutAll(t, db, cases)
	return db
}

// TestAnswerReleaseRate checks the release rule through the answer path: a
// cell of true count 10 at ε 0.1 (Laplace, minimum 5) is suppressed at the
// rate privacy.ReleaseProbability predicts, neither never nor always
// (binomial interval at alpha); SUM and AVG of such cells follow their
// released count (their own noisy count, at ε 0.05): the measure is shown
// exactly when that count passes the rule, with that count beside it, and
// the SUM cells' rate matches the prediction for the count's half ε.
func TestAnswerReleaseRate(t *testing.T) {
	db := releaseStore(t)
	p := statPolicy()
	clk := newTestClock(p.Epoch)
	s := newAnswerService(db, p, clk)
	const eps = 0.1
	minSize := int64(p.MinCellSize)
	for _, tc := range []struct {
		name   string
		sql    string
		spec   privacy.Spec // of the count that decides
		checks bool         // a rate check (alpha) or only the follow rule
	}{
		{"Count", "SELECT COUNT(*) FROM cases WHERE gender = 'woman' GROUP BY citizenship",
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps, L0: 1, LInf: 1}, true},
		{"Sum", "SELECT SUM(age) FROM cases WHERE gender = 'woman' GROUP BY citizenship",
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps / 2, L0: 1, LInf: 1}, true},
		{"Avg", "SELECT AVG(age) FROM cases WHERE gender = 'woman' GROUP BY citizenship",
			privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps / 2, L0: 1, LInf: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := mustQuery(t, tc.sql)
			pr, err := privacy.ReleaseProbability(10, tc.spec, minSize)
			if err != nil {
				t.Fatal(err)
			}
			exact := mustExact(t, s, q)
			for i, c := range exact.Cells {
				if c.Count != 10 {
					t.Fatalf("cell %d: exact count %d, want 10", i, c.Count)
				}
			}
			n := auditDraws(20_000)
			trials, suppressed := 0, 0
			for trials < n {
				a := mustAnswer(t, s, &node.AnswerRequest{Query: q, Epsilon: eps})
				clk.Advance(p.Epoch)
				cells := mustCombine(t, s, a.Table)
				for i, rc := range cells {
					count := a.Table.Cells[i].Count
					if count.Noise() != tc.spec.Noise() {
						t.Fatalf("cell %d: count noise %+v, want %+v", i, count.Noise(), tc.spec.Noise())
					}
					ok, reason := privacy.Release(count, minSize)
					if got := rc.Value != nil; got != ok || rc.Suppressed != reason {
						t.Fatalf("cell %d: got shown %v (%q), want %v (%q) as its noisy count %v decides",
							i, got, rc.Suppressed, ok, reason, count.Value)
					}
					if q.Measure.Func != node.FuncCount {
						// The measure follows the count, both ways.
						if (rc.Count != nil) != ok || ok && *rc.Count != count.Value {
							t.Fatalf("cell %d: got count %v beside the measure, want the noisy count %v when shown", i, rc.Count, count.Value)
						}
						if ok && (rc.Lo == nil || rc.Hi == nil) {
							t.Fatalf("cell %d: shown without its interval", i)
						}
					}
					if trials < n {
						trials++
						if !ok {
							suppressed++
						}
					}
				}
			}
			lo, hi := privacytest.BinomialInterval(suppressed, trials, alpha)
			t.Logf("%s, true count 10, ε %v (count at ε %v), minimum %d: suppressed %d of %d (%.4f, interval [%.4f, %.4f]); predicted %.4f",
				tc.name, eps, tc.spec.Epsilon, minSize, suppressed, trials, float64(suppressed)/float64(trials), lo, hi, 1-pr)
			if suppressed == 0 || suppressed == trials {
				t.Fatalf("suppressed %d of %d, want neither none nor all", suppressed, trials)
			}
			if tc.checks && (1-pr < lo || 1-pr > hi) {
				t.Errorf("suppression rate: got %d of %d (interval [%v, %v]), want %v", suppressed, trials, lo, hi, 1-pr)
			}
		})
	}
}

// TestAnswerPhantomRates measures how often cells of true count 0, 1 and 10
// show as numbers at the default ε 0.5 (Laplace, minimum 5), through the
// answer path and Combine; checks each rate against
// privacy.ReleaseProbability (binomial interval at alpha) and checks that
// docs/privacy.md states the predicted figures.
func TestAnswerPhantomRates(t *testing.T) {
	db := releaseStore(t)
	p := statPolicy()
	clk := newTestClock(p.Epoch)
	s := newAnswerService(db, p, clk)
	q := mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY citizenship, gender")
	exact := mustExact(t, s, q)
	spec := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: p.DefaultEpsilon, L0: 1, LInf: 1}
	minSize := int64(p.MinCellSize)
	type rate struct{ shown, trials int }
	rates := map[int64]*rate{0: {}, 1: {}, 10: {}}
	// 1 000 cells an answer: 250 of count 10, 250 of 1, 500 zeros.
	for draws := 0; draws < auditDraws(100_000); {
		a := mustAnswer(t, s, &node.AnswerRequest{Query: q})
		clk.Advance(p.Epoch)
		for i, rc := range mustCombine(t, s, a.Table) {
			r := rates[exact.Cells[i].Count]
			if r == nil {
				t.Fatalf("cell %d: exact count %d, want 0, 1 or 10", i, exact.Cells[i].Count)
			}
			r.trials++
			if rc.Value != nil {
				r.shown++
			}
			draws++
		}
	}
	docs := docFigures(t)
	for _, c := range []int64{0, 1, 10} {
		t.Run(fmt.Sprintf("True%d", c), func(t *testing.T) {
			pr, err := privacy.ReleaseProbability(c, spec, minSize)
			if err != nil {
				t.Fatal(err)
			}
			r := rates[c]
			lo, hi := privacytest.BinomialInterval(r.shown, r.trials, alpha)
			t.Logf("Laplace ε %v, minimum %d: a true %d shows as a number %d of %d times (%.2f%%, interval %.2f–%.2f%%); predicted %.2f%%, docs/privacy.md says %s",
				spec.Epsilon, minSize, c, r.shown, r.trials, 100*float64(r.shown)/float64(r.trials), 100*lo, 100*hi, 100*pr, docs[c])
			if pr < lo || pr > hi {
				t.Errorf("rate: got %d of %d (interval [%v, %v]), want %v", r.shown, r.trials, lo, hi, pr)
			}
			digits := 2
			if c == 10 {
				digits = 1
			}
			if want := fmt.Sprintf("%.*f%%", digits, 100*pr); docs[c] != want {
				t.Errorf("docs/privacy.md: got %q for a true %d at the default, want %q", docs[c], c, want)
			}
		})
	}
}

// docFigures reads the default row of docs/privacy.md's phantom-cell table:
// the stated chance that a true 0, 1 and 10 show as numbers.
func docFigures(t *testing.T) map[int64]string {
	t.Helper()
	b, err := os.ReadFile("../docs/privacy.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| **Laplace, ε 0.5 (default), L0 1**") {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) < 7 {
			break
		}
		clean := func(s string) string { return strings.Trim(strings.TrimSpace(s), "*") }
		return map[int64]string{0: clean(f[3]), 1: clean(f[4]), 10: clean(f[5])}
	}
	t.Fatal("docs/privacy.md has no row for the default Laplace ε 0.5 in its phantom-cell table")
	return nil
}
