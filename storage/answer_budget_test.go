package storage_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/storage"
)

// The budget through the answer path: caps, per-year charging, the year-move
// rule, the answer cache per epoch, dry runs, concurrency, a crash between
// charge and answer, and refusals that never depend on the data.

// amount converts ε and δ to micro-units.
func amount(tb testing.TB, eps, delta float64) privacy.Amount {
	tb.Helper()
	a, err := privacy.ToAmount(eps, delta)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// capsOf returns caps of the given ε (δ as by default).
func capsOf(tb testing.TB, nodeWide, org, query float64) privacy.Caps {
	c := privacy.DefaultCaps()
	c.NodePerYear.Epsilon = amount(tb, nodeWide, 0).Epsilon
	c.OrgPerYear.Epsilon = amount(tb, org, 0).Epsilon
	c.PerQuery.Epsilon = amount(tb, query, 0).Epsilon
	return c
}

// budgetStore opens a store holding a few cases of 2020 and 2021.
func budgetStore(t *testing.T) *storage.DB {
	t.Helper()
	db := MustOpenAnswerDB(t, t.TempDir())
	var cases []*node.Case
	for i := range 40 {
		c := plainCase(fmt.Sprintf("G%03d", i), 2020+i%2, []string{"THA", "MMR", "KHM"}[i%3], []string{"woman", "man"}[i%2])
		c.Age = node.IntPtr(18 + i)
		cases = append(cases, c)
	}
	mustPutAll(t, db, cases)
	return db
}

// TestAnswerBudget_Refusal checks that a query that would exceed each cap
// is refused as BudgetExhausted naming the cap, and charges nothing: the
// ledger and the budget lines are the same before and after, and the
// refused query was not cached.
func TestAnswerBudget_Refusal(t *testing.T) {
	q2020 := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	for _, tc := range []struct {
		name  string
		caps  func(tb testing.TB) privacy.Caps
		setup []node.AnswerRequest // answered first, must succeed
		req   node.AnswerRequest
		cap   string
		param string
		year  int
	}{
		{"PerQueryEpsilon", func(tb testing.TB) privacy.Caps { return privacy.DefaultCaps() }, nil,
			node.AnswerRequest{Query: q2020, Epsilon: 1.5}, privacy.CapPerQuery, "ε", 0},
		{"PerQueryDelta", func(tb testing.TB) privacy.Caps { return privacy.DefaultCaps() }, nil,
			node.AnswerRequest{Query: q2020, Mechanism: "gaussian", Delta: 2e-5}, privacy.CapPerQuery, "δ", 0},
		{"NodeWideEpsilon", func(tb testing.TB) privacy.Caps { return capsOf(tb, 1, 4, 1) },
			[]node.AnswerRequest{{Query: q2020, Org: "org-a", Epsilon: 0.8}},
			node.AnswerRequest{Query: q2020, Org: "org-b", Epsilon: 0.5}, privacy.CapNode, "ε", 2020},
		{"NodeWideDelta", func(tb testing.TB) privacy.Caps {
			c := privacy.DefaultCaps()
			c.NodePerYear.Delta = 3
			return c
		}, []node.AnswerRequest{{Query: q2020, Org: "org-a", Mechanism: "gaussian", Delta: 2e-6}},
			node.AnswerRequest{Query: q2020, Org: "org-b", Mechanism: "gaussian", Delta: 2e-6, Epsilon: 0.4}, privacy.CapNode, "δ", 2020},
		{"OrganisationEpsilon", func(tb testing.TB) privacy.Caps { return capsOf(tb, 8, 1, 1) },
			[]node.AnswerRequest{{Query: q2020, Org: "org-a", Epsilon: 0.8}},
			node.AnswerRequest{Query: q2020, Org: "org-a", Epsilon: 0.5}, privacy.CapOrg, "ε", 2020},
		{"OrganisationDelta", func(tb testing.TB) privacy.Caps {
			c := privacy.DefaultCaps()
			c.OrgPerYear.Delta = 3
			return c
		}, []node.AnswerRequest{{Query: q2020, Org: "org-a", Mechanism: "gaussian", Delta: 2e-6}},
			node.AnswerRequest{Query: q2020, Org: "org-a", Mechanism: "gaussian", Delta: 2e-6, Epsilon: 0.4}, privacy.CapOrg, "δ", 2020},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := budgetStore(t)
			p := node.DefaultPolicy()
			p.Caps = tc.caps(t)
			s := newAnswerService(db, p, newTestClock(p.Epoch))
			for _, r := range tc.setup {
				mustAnswer(t, s, &r)
			}
			before := mustSpending(t, db)
			linesBefore, err := s.Budget(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for attempt := range 2 { // a refusal is not cached: the second is refused again
				req := tc.req
				_, err := s.Answer(ctx, &req)
				if got := node.KindOf(err); got != node.BudgetExhausted {
					t.Fatalf("attempt %d: got kind %v (%v), want %v", attempt, got, err, node.BudgetExhausted)
				}
				var ce *privacy.CapError
				if !errors.As(err, &ce) {
					t.Fatalf("got %v, want a *privacy.CapError", err)
				}
				if ce.Cap != tc.cap || ce.Param != tc.param || ce.Year != tc.year {
					t.Errorf("got cap %q %s year %d, want %q %s year %d", ce.Cap, ce.Param, ce.Year, tc.cap, tc.param, tc.year)
				}
				if !strings.Contains(err.Error(), tc.cap+" "+tc.param+" cap") {
					t.Errorf("got error %q, want it to name the %s %s cap", err, tc.cap, tc.param)
				}
			}
			if after := mustSpending(t, db); !reflect.DeepEqual(after, before) {
				t.Errorf("spending: got %+v after the refusal, want %+v", after, before)
			}
			linesAfter, err := s.Budget(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(linesAfter, linesBefore) {
				t.Errorf("budget lines: got %+v after the refusal, want %+v", linesAfter, linesBefore)
			}
		})
	}
}

// TestAnswerBudget_Years checks which registration years a query charges:
// the years of its filter, or every codebook year without one (never the
// years that hold data), node-wide and for the querier's organisation.
func TestAnswerBudget_Years(t *testing.T) {
	cb := node.DefaultCodebook()
	for _, tc := range []struct {
		name  string
		sql   string
		years []int
	}{
		{"Between", "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2019 AND 2021 GROUP BY gender", []int{2019, 2020, 2021}},
		{"One", "SELECT COUNT(*) FROM cases WHERE registration_year = 2024", []int{2024}},
		{"In", "SELECT SUM(age) FROM cases WHERE registration_year IN (2003, 2027) GROUP BY gender", []int{2003, 2027}},
		{"NoFilter", "SELECT COUNT(*) FROM cases GROUP BY gender", cb.Years()},
		{"OtherFilterOnly", "SELECT AVG(age) FROM cases WHERE gender = 'woman'", cb.Years()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := budgetStore(t) // cases of 2020 and 2021 only
			p := node.DefaultPolicy()
			s := newAnswerService(db, p, newTestClock(p.Epoch))
			a := mustAnswer(t, s, &node.AnswerRequest{Query: mustQuery(t, tc.sql), Org: "org-q", Epsilon: 0.3})
			cost := amount(t, 0.3, 0)
			if !slices.Equal(a.Years, tc.years) || a.Charged != cost {
				t.Fatalf("got years %v charged %v, want %v charged %v", a.Years, a.Charged, tc.years, cost)
			}
			want := map[int]privacy.Amount{}
			for _, y := range tc.years {
				want[y] = cost
			}
			sp := mustSpending(t, db)
			if !maps.Equal(sp.Node, want) {
				t.Errorf("node-wide: got %v, want %v", sp.Node, want)
			}
			if got := sp.Orgs["org-q"]; !maps.Equal(got, want) || len(sp.Orgs) != 1 {
				t.Errorf("organisations: got %v, want only org-q with %v", sp.Orgs, want)
			}
		})
	}
}

// TestAnswerBudget_YearMove checks the year-move rule on the real store:
// when PutCases moves a case from registration year S to D, D's spending
// becomes at least S's, node-wide and for every organisation, and later
// queries about D are charged against that.
func TestAnswerBudget_YearMove(t *testing.T) {
	ctx := context.Background()
	db := MustOpenAnswerDB(t, t.TempDir())
	p := node.DefaultPolicy()
	p.Caps = capsOf(t, 8, 1, 1)
	s := newAnswerService(db, p, newTestClock(p.Epoch))
	ask := func(org string, year int, eps float64) error {
		q := mustQuery(t, fmt.Sprintf("SELECT COUNT(*) FROM cases WHERE registration_year = %d", year))
		_, err := s.Answer(ctx, &node.AnswerRequest{Query: q, Org: org, Epsilon: eps})
		return err
	}
	for _, a := range []struct {
		org  string
		year int
		eps  float64
	}{{"org-a", 2018, 0.7}, {"org-b", 2018, 0.3}, {"org-b", 2022, 0.4}, {"org-a", 2022, 0.2}} {
		if err := ask(a.org, a.year, a.eps); err != nil {
			t.Fatal(err)
		}
	}
	c := plainCase("MOVE1", 2018, "THA", "woman")
	mustPutAll(t, db, []*node.Case{c})
	// New cases and edits that keep the year move nothing.
	c2 := plainCase("MOVE1", 2018, "MMR", "woman")
	mustPutAll(t, db, []*node.Case{c2, plainCase("NEW1", 2022, "THA", "man")})
	before := mustSpending(t, db)
	if got, want := before.Node[2022], amount(t, 0.6, 0); got != want {
		t.Fatalf("node-wide 2022 before the move: got %v, want %v", got, want)
	}

	moved := plainCase("MOVE1", 2022, "MMR", "woman")
	mustPutAll(t, db, []*node.Case{moved})
	sp := mustSpending(t, db)
	for _, tc := range []struct {
		name     string
		src, dst map[int]privacy.Amount
		want     privacy.Amount
	}{
		{"Node", before.Node, sp.Node, amount(t, 1.0, 0)},
		{"OrgA", before.Orgs["org-a"], sp.Orgs["org-a"], amount(t, 0.7, 0)},
		{"OrgB", before.Orgs["org-b"], sp.Orgs["org-b"], amount(t, 0.4, 0)},
	} {
		if got := tc.dst[2022]; got != tc.want || got.Epsilon < tc.src[2018].Epsilon {
			t.Errorf("%s: 2022 spent %v after the move from 2018 (which spent %v), want %v", tc.name, got, tc.src[2018], tc.want)
		}
		if got := tc.dst[2018]; got != tc.src[2018] {
			t.Errorf("%s: 2018 got %v after the move, want it unchanged at %v", tc.name, got, tc.src[2018])
		}
	}
	// org-a's 2022 allocation now counts 2018's 0.7: 0.35 more is refused
	// (an ε not asked before, so that no cached answer serves it).
	if err := ask("org-a", 2022, 0.35); node.KindOf(err) != node.BudgetExhausted {
		t.Errorf("org-a asking 0.35 on 2022 after the move: got %v, want %v", err, node.BudgetExhausted)
	}
	// A move into a year nobody has spent on brings every line along.
	mustPutAll(t, db, []*node.Case{plainCase("MOVE1", 2026, "MMR", "woman")})
	sp = mustSpending(t, db)
	for _, org := range []string{"org-a", "org-b"} {
		if got, want := sp.Orgs[org][2026], sp.Orgs[org][2022]; got != want {
			t.Errorf("%s: 2026 got %v after the move from 2022, want %v", org, got, want)
		}
	}
	if got, want := sp.Node[2026], sp.Node[2022]; got != want {
		t.Errorf("node-wide: 2026 got %v after the move from 2022, want %v", got, want)
	}
}

// TestAnswerBudget_YearMoveConcurrentCharge checks the year-move rule
// against a charge running at the same time. PutCases applies the rule in
// its own transaction; a charge of year D committed while that transaction
// is open must not be lost: whatever the order, D's node-wide spending ends
// at least at what was charged on D, and at least at each organisation's
// spending on D. The charge covers many years (the ledger accepts any), so
// that it holds the ledger lock long enough for the edit to start its
// transaction meanwhile, as a large import batch would.
func TestAnswerBudget_YearMoveConcurrentCharge(t *testing.T) {
	ctx := context.Background()
	db := MustOpenAnswerDB(t, t.TempDir())
	caps := hugeCaps()
	slow := make([]int, 0, 4000)
	for y := 40000; y < 40000+cap(slow); y++ {
		slow = append(slow, y)
	}
	for trial := range 5 {
		src, dst := 2001+2*trial, 2002+2*trial
		code := fmt.Sprintf("RACE%d", trial)
		mustPutAll(t, db, []*node.Case{plainCase(code, src, "THA", "woman")})
		if err := db.Charge(ctx, "org-x", []int{src}, amount(t, 1, 0), caps); err != nil {
			t.Fatal(err)
		}
		if err := db.Charge(ctx, "org-y", []int{dst}, amount(t, 0.5, 0), caps); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- db.Charge(ctx, "org-y", append([]int{dst}, slow...), amount(t, 1, 0), caps) }()
		runtime.Gosched()
		mustPutAll(t, db, []*node.Case{plainCase(code, dst, "THA", "woman")})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		sp := mustSpending(t, db)
		// In either order D ends at 1.5 (charge, then move: max(1, 1.5)) or
		// 2 (move, then charge: max(1, 0.5) + 1).
		if got, least := sp.Node[dst], amount(t, 1.5, 0); got.Epsilon < least.Epsilon || got.Epsilon < sp.Orgs["org-y"][dst].Epsilon {
			t.Fatalf("trial %d: node-wide %d spent %v after a move from %d and a concurrent charge, want at least %v and at least org-y's %v (a charge was lost)",
				trial, dst, got, src, least, sp.Orgs["org-y"][dst])
		}
	}
}

// TestAnswerBudget_CacheEpoch checks the answer cache: the same question in
// the same epoch returns the stored answer at no cost; in the next epoch it
// is answered and charged again; another ε is another question.
func TestAnswerBudget_CacheEpoch(t *testing.T) {
	db := budgetStore(t)
	p := node.DefaultPolicy()
	clk := newTestClock(p.Epoch)
	s := newAnswerService(db, p, clk)
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY citizenship")
	cost := amount(t, p.DefaultEpsilon, 0)
	spent := func() privacy.Amount { return mustSpending(t, db).Orgs[answerOrg][2020] }

	first := mustAnswer(t, s, &node.AnswerRequest{Query: q})
	if first.Cached || first.Charged != cost || spent() != cost {
		t.Fatalf("first: got cached %v charged %v spent %v, want a new answer charged %v", first.Cached, first.Charged, spent(), cost)
	}
	clk.Advance(p.Epoch / 2) // still the same epoch
	again := mustAnswer(t, s, &node.AnswerRequest{Query: q})
	if !again.Cached || again.Charged != (privacy.Amount{}) || spent() != cost {
		t.Fatalf("same epoch: got cached %v charged %v spent %v, want the cached answer at no cost (spent %v)", again.Cached, again.Charged, spent(), cost)
	}
	if !reflect.DeepEqual(again.Table.Cells, first.Table.Cells) {
		t.Fatal("same epoch: got another table, want the cached one")
	}
	other := mustAnswer(t, s, &node.AnswerRequest{Query: q, Epsilon: 0.25})
	if other.Cached || spent() != cost.Add(amount(t, 0.25, 0)) {
		t.Fatalf("another ε: got cached %v spent %v, want a new answer charged", other.Cached, spent())
	}
	clk.Advance(p.Epoch / 2) // the next epoch
	next := mustAnswer(t, s, &node.AnswerRequest{Query: q})
	if next.Cached || next.Charged != cost || spent() != cost.Add(cost).Add(amount(t, 0.25, 0)) {
		t.Fatalf("next epoch: got cached %v charged %v spent %v, want a new answer charged %v", next.Cached, next.Charged, spent(), cost)
	}
	if next.Table.Epoch != first.Table.Epoch+1 {
		t.Errorf("next epoch: got epoch %d, want %d", next.Table.Epoch, first.Table.Epoch+1)
	}
}

// TestAnswerBudget_CacheClockBehind checks that the answer cache keeps an
// answer until its epoch ends by the service's clock (QueryService.Now),
// not by the wall clock: with a clock three epochs behind, the same question
// in the same epoch is still served from the cache at no cost.
func TestAnswerBudget_CacheClockBehind(t *testing.T) {
	db := budgetStore(t)
	p := node.DefaultPolicy()
	clk := newTestClock(p.Epoch)
	clk.Advance(-3 * p.Epoch)
	s := newAnswerService(db, p, clk)
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2021")
	mustAnswer(t, s, &node.AnswerRequest{Query: q})
	again := mustAnswer(t, s, &node.AnswerRequest{Query: q})
	if !again.Cached || again.Charged != (privacy.Amount{}) {
		t.Fatalf("same epoch: got cached %v charged %v, want the cached answer at no cost", again.Cached, again.Charged)
	}
}

// TestAnswerBudget_DryRun checks that a dry run charges nothing, caches
// nothing and reports what the query would charge, or the refusal it would
// meet.
func TestAnswerBudget_DryRun(t *testing.T) {
	ctx := context.Background()
	db := budgetStore(t)
	p := node.DefaultPolicy()
	p.Caps = capsOf(t, 8, 1, 1)
	s := newAnswerService(db, p, newTestClock(p.Epoch))
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2021 GROUP BY gender")

	dry := mustAnswer(t, s, &node.AnswerRequest{Query: q, Epsilon: 0.6, DryRun: true})
	if !dry.DryRun || dry.Table != nil || dry.Charged != amount(t, 0.6, 0) || !slices.Equal(dry.Years, []int{2020, 2021}) {
		t.Fatalf("got dry run %v table %v charged %v years %v, want a dry run reporting 0.6 on 2020–2021 without a table",
			dry.DryRun, dry.Table != nil, dry.Charged, dry.Years)
	}
	if sp := mustSpending(t, db); len(sp.Node) != 0 || len(sp.Orgs) != 0 {
		t.Fatalf("a dry run charged %+v, want nothing", sp)
	}
	answered := mustAnswer(t, s, &node.AnswerRequest{Query: q, Epsilon: 0.6})
	if answered.Cached || answered.Charged != amount(t, 0.6, 0) {
		t.Fatalf("after a dry run: got cached %v charged %v, want a new answer charged 0.6 (the dry run cached nothing)", answered.Cached, answered.Charged)
	}
	before := mustSpending(t, db)
	_, err := s.Answer(ctx, &node.AnswerRequest{Query: q, Epsilon: 0.5, DryRun: true})
	var ce *privacy.CapError
	if node.KindOf(err) != node.BudgetExhausted || !errors.As(err, &ce) || ce.Cap != privacy.CapOrg {
		t.Fatalf("dry run over the organisation cap: got %v, want %v naming the %s cap", err, node.BudgetExhausted, privacy.CapOrg)
	}
	if after := mustSpending(t, db); !reflect.DeepEqual(after, before) {
		t.Errorf("spending: got %+v after a refused dry run, want %+v", after, before)
	}
}

// TestAnswerBudget_Concurrent runs 1 000 queries at once (4 organisations,
// 4 year ranges, each with its own ε so that the cache absorbs none)
// against a small budget, with synced writes as in production: the
// successful charges never add up to more than a cap, and the ledger holds
// exactly their sum.
func TestAnswerBudget_Concurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := openAnswerDB(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	mustPutAll(t, db, []*node.Case{plainCase("K1", 2020, "THA", "woman"), plainCase("K2", 2021, "MMR", "man")})
	p := node.DefaultPolicy()
	p.Caps = capsOf(t, 3, 1.5, 1)
	s := newAnswerService(db, p, newTestClock(p.Epoch))
	orgs := []string{"org-a", "org-b", "org-c", "org-d"}
	queries := []*node.Query{
		mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender"),
		mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2021"),
		mustQuery(t, "SELECT SUM(age) FROM cases WHERE registration_year = 2021 GROUP BY citizenship"),
		mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY gender"),
	}
	const n = 1000
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		start   = make(chan struct{})
		nodeSum = map[int]privacy.Micro{}
		orgSum  = map[string]map[int]privacy.Micro{}
		ok, bad int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			org := orgs[i%len(orgs)]
			req := &node.AnswerRequest{Query: queries[(i/len(orgs))%len(queries)], Org: org, Epsilon: 0.05 + float64(i)*1e-6}
			a, err := s.Answer(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if node.KindOf(err) != node.BudgetExhausted {
					t.Errorf("query %d: got %v, want an answer or %v", i, err, node.BudgetExhausted)
				}
				bad++
				return
			}
			if a.Cached {
				t.Errorf("query %d: got a cached answer, want a new one (its ε is its own)", i)
			}
			ok++
			if orgSum[org] == nil {
				orgSum[org] = map[int]privacy.Micro{}
			}
			for _, y := range a.Years {
				nodeSum[y] += a.Charged.Epsilon
				orgSum[org][y] += a.Charged.Epsilon
			}
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d queries: %d answered, %d refused", n, ok, bad)
	if ok == 0 || bad == 0 {
		t.Fatalf("got %d answered and %d refused, want both (a small budget)", ok, bad)
	}
	sp := mustSpending(t, db)
	full := false
	for y, e := range nodeSum {
		if e > p.Caps.NodePerYear.Epsilon {
			t.Errorf("node-wide %d: answers charged %v in all, above the cap %v", y, e, p.Caps.NodePerYear.Epsilon)
		}
		if got := sp.Node[y].Epsilon; got != e {
			t.Errorf("node-wide %d: ledger holds %v, want the answers' sum %v", y, got, e)
		}
		full = full || p.Caps.NodePerYear.Epsilon-e < amount(t, 0.051, 0).Epsilon
	}
	for org, years := range orgSum {
		for y, e := range years {
			if e > p.Caps.OrgPerYear.Epsilon {
				t.Errorf("%s %d: answers charged %v in all, above the cap %v", org, y, e, p.Caps.OrgPerYear.Epsilon)
			}
			if got := sp.Orgs[org][y].Epsilon; got != e {
				t.Errorf("%s %d: ledger holds %v, want the answers' sum %v", org, y, got, e)
			}
		}
	}
	if len(sp.Node) != len(nodeSum) {
		t.Errorf("node-wide: ledger has %d years, want %d", len(sp.Node), len(nodeSum))
	}
	for org, years := range sp.Orgs {
		if len(years) != len(orgSum[org]) {
			t.Errorf("%s: ledger has %d years, want %d", org, len(years), len(orgSum[org]))
		}
	}
	if !full {
		t.Error("no year's node-wide budget was used up, want the queries to reach the cap")
	}
}

// killDirEnv names the node directory of TestAnswerBudget_KilledAfterCharge's
// child process.
const killDirEnv = "CTFED_ANSWER_TEST_KILL_DIR"

// TestAnswerBudget_KilledAfterCharge kills a process between the charge and
// the answer and checks that the charge is on disk: the test runs itself
// again as a child that answers a query with AfterCharge printing "charged"
// and waiting; the parent kills it with SIGKILL on that line, reopens the
// store, finds the charge, and the same question is answered anew (nothing
// was cached) and charged again.
func TestAnswerBudget_KilledAfterCharge(t *testing.T) {
	ctx := context.Background()
	q := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	if dir := os.Getenv(killDirEnv); dir != "" {
		db, err := openAnswerDB(dir, true)
		if err != nil {
			t.Fatal(err)
		}
		p := node.DefaultPolicy()
		s := newAnswerService(db, p, newTestClock(p.Epoch))
		s.AfterCharge = func() {
			fmt.Println("charged")
			io.Copy(io.Discard, os.Stdin) // until the parent kills us
			os.Exit(3)
		}
		_, err = s.Answer(ctx, &node.AnswerRequest{Query: q})
		t.Fatalf("the child answered (%v), want it killed after the charge", err)
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	db, err := openAnswerDB(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	mustPutAll(t, db, []*node.Case{plainCase("K1", 2020, "THA", "woman")})
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestAnswerBudget_KilledAfterCharge$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	charged := make(chan bool, 1)
	var out strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "charged" {
				charged <- true
				io.Copy(io.Discard, stdout)
				return
			}
		}
		charged <- false
	}()
	select {
	case ok := <-charged:
		if !ok {
			cmd.Wait()
			t.Fatalf("the child ended without charging:\n%s%s", &out, &stderr)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child did not charge within 2 minutes:\n%s", &stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v, want killed by SIGKILL", err)
	}

	db = MustOpenAnswerDB(t, dir)
	p := node.DefaultPolicy()
	cost := amount(t, p.DefaultEpsilon, 0)
	sp := mustSpending(t, db)
	if got := sp.Node[2020]; got != cost {
		t.Fatalf("node-wide 2020 after the kill: got %v, want the charge %v", got, cost)
	}
	if got := sp.Orgs[answerOrg][2020]; got != cost {
		t.Fatalf("%s 2020 after the kill: got %v, want the charge %v", answerOrg, got, cost)
	}
	s := newAnswerService(db, p, newTestClock(p.Epoch))
	a := mustAnswer(t, s, &node.AnswerRequest{Query: q})
	if a.Cached || a.Charged != cost {
		t.Fatalf("after the kill: got cached %v charged %v, want a new answer charged %v", a.Cached, a.Charged, cost)
	}
	if got := mustSpending(t, db).Node[2020]; got != cost.Add(cost) {
		t.Errorf("node-wide 2020: got %v, want both charges %v", got, cost.Add(cost))
	}
}

// TestAnswerRefusalDataIndependent runs the same requests, in the same
// order, against an empty store and a full one: each is accepted or refused
// identically, with the same error kind and text, the same charge and the
// same years, and the ledgers end equal.
func TestAnswerRefusalDataIndependent(t *testing.T) {
	empty := MustOpenAnswerDB(t, t.TempDir())
	full := MustOpenAnswerDB(t, t.TempDir())
	var cases []*node.Case
	rows := rowCodes()
	for i := range 3000 {
		c := plainCase(fmt.Sprintf("F%05d", i), 2015+i%10, rows[i%17], node.ListGender.Values()[i%4])
		c.Age = node.IntPtr(i % 90)
		c.ExploitationTypes = node.ListExploitation.Values()[i%9 : i%9+1]
		cases = append(cases, c)
	}
	mustPutAll(t, full, cases)

	p := node.DefaultPolicy()
	p.MaxCells = 600
	p.Caps = capsOf(t, 2, 1.5, 1)
	clk := newTestClock(p.Epoch)
	sEmpty, sFull := newAnswerService(empty, p, clk), newAnswerService(full, p, clk)

	y2020 := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	all := mustQuery(t, "SELECT COUNT(*) FROM cases GROUP BY exploitation_type")
	big := mustQuery(t, "SELECT COUNT(*) FROM cases WHERE registration_year = 2021 GROUP BY citizenship, gender")
	sum := mustQuery(t, "SELECT SUM(age) FROM cases WHERE registration_year = 2021 GROUP BY gender")
	median := mustQuery(t, "SELECT QUANTILE(age, 0.5) FROM cases WHERE registration_year BETWEEN 2022 AND 2023")
	other := *y2020
	other.Codebook = "ctdc-0"
	for i, r := range []node.AnswerRequest{
		{Query: y2020, Org: "org-a", Epsilon: 0.5},
		{Query: y2020, Org: "org-a", Epsilon: 0.5}, // cached
		{Query: y2020, Org: "org-a", Epsilon: 1.5}, // per-query cap
		{Query: y2020, Org: "org-a", Epsilon: 0.9},
		{Query: y2020, Org: "org-a", Epsilon: 0.2}, // organisation cap
		{Query: y2020, Org: "org-b", Epsilon: 0.7}, // node-wide cap
		{Query: y2020, Org: "org-b", Epsilon: 0.6},
		{Query: y2020, Org: "org-b", Epsilon: 1e-6}, // node-wide cap, by one micro-unit
		{Query: all, Org: "org-c", Epsilon: 0.1},    // node-wide cap for 2020 only
		{Query: all, Org: "org-c", Epsilon: 0.1, DryRun: true},
		{Query: sum, Org: "org-c", Epsilon: 0.4, DryRun: true},
		{Query: sum, Org: "org-c", Epsilon: 1},
		{Query: sum, Org: "org-c", Epsilon: 1, DryRun: true}, // cached: a dry run of a cached answer
		{Query: median, Org: "org-d", Epsilon: 0.8},
		{Query: median, Org: "org-d", Epsilon: 0.8, Mechanism: "gaussian"},
		{Query: median, Org: "org-d", Mechanism: "gaussian", Delta: 2e-5}, // per-query δ cap
		{Query: big, Org: "org-d"},                                        // max_cells
		{Query: &other, Org: "org-d"},                                     // another codebook
		{Query: y2020, Org: "org-d", Delta: 1e-6},                         // δ with Laplace
		{Query: y2020, Org: "org-d", Epsilon: -1},
		{Query: y2020, Org: "org-d", Mechanism: "cauchy"},
		{Query: nil, Org: "org-d"},
	} {
		re, rf := r, r
		ae, errE := sEmpty.Answer(context.Background(), &re)
		af, errF := sFull.Answer(context.Background(), &rf)
		what := fmt.Sprintf("request %d", i)
		if r.Query != nil {
			what += " (" + r.Query.Canonical() + ")"
		}
		switch {
		case (errE == nil) != (errF == nil):
			t.Errorf("%s: empty store got %v, full store got %v; want the same", what, errE, errF)
		case errE != nil:
			if node.KindOf(errE) != node.KindOf(errF) || errE.Error() != errF.Error() {
				t.Errorf("%s: empty store got %v %q, full store got %v %q; want the same", what, node.KindOf(errE), errE, node.KindOf(errF), errF)
			}
			t.Logf("%s: refused on both: %v", what, errE)
		default:
			if ae.Charged != af.Charged || !slices.Equal(ae.Years, af.Years) || ae.Cached != af.Cached || ae.DryRun != af.DryRun {
				t.Errorf("%s: empty store got charged %v years %v cached %v, full store got %v %v %v; want the same",
					what, ae.Charged, ae.Years, ae.Cached, af.Charged, af.Years, af.Cached)
			}
		}
	}
	if a, b := mustSpending(t, empty), mustSpending(t, full); !reflect.DeepEqual(a, b) {
		t.Errorf("ledgers: empty store %+v, full store %+v; want the same", a, b)
	}
}
