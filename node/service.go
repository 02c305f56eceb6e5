package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/privacy"
)

// Policy is a node's privacy policy for statistical answers.
type Policy struct {
	// MinCellSize is the release rule's minimum noisy count.
	MinCellSize int
	// MaxCells is the most cells one query may ask for.
	MaxCells int
	// DefaultEpsilon is the ε of a query that asks for none.
	DefaultEpsilon float64
	// GaussianDelta is the δ of a Gaussian query that asks for none.
	GaussianDelta float64
	// Mechanism is the noise of a query that names none.
	Mechanism privacy.Mechanism
	// Caps are the budget's caps.
	Caps privacy.Caps
	// CountWithoutConsent lets cases without consent to statistical use
	// count in answers. By default they do not.
	CountWithoutConsent bool
	// Epoch is the length of an answer-cache epoch, on a fixed clock from
	// the Unix epoch.
	Epoch time.Duration
	// Remote is the policy for queries from other members.
	Remote RemotePolicy
}

// DefaultPolicy returns DESIGN.md's defaults.
func DefaultPolicy() Policy {
	return Policy{
		MinCellSize:    privacy.DefaultMinCellSize,
		MaxCells:       DefaultMaxCells,
		DefaultEpsilon: privacy.DefaultQueryEpsilon,
		GaussianDelta:  privacy.DefaultGaussianDelta,
		Mechanism:      privacy.Laplace,
		Caps:           privacy.DefaultCaps(),
		Epoch:          24 * time.Hour,
	}
}

// QueryService answers statistical questions about the node's own cases: exact
// tables for the node's own staff, and differentially private tables for
// anyone, charged to the asker's budget. Fill the exported fields, then use
// it; it is safe for concurrent use.
type QueryService struct {
	Codebook   *Codebook
	Aggregator Aggregator
	Ledger     Ledger
	Approvals  ApprovalStore
	Audit      AuditLog
	Policy     Policy
	// Org is the node's own organisation: the querier of local answers.
	Org    string
	Logger *zap.Logger
	// Now reads the clock; time.Now by default.
	Now func() time.Time
	// AfterCharge, when set, is called after a charge is on disk and before
	// any noise is drawn. Tests use it to kill the process there.
	AfterCharge func()

	locks keyedMutex
	comb  *privacy.Combiner
	once  sync.Once
}

// AnswerRequest is a request for a private answer.
type AnswerRequest struct {
	Query *Query
	// Org is the querier organisation charged; empty is the node's own.
	Org string
	// Epsilon and Delta asked; zero takes the policy's defaults.
	Epsilon, Delta float64
	// Mechanism asked: "laplace", "gaussian" or empty for the policy's.
	Mechanism string
	// DryRun reports what the query would charge and changes nothing.
	DryRun bool
}

// Answer is a private answer: the noisy table, what it charged and the
// years charged. A cached answer charged nothing.
type Answer struct {
	Table   *NoisyTable
	Cost    privacy.Amount
	Charged privacy.Amount
	Years   []int
	Cached  bool
	DryRun  bool
}

func (s *QueryService) init() {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = zap.NewNop()
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		s.comb = privacy.NewCombiner()
	})
}

// Combiner returns the service's combiner, for releasing its answers.
func (s *QueryService) Combiner() *privacy.Combiner { s.init(); return s.comb }

// spec resolves the ε, δ and mechanism of a request against the policy.
func (s *QueryService) spec(req *AnswerRequest) (privacy.Mechanism, float64, float64, error) {
	const op = "answer"
	mech := s.Policy.Mechanism
	if req.Mechanism != "" {
		m, err := privacy.ParseMechanism(req.Mechanism)
		if err != nil {
			return 0, 0, 0, E(op, Invalid, "%v", err)
		}
		mech = m
	}
	eps := req.Epsilon
	if eps == 0 {
		eps = s.Policy.DefaultEpsilon
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		return 0, 0, 0, E(op, Invalid, "ε must be a positive number (got %v)", req.Epsilon)
	}
	delta := req.Delta
	switch mech {
	case privacy.Laplace:
		if delta != 0 {
			return 0, 0, 0, E(op, Invalid, "the Laplace mechanism spends no δ: leave δ at 0 or ask for the Gaussian mechanism")
		}
	case privacy.Gaussian:
		if delta == 0 {
			delta = s.Policy.GaussianDelta
		}
		if !(delta > 0 && delta < 1) {
			return 0, 0, 0, E(op, Invalid, "δ must be between 0 and 1 (got %v)", req.Delta)
		}
	}
	return mech, eps, delta, nil
}

// l0 returns the most cells one case reaches in q after bounding: the
// product of the L0 of each multi-valued GROUP BY dimension.
func (s *QueryService) l0(q *Query) int64 {
	l0 := int64(1)
	for _, g := range q.GroupBy {
		if d, ok := s.Codebook.Dimension(g); ok && d.Multi {
			l0 *= int64(d.L0)
		}
	}
	return l0
}

// epoch returns the current answer-cache epoch and when it ends.
func (s *QueryService) epoch() (int64, time.Time) {
	n := s.Now().UnixNano()
	e := n / int64(s.Policy.Epoch)
	return e, time.Unix(0, (e+1)*int64(s.Policy.Epoch))
}

// cacheKey names an answer in the cache: the canonical query at its
// codebook version, ε, δ, mechanism, L0, the measure's bounds, the consent
// rule and the epoch. Equal keys are the same release.
func (s *QueryService) cacheKey(q *Query, mech privacy.Mechanism, cost privacy.Amount, l0 int64, epoch int64) string {
	var b strings.Builder
	b.WriteString(q.Codebook)
	b.WriteByte(0)
	b.WriteString(q.Canonical())
	fmt.Fprintf(&b, "\x00%s\x00%d\x00%d\x00%d\x00%v\x00%d", mech, cost.Epsilon, cost.Delta, l0, s.Policy.CountWithoutConsent, epoch)
	if m, ok := s.Codebook.Measure(q.Measure.Field); ok {
		fmt.Fprintf(&b, "\x00%d\x00%d", m.Lo, m.Hi)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return strconv.FormatInt(epoch, 10) + "/" + hex.EncodeToString(sum[:16])
}

// Answer answers req with a differentially private table. Whether it is
// refused, and every error, depends only on the query, the policy and the
// budget, never on the data. The charge is on disk before any noise is
// drawn; the same question in the same epoch returns the stored answer at no
// cost. Returns Invalid for a bad query or parameters, BudgetExhausted
// naming the cap that would be exceeded (nothing is charged).
func (s *QueryService) Answer(ctx context.Context, req *AnswerRequest) (*Answer, error) {
	const op = "answer"
	s.init()
	q := req.Query
	if q == nil {
		return nil, E(op, Invalid, "no query")
	}
	if q.Codebook != s.Codebook.Version {
		return nil, E(op, Invalid, "the query is for codebook %s; this node answers in codebook %s", q.Codebook, s.Codebook.Version)
	}
	if err := q.Check(s.Codebook, s.Policy.MaxCells); err != nil {
		return nil, err
	}
	mech, eps, delta, err := s.spec(req)
	if err != nil {
		return nil, err
	}
	cost, err := privacy.ToAmount(eps, delta)
	if err != nil {
		return nil, E(op, Invalid, "%v", err)
	}
	org := req.Org
	if org == "" {
		org = s.Org
	}
	caps := s.Policy.Caps
	if a, ok := s.Policy.Remote.Allocations[org]; ok {
		caps.OrgPerYear = a
	}
	years := q.Years(s.Codebook)
	l0 := s.l0(q)
	epoch, end := s.epoch()
	key := s.cacheKey(q, mech, cost, l0, epoch)
	ans := &Answer{Cost: cost, Years: years, DryRun: req.DryRun}

	unlock := s.locks.lock(key)
	defer unlock()
	cached, ok, err := s.Ledger.CachedAnswer(ctx, key)
	if err != nil {
		return nil, err
	}
	if ok {
		ans.Table, ans.Cached = cached, true
		return ans, nil
	}
	if req.DryRun {
		if err := s.Ledger.CheckCharge(ctx, org, years, cost, caps); err != nil {
			return nil, err
		}
		ans.Charged = cost
		return ans, nil
	}
	if err := ctx.Err(); err != nil {
		// Past its deadline: refused before anything is charged.
		return nil, E(op, Unavailable, "%w", err)
	}
	if err := s.Ledger.Charge(ctx, org, years, cost, caps); err != nil {
		return nil, err
	}
	ans.Charged = cost
	if s.AfterCharge != nil {
		s.AfterCharge()
	}
	exact, err := s.Aggregator.Aggregate(q, AggregateOptions{ConsentOnly: !s.Policy.CountWithoutConsent, Bound: true, MaxCells: s.Policy.MaxCells})
	if err != nil {
		return nil, err
	}
	t, err := s.noise(exact, privacy.Spec{Mechanism: mech, Epsilon: eps, Delta: delta, L0: l0, LInf: 1})
	if err != nil {
		return nil, E(op, Internal, "%w", err)
	}
	t.Epoch = epoch
	// The answer is kept until its epoch ends (and a little longer, so a
	// request at the boundary finds it), then badger drops it.
	if err := s.Ledger.CacheAnswer(ctx, key, t, end.Sub(s.Now())+time.Minute); err != nil {
		s.Logger.Warn("answer not cached", zap.Error(err))
	}
	ans.Table = t
	return ans, nil
}

// noise turns an exact table into a noisy one with s: every cell of the
// domain, whatever its count. The exact table is not kept.
func (s *QueryService) noise(exact *ExactTable, spec privacy.Spec) (*NoisyTable, error) {
	q := exact.Query
	t := &NoisyTable{Query: q, Domains: exact.Domains, Cells: make([]NoisyCell, len(exact.Cells)),
		Mechanism: spec.Mechanism, Epsilon: spec.Epsilon, Delta: spec.Delta, MinCellSize: s.Policy.MinCellSize}
	m, _ := s.Codebook.Measure(q.Measure.Field)
	for i, c := range exact.Cells {
		nc := &t.Cells[i]
		var err error
		switch q.Measure.Func {
		case FuncCount:
			nc.Count, err = privacy.NoisyCount(c.Count, spec)
		case FuncSum, FuncAvg:
			sp := spec
			sp.LInf = privacy.SumLInf(m.Lo, m.Hi)
			var sum privacy.Estimate
			sum, nc.Count, err = privacy.NoisySumAndCount(c.Sum, c.Count, sp)
			nc.Sum = &sum
		case FuncQuantile:
			var h privacy.Hist
			nc.Count, h, err = privacy.NoisyCountAndHistogram(c.Count, c.Hist, spec)
			nc.Hist = &h
		default:
			err = fmt.Errorf("unknown measure %s", q.Measure.Func)
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Exact returns the exact table of q over the node's cases, for the node's
// own staff. It is never cached and never leaves the node.
func (s *QueryService) Exact(ctx context.Context, q *Query) (*ExactTable, error) {
	s.init()
	if err := q.Check(s.Codebook, s.Policy.MaxCells); err != nil {
		return nil, err
	}
	return s.Aggregator.Aggregate(q, AggregateOptions{ConsentOnly: !s.Policy.CountWithoutConsent, MaxCells: s.Policy.MaxCells})
}

// BudgetLine is one row of the budget: what a querier organisation (or the
// node as a whole, Org empty) has spent on a registration year, and its cap.
type BudgetLine struct {
	Org   string         `json:"org,omitempty"`
	Year  int            `json:"year"`
	Spent privacy.Amount `json:"spent"`
	Cap   privacy.Amount `json:"cap"`
}

// Remaining returns what is left of the line's cap.
func (l BudgetLine) Remaining() privacy.Amount { return l.Cap.Sub(l.Spent) }

// Budget returns the budget's lines: node-wide per year, then each
// organisation per year, for every year anything was spent. With org set,
// only that organisation's lines (a querier sees only its own).
func (s *QueryService) Budget(ctx context.Context, org string) ([]BudgetLine, error) {
	sp, err := s.Ledger.Spending(ctx)
	if err != nil {
		return nil, err
	}
	var lines []BudgetLine
	if org == "" {
		for _, y := range s.Codebook.Years() {
			if a, ok := sp.Node[y]; ok {
				lines = append(lines, BudgetLine{Year: y, Spent: a, Cap: s.Policy.Caps.NodePerYear})
			}
		}
	}
	orgs := make([]string, 0, len(sp.Orgs))
	for o := range sp.Orgs {
		if org == "" || o == org {
			orgs = append(orgs, o)
		}
	}
	slices.Sort(orgs)
	for _, o := range orgs {
		cap := s.Policy.Caps.OrgPerYear
		if a, ok := s.Policy.Remote.Allocations[o]; ok {
			cap = a
		}
		for _, y := range s.Codebook.Years() {
			if a, ok := sp.Orgs[o][y]; ok {
				lines = append(lines, BudgetLine{Org: o, Year: y, Spent: a, Cap: cap})
			}
		}
	}
	return lines, nil
}

// keyedMutex serialises work on equal keys (an answer being computed and
// cached) while letting different keys run in parallel.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
