package storage_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/storage"
)

// The answer tests (answer_*_test.go) run ctfed's whole answer path: a real
// storage.DB (badger, the columnar projection, the ledger and the answer
// cache) behind a node.QueryService, released with node.Combine. They use
// only the storage package's exported API.

// answerOrg is the node's own organisation in the answer tests.
const answerOrg = "org-own"

// dpAudit reports whether CTFED_DP_AUDIT is set (make dp-audit): the
// statistical tests then take about 10 times as many draws.
func dpAudit() bool { return os.Getenv("CTFED_DP_AUDIT") != "" }

// auditDraws returns n, times 10 under CTFED_DP_AUDIT.
func auditDraws(n int) int {
	if dpAudit() {
		return 10 * n
	}
	return n
}

// MustOpenAnswerDB opens the store of node directory dir (creating an
// insecure keyring there if it has none) with small badger settings, and
// closes it at the end of the test.
func MustOpenAnswerDB(tb testing.TB, dir string) *storage.DB {
	tb.Helper()
	db, err := openAnswerDB(dir, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// openAnswerDB opens dir's store; sync makes every commit wait for fsync,
// as in production.
func openAnswerDB(dir string, sync bool) (*storage.DB, error) {
	kr, err := storage.OpenKeyring(dir, nil)
	if node.KindOf(err) == node.NotFound {
		kr, _, err = storage.CreateKeyring(dir, nil, true)
	}
	if err != nil {
		return nil, err
	}
	db := storage.NewDB(dir, kr)
	db.SyncWrites = sync
	db.MemTableSize = 16 << 20
	db.NumMemtables = 2
	db.ValueLogFileSize = 16 << 20
	db.BlockCacheSize = 1 << 20
	db.IndexCacheSize = 1 << 20
	if err := db.Open(context.Background()); err != nil {
		return nil, err
	}
	return db, nil
}

// testClock is a settable clock for QueryService.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newTestClock starts at the beginning of the current epoch of length
// epoch.
func newTestClock(epoch time.Duration) *testClock {
	return &testClock{t: time.Now().Truncate(epoch)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newAnswerService returns a QueryService over db with policy p, the
// node's own organisation answerOrg and clock c.
func newAnswerService(db *storage.DB, p node.Policy, c *testClock) *node.QueryService {
	return &node.QueryService{
		Codebook:   db.Codebook,
		Aggregator: db,
		Ledger:     db,
		Policy:     p,
		Org:        answerOrg,
		Now:        c.Now,
	}
}

// hugeCaps are caps no statistical test reaches.
func hugeCaps() privacy.Caps {
	big := privacy.Amount{Epsilon: 1e12, Delta: 1e5}
	return privacy.Caps{NodePerYear: big, OrgPerYear: big, PerQuery: big}
}

// statPolicy is the default policy with caps no statistical test reaches.
func statPolicy() node.Policy {
	p := node.DefaultPolicy()
	p.Caps = hugeCaps()
	return p
}

// mustQuery parses sql in the default codebook.
func mustQuery(tb testing.TB, sql string) *node.Query {
	tb.Helper()
	q, err := node.ParseSQL(node.DefaultCodebook(), sql)
	if err != nil {
		tb.Fatalf("parse %q: %v", sql, err)
	}
	return q
}

// mustPutAll writes cases in batches of storage.MaxBatch.
func mustPutAll(tb testing.TB, db *storage.DB, cases []*node.Case) {
	tb.Helper()
	for from := 0; from < len(cases); from += storage.MaxBatch {
		to := min(from+storage.MaxBatch, len(cases))
		if _, err := db.PutCases(context.Background(), cases[from:to], node.Upsert, "answer-test"); err != nil {
			tb.Fatal(err)
		}
	}
}

// plainCase returns a consenting case without identity, registered in
// year, with citizenship and gender set.
func plainCase(code string, year int, citizenship, gender string) *node.Case {
	return &node.Case{
		Code:             code,
		RegistrationDate: node.Date(fmt.Sprintf("%d-06-15", year)),
		Citizenship:      citizenship,
		Gender:           gender,
		Consent:          "yes",
	}
}

// mustAnswer answers req and fails the test on error.
func mustAnswer(tb testing.TB, s *node.QueryService, req *node.AnswerRequest) *node.Answer {
	tb.Helper()
	a, err := s.Answer(context.Background(), req)
	if err != nil {
		tb.Fatalf("answer %s: %v", req.Query.Canonical(), err)
	}
	return a
}

// mustExact returns the exact table of q.
func mustExact(tb testing.TB, s *node.QueryService, q *node.Query) *node.ExactTable {
	tb.Helper()
	t, err := s.Exact(context.Background(), q)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// mustCombine releases one node's table with the release rule.
func mustCombine(tb testing.TB, s *node.QueryService, t *node.NoisyTable) []node.ResultCell {
	tb.Helper()
	cells, _, err := node.Combine(s.Codebook, t.Query, []*node.NoisyTable{t}, s.Policy.MinCellSize, s.Combiner())
	if err != nil {
		tb.Fatal(err)
	}
	return cells
}

// mustSpending returns db's spending.
func mustSpending(tb testing.TB, db *storage.DB) *node.Spending {
	tb.Helper()
	sp, err := db.Spending(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return sp
}
