package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
	"github.com/ctfed/ctfed/node/web"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/storage"
)

// browserFederation is a small federation held in the test, as a
// web.Federation: contributor nodes, each a real store of synthetic cases
// with a node.QueryService that answers other members' queries under its
// own policy (the one the federation's nodes run), asked in process rather
// than over the network, their noisy tables combined by node.Combine as
// the federation's coordinator does. A member without a service never
// answers: it is reported as timed out.
type browserFederation struct {
	cb   *node.Codebook
	self node.Peer // this node, the querier
	comb *privacy.Combiner

	mu      sync.Mutex
	members []browserMember
	asked   []*node.QueryRequest
	results []*web.FederatedResult
}

type browserMember struct {
	web.Member
	svc *node.QueryService // nil: the node is down
}

// browserPeerIDs are the test federation's members' peer IDs (made up,
// in the shape of libp2p's).
var browserPeerIDs = []string{
	"12D3KooWLm4sQe8vHn2tY6cRb9xKd3fWj7pAz5gUo1iNv8rCh2Ek",
	"12D3KooWFp9aZk3nXw6tVc2mQy8rLs4dHe7bJu5gTo1iRv3nBx6D",
	"12D3KooWRt2vKx8mNb5cQz3wYh7pLf9sAd4gEu6jTo1kWc8nMv5H",
	"12D3KooWGc6yHs1qPw9tXn4mBz7vKr3dLf8aEj2uTo5iNc6bRv9Q",
	"12D3KooWJb8tNc3xQm6vYr1wKz9pHs4dLf7gAe2uTo5iRn3cMv8W",
}

// browserQuerier is the organisation whose node runs the web application
// in the federation tests.
var browserQuerier = node.Peer{PeerID: "12D3KooWQz7rTb3kX9mVh2cNf5LpW8yAe4dGs6uJ1nRtK3oBvXc", Org: "Regional Research Unit", Country: "AUT", Roles: []string{"querier"}}

func newBrowserFederation(self node.Peer) *browserFederation {
	return &browserFederation{cb: node.DefaultCodebook(), self: self, comb: privacy.NewCombiner()}
}

// addMember adds a contributor. With cases > 0 it runs a node of its own:
// a store of that many synthetic cases (seed) answering under policy,
// which adjust may change; with cases == 0 the node is down.
func (f *browserFederation) addMember(t *testing.T, org, country string, cases int, seed uint64, adjust func(*node.Policy)) {
	t.Helper()
	m := browserMember{Member: web.Member{
		PeerID: browserPeerIDs[len(f.members)%len(browserPeerIDs)], Org: org, Country: country,
		Roles: []string{"contributor"}, NotBefore: time.Now().AddDate(0, -1, 0), NotAfter: time.Now().AddDate(1, 0, 0), Status: "ok",
	}}
	if cases > 0 {
		db := web.MustOpenTestDB(t, zap.NewNop())
		seq, err := synth.Generate(cases, seed, "")
		if err != nil {
			t.Fatal(err)
		}
		var cs []*node.Case
		for c := range seq {
			cs = append(cs, c)
		}
		if _, err := db.PutCases(context.Background(), cs, node.CreateOnly, "setup"); err != nil {
			t.Fatal(err)
		}
		p := node.DefaultPolicy()
		p.Remote.AllowOrgs = []string{f.self.Org}
		if adjust != nil {
			adjust(&p)
		}
		m.svc = &node.QueryService{Codebook: f.cb, Aggregator: db, Ledger: db, Approvals: db, Audit: db, Policy: p, Org: org, Logger: zap.NewNop()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = append(f.members, m)
}

// Roster implements web.Federation.
func (f *browserFederation) Roster(ctx context.Context) (*web.Roster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	r := &web.Roster{Version: 7, IssuedAt: now.Add(-time.Hour), NextUpdate: now.Add(23 * time.Hour)}
	r.Members = append(r.Members, web.Member{PeerID: f.self.PeerID, Org: f.self.Org, Country: f.self.Country, Roles: f.self.Roles,
		NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(1, 0, 0), Status: "ok", Self: true})
	for _, m := range f.members {
		r.Members = append(r.Members, m.Member)
	}
	return r, nil
}

// Query implements web.Federation: every contributor is asked in turn.
func (f *browserFederation) Query(ctx context.Context, req *node.QueryRequest, timeout time.Duration) (*web.FederatedResult, error) {
	start := time.Now()
	if req.Query == nil {
		return nil, node.E("browserFederation.Query", node.Invalid, "no query")
	}
	r := *req
	f.mu.Lock()
	if r.ID == "" {
		r.ID = fmt.Sprintf("q-browser-%d", len(f.asked)+1)
	}
	f.asked = append(f.asked, &r)
	members := slices.Clone(f.members)
	f.mu.Unlock()

	res := &web.FederatedResult{QueryID: r.ID, Query: r.Query, SQL: r.Query.Canonical(), Epsilon: r.Epsilon, Delta: r.Delta, Mechanism: r.Mechanism}
	var tables []*node.NoisyTable
	for _, m := range members {
		cov := web.Coverage{PeerID: m.PeerID, Org: m.Org, Country: m.Country}
		switch {
		case m.svc == nil:
			cov.Status = "timed_out"
		default:
			ans, err := m.svc.AnswerQuery(ctx, f.self, &r)
			switch {
			case err != nil:
				k := node.KindOf(err)
				cov.Status, cov.Detail, cov.Message = "refused", node.ReasonOf(err), k.Message()
				switch k {
				case node.BudgetExhausted:
					cov.Reason = "budget"
				case node.Permission:
					cov.Reason = "permission"
				case node.Invalid:
					cov.Reason = "invalid"
				default:
					cov.Reason = "internal"
				}
			case ans.Status == node.StatusPending:
				cov.Status = "pending"
			default:
				cov.Status, cov.ChargedEpsilon, cov.ChargedDelta = "answered", ans.ChargedEpsilon, ans.ChargedDelta
				tables = append(tables, ans.Table)
			}
		}
		res.Coverage = append(res.Coverage, cov)
	}
	slices.SortFunc(res.Coverage, func(a, b web.Coverage) int { return strings.Compare(a.Org, b.Org) })
	cells, minSize, err := node.Combine(f.cb, r.Query, tables, privacy.DefaultMinCellSize, f.comb)
	if err != nil {
		return nil, err
	}
	res.Cells, res.MinCellSize, res.Answered, res.Elapsed = cells, minSize, len(tables), time.Since(start)
	f.mu.Lock()
	f.results = append(f.results, res)
	f.mu.Unlock()
	return res, nil
}

// last returns the last request asked and its result.
func (f *browserFederation) last() (*node.QueryRequest, *web.FederatedResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results) == 0 {
		return nil, nil
	}
	return f.asked[len(f.asked)-1], f.results[len(f.results)-1]
}

// The organisations of the test federation's contributors.
const (
	orgNepal    = "Shelter Network Nepal"
	orgThailand = "Anti-Trafficking Centre Thailand"
	orgRomania  = "Migrant Aid Romania"
	orgMoldova  = "Moldova Support Line"
	orgGhana    = "Ghana Helpline"
)

// newTestFederation is a federation of five contributors: two answer, one
// refuses (the querier's allocation there is spent), one holds queries for
// its operator's approval, one is down.
func newTestFederation(t *testing.T) *browserFederation {
	t.Helper()
	f := newBrowserFederation(browserQuerier)
	f.addMember(t, orgNepal, "NPL", 400, 31, nil)
	f.addMember(t, orgThailand, "THA", 400, 32, nil)
	f.addMember(t, orgRomania, "ROU", 200, 33, func(p *node.Policy) {
		p.Remote.Allocations = map[string]privacy.Amount{browserQuerier.Org: {Epsilon: privacy.MicroPerUnit / 10}}
	})
	f.addMember(t, orgMoldova, "MDA", 200, 34, func(p *node.Policy) { p.Remote.RequireApproval = true })
	f.addMember(t, orgGhana, "GHA", 0, 0, nil)
	return f
}

var consoleCountRE = regexp.MustCompile(`(\d+) cells? shown, (\d+) suppressed\.`)

// TestBrowserFederatedQuery: an analyst writes a query in the console of
// a small federation, with a purpose and ε; the page shows the released
// table (values with intervals, small cells suppressed) and the coverage
// (who answered, refused, waits for approval, timed out).
func TestBrowserFederatedQuery(t *testing.T) {
	var fed *browserFederation
	b := newBrowserEnv(t, 0, func(s *web.Server, db *storage.DB) {
		fed = newTestFederation(t)
		withQueryService(s, db)
		s.Federation = fed
		s.Approvals = db
	})
	start := time.Now()

	b.login(browserAnalyst, "/federation/query", "")
	if got := b.path(); got != "/federation/query" {
		b.fail("got %s after signing in, want the console asked for", got)
	}
	b.wantText("h1", "Federated query")
	const sql = "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2018 AND 2023 GROUP BY exploitation_type"
	const purpose = "Annual regional report: victims by type of exploitation"
	b.do("write the query",
		b.typeIn("#sql", sql),
		b.typeIn("#purpose", purpose),
		chromedp.Clear(chromedp.CSS("#epsilon")),
		b.typeIn("#epsilon", "1"),
		chromedp.Clear(chromedp.CSS("#timeout")),
		b.typeIn("#timeout", "20"),
	)
	b.shot("query-console-form", "")
	b.logWeight("the query console")
	resp := b.submit(`form[action="/federation/query"] button[type=submit]`, http.StatusOK)
	if !strings.Contains(resp.URL, "/federation/results/") {
		b.fail("got %s after running the query, want its result's page", resp.URL)
	}

	// What the federation was asked.
	req, res := fed.last()
	if req == nil {
		b.fail("got no query asked of the federation")
	}
	if req.Query.Canonical() != sql || req.Purpose != purpose || req.Epsilon != 1 {
		b.fail("got %q, %q, ε %g asked; want the console's %q, %q, ε 1", req.Query.Canonical(), req.Purpose, req.Epsilon, sql, purpose)
	}

	// The table: one row a cell, released or suppressed, as the result.
	released, suppressed := 0, 0
	for _, c := range res.Cells {
		if c.Suppressed != "" {
			suppressed++
		} else {
			released++
		}
	}
	if released == 0 {
		b.fail("got no cell released by the test federation: the table shows nothing")
	}
	m := consoleCountRE.FindStringSubmatch(b.text("section p.count"))
	if m == nil || m[1] != strconv.Itoa(released) || m[2] != strconv.Itoa(suppressed) {
		b.fail("got %q, want %d cells shown and %d suppressed", b.text("section p.count"), released, suppressed)
	}
	rows := b.texts("table.result tbody tr")
	if len(rows) != len(res.Cells) {
		b.fail("got %d rows, want one for each of the %d cells", len(rows), len(res.Cells))
	}
	if got := len(b.texts("table.result tbody td.none")); got != suppressed {
		b.fail("got %d suppressed cells in the table, want %d", got, suppressed)
	}
	if intervals := b.texts("table.result tbody td.num"); len(intervals) < 2*released {
		b.fail("got %d numbers in the table, want a value and an interval for each of %d cells", len(intervals), released)
	}

	// The coverage: every contributor, with its outcome.
	coverage := map[string]string{}
	for _, row := range b.tableRows("section table:not(.result) tbody tr") {
		if len(row) >= 3 {
			coverage[row[0]] = row[2]
		}
	}
	for org, want := range map[string]string{
		orgNepal: "answered", orgThailand: "answered", orgRomania: "refused", orgMoldova: "pending", orgGhana: "timed",
	} {
		if got := coverage[org]; !strings.Contains(strings.ToLower(got), want) {
			b.fail("got %s's outcome %q, want %q (coverage %q)", org, got, want, coverage)
		}
	}
	if res.Count("answered") != 2 || res.Answered != 2 {
		b.fail("got %d answered, want 2", res.Answered)
	}
	// A query pending somewhere may be asked again under its ID.
	if got := b.texts(`form[action="/federation/query"] button.secondary`); len(got) != 1 || !strings.Contains(got[0], res.QueryID) {
		b.fail("got %q, want the button that asks again with query ID %s", got, res.QueryID)
	}
	b.shot("query-console", "query-console")
	b.logWeight("the query console with a result")
	t.Logf("federated query in the browser: %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowserApproveQuery: a query from another member waits in this
// node's approval queue; an admin reads it (who asks, what, why, at what
// cost) and approves it with one click; the querier, asking again under
// the same ID, gets the answer.
func TestBrowserApproveQuery(t *testing.T) {
	const hq = "Headquarters Statistics Office"
	querier := node.Peer{PeerID: "12D3KooWHd5rQx2mTc8vNb4zYw7kLp3sGf9aJe6uRo1iVn2cXt4M", Org: hq, Country: "BEL", Roles: []string{"querier"}}
	fed := newBrowserFederation(node.Peer{PeerID: "12D3KooWSb3nVx7mQc2tKz9wHr5pLf8dYe4gAu6jTo1iNc5bRv7P", Org: "Safe Harbour Belgium", Country: "BEL", Roles: []string{"contributor"}})
	b := newBrowserEnv(t, browserSeedCases, func(s *web.Server, db *storage.DB) {
		withQueryService(s, db)
		s.Query.Policy.Remote.AllowOrgs = []string{hq}
		s.Query.Policy.Remote.RequireApproval = true
		s.Federation = fed
		s.Approvals = db
	})
	ctx := context.Background()

	// The querier asks; the query waits.
	q, err := node.ParseSQL(b.srv.Codebook, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2019 AND 2023 GROUP BY gender")
	if err != nil {
		t.Fatal(err)
	}
	req := &node.QueryRequest{ID: "hq-2025-017", Query: q, Epsilon: 0.5, Purpose: "Gender breakdown for the 2025 global report on trafficking in persons"}
	ans, err := b.srv.Query.AnswerQuery(ctx, querier, req)
	if err != nil || ans.Status != node.StatusPending {
		t.Fatalf("got %+v, %v; want the query pending approval", ans, err)
	}
	pending, err := b.db.Approvals(ctx, node.ApprovalPending)
	if err != nil || len(pending) != 1 {
		t.Fatalf("got %d pending approvals (%v), want 1", len(pending), err)
	}
	id := pending[0].ID

	// The admin reads the queue.
	b.login(browserAdmin, "/federation/approvals", "")
	b.wantText("h1", "Approvals")
	items := b.texts("section.approval")
	if len(items) != 1 {
		b.fail("got %d queries waiting on the page, want 1", len(items))
	}
	for _, want := range []string{hq, req.Purpose, q.Canonical(), "ε 0.5", id} {
		if !strings.Contains(items[0], want) {
			b.fail("got the waiting query shown as\n%s\nwant %q in it", items[0], want)
		}
	}
	b.shot("approval-queue", "approval-queue")

	// One click.
	resp := b.submit(`section.approval button[name=decision][value=approve]`, http.StatusOK)
	if !strings.Contains(resp.URL, "/federation/approvals") {
		b.fail("got %s after approving, want the queue", resp.URL)
	}
	b.wantText(".notice", "is approved")
	if got := b.texts("section.approval"); len(got) != 0 {
		b.fail("got %d queries still waiting, want none", len(got))
	}
	decided := b.tableRows("table tbody tr")
	if len(decided) != 1 || decided[0][0] != id || !strings.Contains(decided[0][4], "approved by "+browserAdmin) {
		b.fail("got recently decided %q, want %s approved by %s", decided, id, browserAdmin)
	}
	b.shot("approval-queue-decided", "")

	// The decision is stored and audited, and the querier gets its answer.
	a, err := b.db.Approval(ctx, id)
	if err != nil || a.Status != node.ApprovalApproved || a.DecidedBy != browserAdmin {
		b.fail("got approval %+v (%v), want approved by %s", a, err, browserAdmin)
	}
	audited := false
	if err := b.db.AuditEntries(ctx, 0, func(e *node.AuditEntry) error {
		audited = audited || e.Actor == browserAdmin && e.Action == web.ActionQueryApprove && e.Subject == id
		return nil
	}); err != nil || !audited {
		b.fail("got no %s audit entry by %s for %s (%v)", web.ActionQueryApprove, browserAdmin, id, err)
	}
	ans, err = b.srv.Query.AnswerQuery(ctx, querier, req)
	if err != nil || ans.Status != node.StatusAnswered || ans.Table == nil {
		b.fail("got %+v, %v asking again, want the answer", ans, err)
	}
}
