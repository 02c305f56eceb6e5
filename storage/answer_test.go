package storage_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/storage"
)

// alpha is the false-failure probability of each statistical check of the
// answer tests (answer_dp_test.go). They hold 17 checks with a stated
// failure probability: TestAnswerNoiseScale 10 (5 fits, 5 rejections of
// half the scale), TestAnswerNeighbourDP 2 (the loss bound with the right
// scale, and the power check with the scale of L0 = 1), TestAnswerReleaseRate
// 2 and TestAnswerPhantomRates 3 (binomial intervals). A power check fails
// by chance far less often than alpha (see each test), so the answer tests
// fail by chance with probability below 17·alpha = 8.5·10^-5 < 10^-4.
const alpha = 5e-6

var (
	_ node.Aggregator = (*storage.DB)(nil)
	_ node.Ledger     = (*storage.DB)(nil)
)

// TestAnswer_PublicDomain checks the shape of a private answer on the real
// store: every cell of the grouped domain is in the table, whether the store
// is empty or not, each carries the noise the policy asks for, and the
// release through Combine shows a cell's number exactly when its released
// count passes the release rule.
func TestAnswer_PublicDomain(t *testing.T) {
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2021 GROUP BY gender, exploitation_type")
	for _, tc := range []struct {
		name  string
		cases int
	}{{"Empty", 0}, {"Full", 400}} {
		t.Run(tc.name, func(t *testing.T) {
			db := MustOpenAnswerDB(t, t.TempDir())
			var cases []*node.Case
			genders := node.ListGender.Values()
			for i := range tc.cases {
				c := plainCase("P"+strconv.Itoa(i), 2021, "THA", genders[i%len(genders)])
				c.ExploitationTypes = []string{"sexual", "forced_labour", "begging"}[:1+i%3]
				cases = append(cases, c)
			}
			mustPutAll(t, db, cases)
			p := node.DefaultPolicy()
			s := newAnswerService(db, p, newTestClock(p.Epoch))
			a := mustAnswer(t, s, &node.AnswerRequest{Query: q})
			if got, want := len(a.Table.Cells), q.CellCount(db.Codebook); got != want {
				t.Fatalf("got %d cells, want %d", got, want)
			}
			if got, want := a.Years, []int{2021}; !slices.Equal(got, want) {
				t.Errorf("years: got %v, want %v", got, want)
			}
			want := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: p.DefaultEpsilon, L0: 2, LInf: 1}.Noise()
			for i, c := range a.Table.Cells {
				if c.Count.Noise() != want || c.Count.L0 != 2 || c.Count.LInf != 1 {
					t.Fatalf("cell %d: got noise %+v L0 %d L∞ %d, want %+v L0 2 L∞ 1", i, c.Count.Noise(), c.Count.L0, c.Count.LInf, want)
				}
			}
			cells := mustCombine(t, s, a.Table)
			for i, rc := range cells {
				ok, reason := privacy.Release(a.Table.Cells[i].Count, int64(p.MinCellSize))
				if ok != (rc.Value != nil) || reason != rc.Suppressed {
					t.Fatalf("cell %d: got released %v (%q), want %v (%q)", i, rc.Value != nil, rc.Suppressed, ok, reason)
				}
				if ok && *rc.Value != a.Table.Cells[i].Count.Value {
					t.Fatalf("cell %d: got value %v, want the table's %v", i, *rc.Value, a.Table.Cells[i].Count.Value)
				}
			}
		})
	}
}

// TestAnswer_ExactNeverCached checks that exact figures do not enter the
// answer cache: an exact table and then a private answer of the same query
// charge and noise as if the exact table had never been asked for.
func TestAnswer_ExactNeverCached(t *testing.T) {
	db := MustOpenAnswerDB(t, t.TempDir())
	mustPutAll(t, db, []*node.Case{plainCase("E1", 2020, "THA", "woman")})
	p := node.DefaultPolicy()
	s := newAnswerService(db, p, newTestClock(p.Epoch))
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	mustExact(t, s, q)
	if sp := mustSpending(t, db); len(sp.Node) != 0 || len(sp.Orgs) != 0 {
		t.Fatalf("an exact table charged %+v, want nothing", sp)
	}
	a := mustAnswer(t, s, &node.AnswerRequest{Query: q})
	if a.Cached || a.Charged.Epsilon != privacy.Micro(p.DefaultEpsilon*privacy.MicroPerUnit) {
		t.Fatalf("got cached %v charged %v, want a fresh answer charged %v", a.Cached, a.Charged, p.DefaultEpsilon)
	}
}
