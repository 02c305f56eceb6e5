package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// Federation is the node's part in a federation, as the federation pages
// use it; cmd/ctfed adapts the federation package's node and coordinator
// to it. A nil Server.Federation means the node is in no federation.
type Federation interface {
	// Roster returns the federation's members as this node's current
	// roster lists them, each with its status now. Returns Unavailable
	// when the node has no roster yet.
	Roster(ctx context.Context) (*Roster, error)
	// Query asks every current contributor req (an empty req.ID gets a
	// random one), waits at most timeout, and returns the combined,
	// released result with its coverage. Returns Invalid for a bad
	// request, Permission when this node is not a current member with the
	// querier role, Unavailable when the federation cannot be reached.
	Query(ctx context.Context, req *node.QueryRequest, timeout time.Duration) (*FederatedResult, error)
}

// Roster is the federation's membership as the node's current roster
// lists it: the roster's version, when it was issued and when the next
// one is due, and every member's certificate.
type Roster struct {
	Version    uint64    `json:"version"`
	IssuedAt   time.Time `json:"issued_at"`
	NextUpdate time.Time `json:"next_update"`
	Members    []Member  `json:"members"`
}

// Member is one certificate of the roster: the member's peer ID,
// organisation, country (ISO 3166-1 alpha-3), roles ("contributor",
// "querier"), validity, and Status now: "ok", "expired", "revoked" or
// "not_yet_valid". Self marks this node's own certificate.
type Member struct {
	PeerID    string    `json:"peer_id"`
	Org       string    `json:"org"`
	Country   string    `json:"country"`
	Roles     []string  `json:"roles"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Status    string    `json:"status"`
	Self      bool      `json:"self,omitempty"`
}

// FederatedResult is a federated query's released result: the combined
// cells (the release rule applied with MinCellSize), the query, its
// canonical SQL and the ε, δ and mechanism asked, how many contributors
// answered, the coverage of every contributor and how long it took. Its
// fields are federation.Result's; per-node tables are never part of it.
type FederatedResult struct {
	QueryID     string            `json:"query_id"`
	Query       *node.Query       `json:"query"`
	SQL         string            `json:"sql"`
	Epsilon     float64           `json:"epsilon"`
	Delta       float64           `json:"delta,omitempty"`
	Mechanism   string            `json:"mechanism,omitempty"`
	Cells       []node.ResultCell `json:"cells"`
	MinCellSize int               `json:"min_cell_size"`
	Answered    int               `json:"answered"`
	Coverage    []Coverage        `json:"coverage"`
	Elapsed     time.Duration     `json:"elapsed_ns"`
}

// Coverage is what became of a federated query at one contributor. Its
// fields are federation.Coverage's, in the same order, so one converts to
// the other: Status is "answered", "refused", "pending", "unreachable" or
// "timed_out"; Reason (refused only) "permission", "budget",
// "codebook_version", "invalid", "unavailable" or "internal"; Detail the
// node's fixed reason code (node.Reason…), if any; Message the fixed
// message of the node's error kind.
type Coverage struct {
	PeerID         string          `json:"peer_id"`
	Org            string          `json:"org"`
	Country        string          `json:"country"`
	Status         string          `json:"status"`
	Reason         string          `json:"reason,omitempty"`
	Detail         string          `json:"detail,omitempty"`
	Message        string          `json:"message,omitempty"`
	ChargedEpsilon float64         `json:"charged_epsilon,omitempty"`
	ChargedDelta   float64         `json:"charged_delta,omitempty"`
	AuditHead      *node.AuditHead `json:"audit_head,omitempty"`
}

// Count returns how many contributors ended in status.
func (r *FederatedResult) Count(status string) int {
	n := 0
	for _, c := range r.Coverage {
		if c.Status == status {
			n++
		}
	}
	return n
}

// Roles of the federation pages and API.
var (
	// operatorRoles run the node: roster, policy, budget, incoming
	// queries and approvals.
	operatorRoles = []node.Role{node.RoleAdmin}
	// querierRoles run federated queries.
	querierRoles = []node.Role{node.RoleAnalyst, node.RoleAdmin}
	// auditRoles read the audit log.
	auditRoles = []node.Role{node.RoleAuditor, node.RoleAdmin}
)

// Audit actions of the federation pages and API. The incoming-query log
// reads ActionQueryAnswer, which the federation writes.
const (
	ActionQueryApprove   = "query.approve"
	ActionQueryReject    = "query.reject"
	ActionFederatedQuery = "federation.query.run"
	ActionResultExport   = "federation.result.export"
	ActionQueryAnswer    = "federation.query.answer"
)

// Limits of the federation pages.
const (
	// maxIncoming is how many of the newest incoming queries the log
	// page reads.
	maxIncoming = 500
	// recentDecisions is how many decided approvals the queue shows.
	recentDecisions = 20
)

// federationRoutes registers the federation pages and the audit log page.
func (s *Server) federationRoutes(mux *http.ServeMux) {
	mux.Handle("GET /federation", s.page(s.fedIndex, querierRoles...))
	mux.Handle("GET /federation/roster", s.page(s.fedRoster, operatorRoles...))
	mux.Handle("GET /federation/policy", s.page(s.fedPolicy, operatorRoles...))
	mux.Handle("GET /federation/budget", s.page(s.fedBudget, operatorRoles...))
	mux.Handle("GET /federation/incoming", s.page(s.fedIncoming, operatorRoles...))
	mux.Handle("GET /federation/approvals", s.page(s.fedApprovals, operatorRoles...))
	mux.Handle("POST /federation/approvals/{id}", s.page(s.fedDecide, operatorRoles...))
	mux.Handle("GET /federation/query", s.page(s.fedConsole, querierRoles...))
	mux.Handle("POST /federation/query", s.page(s.fedRunQuery, querierRoles...))
	mux.Handle("GET /federation/results/{id}", s.page(s.fedResult, querierRoles...))
	mux.Handle("GET /audit", s.page(s.auditLog, auditRoles...))
}

// federationNav returns the main navigation's links to the federation
// pages and the audit log that p's role may use.
func federationNav(p *principal) []navLink {
	var out []navLink
	switch p.Role {
	case node.RoleAdmin:
		out = append(out, navLink{Href: "/federation", Label: "Federation"}, navLink{Href: "/audit", Label: "Audit log"})
	case node.RoleAnalyst:
		out = append(out, navLink{Href: "/federation/query", Label: "Federated query"})
	case node.RoleAuditor:
		out = append(out, navLink{Href: "/audit", Label: "Audit log"})
	}
	return out
}

// fedBase is what every federation page has: its section's links, and
// whether the node is in a federation.
type fedBase struct {
	Sub          []navLink
	NoFederation bool
}

// fedSub returns the federation section's links for p, current marked.
func fedSub(p *principal, current string) []navLink {
	var out []navLink
	if allowed(p.Role, operatorRoles) {
		out = append(out,
			navLink{Href: "/federation/roster", Label: "Roster"},
			navLink{Href: "/federation/policy", Label: "Policy"},
			navLink{Href: "/federation/budget", Label: "Budget"},
			navLink{Href: "/federation/incoming", Label: "Incoming queries"},
			navLink{Href: "/federation/approvals", Label: "Approvals"})
	}
	if allowed(p.Role, querierRoles) {
		out = append(out, navLink{Href: "/federation/query", Label: "Query console"})
	}
	if allowed(p.Role, auditRoles) {
		out = append(out, navLink{Href: "/audit", Label: "Audit log"})
	}
	if len(out) < 2 {
		return nil
	}
	for i := range out {
		out[i].Current = out[i].Href == current
	}
	return out
}

func (s *Server) fedBase(p *principal, r *http.Request) fedBase {
	return fedBase{Sub: fedSub(p, r.URL.Path), NoFederation: s.Federation == nil}
}

// fedIndex sends operators to the roster and queriers to the console.
func (s *Server) fedIndex(w http.ResponseWriter, r *http.Request, p *principal) {
	to := "/federation/query"
	if allowed(p.Role, operatorRoles) {
		to = "/federation/roster"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// The roster.

type memberRow struct {
	Org, Country, Roles   string
	PeerID, ShortPeer     string
	From, Until, Expiry   string
	Status                string
	Current, Self, Ending bool
}

type rosterData struct {
	fedBase
	Unavailable        bool
	Version            uint64
	Issued, NextUpdate string
	Stale              bool
	Members            []memberRow
}

// expiryWords says when a certificate ends, relative to now.
func expiryWords(now, notAfter time.Time) (string, bool) {
	d := notAfter.Sub(now)
	switch {
	case d < 0:
		return "ended " + utcDate(notAfter), false
	case d < 24*time.Hour:
		return "ends today", true
	case d < 31*24*time.Hour:
		n := int(d.Hours() / 24)
		if n == 1 {
			return "ends in 1 day", true
		}
		return fmt.Sprintf("ends in %d days", n), true
	}
	return "until " + utcDate(notAfter), false
}

func (s *Server) fedRoster(w http.ResponseWriter, r *http.Request, p *principal) {
	d := rosterData{fedBase: s.fedBase(p, r)}
	if s.Federation != nil {
		ro, err := s.Federation.Roster(r.Context())
		switch {
		case node.KindOf(err) == node.Unavailable:
			d.Unavailable = true
		case err != nil:
			s.pageError(w, r, p, err)
			return
		default:
			now := s.Now()
			d.Version, d.Issued, d.NextUpdate = ro.Version, utcTime(ro.IssuedAt), utcTime(ro.NextUpdate)
			d.Stale = !ro.NextUpdate.IsZero() && now.After(ro.NextUpdate)
			for _, m := range ro.Members {
				row := memberRow{Org: m.Org, Country: countryName(m.Country), Roles: strings.Join(m.Roles, ", "),
					PeerID: m.PeerID, ShortPeer: shortPeer(m.PeerID), From: utcDate(m.NotBefore), Until: utcDate(m.NotAfter),
					Status: memberStatusWords(m.Status), Current: m.Status == "ok", Self: m.Self}
				if row.Country == "" {
					row.Country = m.Country
				}
				if m.Status == "ok" {
					row.Expiry, row.Ending = expiryWords(now, m.NotAfter)
				}
				d.Members = append(d.Members, row)
			}
			slices.SortStableFunc(d.Members, func(a, b memberRow) int { return strings.Compare(a.Org, b.Org) })
		}
	}
	s.render(w, r, http.StatusOK, "fed_roster", &pageData{Title: "Federation roster", User: p, Data: d})
}

// The policy, in words.

type policySection struct {
	Heading   string
	Sentences []string
}

type policyData struct {
	fedBase
	NoService bool
	Sections  []policySection
}

// orgsOfPeers maps the peer IDs of the roster to their organisations.
func (s *Server) orgsOfPeers(ctx context.Context) map[string]string {
	out := map[string]string{}
	if s.Federation == nil {
		return out
	}
	ro, err := s.Federation.Roster(ctx)
	if err != nil {
		return out
	}
	for _, m := range ro.Members {
		out[m.PeerID] = m.Org
	}
	return out
}

// policyWords says a node's policy in sentences, section by section.
func policyWords(cb *node.Codebook, pol *node.Policy, orgOf map[string]string) []policySection {
	rp := &pol.Remote
	var who []string
	if len(rp.AllowPeers) == 0 && len(rp.AllowOrgs) == 0 {
		who = append(who, "No one: every query from another member is refused. A querier is allowed by its peer ID or, if you trust a whole organisation, by the organisation's name.")
	}
	if len(rp.AllowPeers) > 0 {
		names := make([]string, len(rp.AllowPeers))
		for i, id := range rp.AllowPeers {
			if org := orgOf[id]; org != "" {
				names[i] = fmt.Sprintf("%s (node %s)", org, id)
			} else {
				names[i] = fmt.Sprintf("node %s (not in the roster)", id)
			}
		}
		who = append(who, "These querier nodes may ask: "+joinWords(names, "and")+".")
	}
	if len(rp.AllowOrgs) > 0 {
		who = append(who, "Every querier node of these organisations may ask: "+joinWords(rp.AllowOrgs, "and")+".")
	}
	if rp.RequireApproval {
		who = append(who, "Every new query waits in the approval queue until a person here approves or rejects it; the querier collects an approved answer by asking again.")
	} else {
		who = append(who, "Queries from allowed queriers are answered without a person's approval, within the budget.")
	}

	var what []string
	if len(rp.Dimensions) == 0 {
		what = append(what, "Any dimension of the codebook may be grouped by or filtered on.")
	} else {
		names := make([]string, len(rp.Dimensions))
		for i, d := range rp.Dimensions {
			names[i] = dimWords(d)
		}
		what = append(what, "Only these dimensions may be grouped by or filtered on: "+joinWords(names, "and")+".")
	}
	if len(rp.Measures) == 0 {
		what = append(what, "Any measure may be asked: the number of cases, and sums, averages and quantiles of the measure fields.")
	} else {
		names := make([]string, len(rp.Measures))
		for i, m := range rp.Measures {
			if m == "count" {
				names[i] = "the number of cases"
			} else {
				names[i] = fieldWords(cb, m)
			}
		}
		what = append(what, "Only these measures may be asked: "+joinWords(names, "and")+".")
	}
	what = append(what, fmt.Sprintf("A query may ask for at most %d cells.", pol.MaxCells))
	if pol.CountWithoutConsent {
		what = append(what, "Cases without consent to statistical use count in answers.")
	} else {
		what = append(what, "Only cases whose consent to statistical use is yes count in answers.")
	}

	caps := pol.Caps
	budget := []string{
		fmt.Sprintf("One query may spend at most %s.", amountText(caps.PerQuery)),
		fmt.Sprintf("All queries together may spend at most %s per registration year.", amountText(caps.NodePerYear)),
		fmt.Sprintf("Each querier organisation may spend at most %s per registration year.", amountText(caps.OrgPerYear)),
	}
	if len(rp.Allocations) > 0 {
		orgs := make([]string, 0, len(rp.Allocations))
		for o := range rp.Allocations {
			orgs = append(orgs, o)
		}
		slices.Sort(orgs)
		parts := make([]string, len(orgs))
		for i, o := range orgs {
			parts[i] = fmt.Sprintf("%s may spend %s", o, amountText(rp.Allocations[o]))
		}
		budget = append(budget, "Except: "+joinWords(parts, "and")+" per registration year.")
	}
	budget = append(budget, fmt.Sprintf("A query that names no ε spends ε %s, with the %s mechanism.", epsilonText(pol.DefaultEpsilon), upperFirst(pol.Mechanism.String())))

	release := []string{
		fmt.Sprintf("A cell's number is shown only when its noisy count is at least %d and the lower end of its 95%% interval is above 0; otherwise it is shown as suppressed.", pol.MinCellSize),
		"Queriers combine answers with the largest of the federation's and every answering node's minimum cell size.",
	}
	if ttl := rp.ReplyTTL; ttl > 0 {
		release = append(release, fmt.Sprintf("A repeated query ID is answered again from the reply kept for %s, never charged twice.", ttl))
	}
	return []policySection{
		{"Who may ask", who},
		{"What they may ask", what},
		{"Privacy budget", budget},
		{"What is released", release},
	}
}

func (s *Server) fedPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	d := policyData{fedBase: s.fedBase(p, r)}
	if s.Query == nil {
		d.NoService = true
	} else {
		d.Sections = policyWords(s.Codebook, &s.Query.Policy, s.orgsOfPeers(r.Context()))
	}
	s.render(w, r, http.StatusOK, "fed_policy", &pageData{Title: "Federation policy", User: p, Data: d})
}

// The budget ledger.

type budgetRow struct {
	Who, Years            string
	Spent, Cap, Remaining string
	Exhausted, Allocation bool
	org                   string
	from, to              int
	spentKey, capKey      string
}

type budgetData struct {
	fedBase
	NoService bool
	Rows      []budgetRow
}

// budgetRows turns the budget's lines into rows, one per querier (the
// node as a whole first) and run of consecutive years with equal spending
// and cap. An organisation's cap is its allocation when the policy names
// one.
func budgetRows(lines []node.BudgetLine, pol *node.Policy) []budgetRow {
	var rows []budgetRow
	for _, l := range lines {
		lcap := l.Cap
		alloc := false
		if l.Org != "" {
			if a, ok := pol.Remote.Allocations[l.Org]; ok {
				lcap, alloc = a, true
			}
		}
		// δ is shown only where some was spent (Gaussian answers).
		text := func(a privacy.Amount) string {
			if l.Spent.Delta == 0 {
				a.Delta = 0
			}
			return amountText(a)
		}
		spentKey, capKey := text(l.Spent), text(lcap)
		if n := len(rows); n > 0 {
			last := &rows[n-1]
			if last.org == l.Org && last.to+1 == l.Year && last.spentKey == spentKey && last.capKey == capKey {
				last.to = l.Year
				last.Years = yearSpan(last.from, last.to)
				continue
			}
		}
		who := l.Org
		if who == "" {
			who = "All queriers together (node-wide)"
		}
		rem := lcap.Sub(l.Spent)
		rows = append(rows, budgetRow{Who: who, Years: yearSpan(l.Year, l.Year), Spent: spentKey, Cap: capKey,
			Remaining: text(rem), Exhausted: rem.Epsilon == 0, Allocation: alloc,
			org: l.Org, from: l.Year, to: l.Year, spentKey: spentKey, capKey: capKey})
	}
	return rows
}

func (s *Server) fedBudget(w http.ResponseWriter, r *http.Request, p *principal) {
	d := budgetData{fedBase: s.fedBase(p, r)}
	if s.Query == nil {
		d.NoService = true
	} else {
		lines, err := s.Query.Budget(r.Context(), "")
		if err != nil {
			s.pageError(w, r, p, err)
			return
		}
		d.Rows = budgetRows(lines, &s.Query.Policy)
	}
	s.render(w, r, http.StatusOK, "fed_budget", &pageData{Title: "Privacy budget", User: p, Data: d})
}

// The approval queue.

type approvalItem struct {
	ID, Org, Country, Peer, ShortPeer string
	Received, Words, SQL, Purpose     string
	Epsilon, Delta, Mechanism         string
	Status, DecidedBy, DecidedAt      string
}

type approvalsData struct {
	fedBase
	Pending []approvalItem
	Decided []approvalItem
	Notice  string
	Problem string
	Require bool
	Recent  int
}

func (s *Server) approvalItem(a *node.Approval) approvalItem {
	it := approvalItem{ID: a.ID, Org: a.Peer.Org, Country: countryName(a.Peer.Country), Peer: a.Peer.PeerID, ShortPeer: shortPeer(a.Peer.PeerID),
		Received: utcTime(a.Received), Purpose: a.Request.Purpose, Epsilon: epsilonText(a.Request.Epsilon),
		Mechanism: a.Request.Mechanism, Status: a.Status, DecidedBy: a.DecidedBy, DecidedAt: utcTime(a.DecidedAt)}
	if it.Country == "" {
		it.Country = a.Peer.Country
	}
	if a.Request.Delta != 0 {
		it.Delta = epsilonText(a.Request.Delta)
	}
	if q := a.Request.Query; q != nil {
		it.Words, it.SQL = describeQuery(s.Codebook, q), q.Canonical()
	}
	return it
}

func (s *Server) fedApprovals(w http.ResponseWriter, r *http.Request, p *principal) {
	s.renderApprovals(w, r, p, http.StatusOK, "")
}

// renderApprovals shows the queue: pending queries oldest first, then the
// most recent decisions; problem is a message about a decision just
// refused.
func (s *Server) renderApprovals(w http.ResponseWriter, r *http.Request, p *principal, status int, problem string) {
	d := approvalsData{fedBase: s.fedBase(p, r), Problem: problem, Recent: recentDecisions}
	d.NoFederation = s.Approvals == nil
	if s.Query != nil {
		d.Require = s.Query.Policy.Remote.RequireApproval
	}
	if q := r.URL.Query(); q.Get("decided") != "" && problem == "" {
		switch q.Get("status") {
		case node.ApprovalApproved:
			d.Notice = fmt.Sprintf("Query %s is approved: the querier collects its answer by asking again.", q.Get("decided"))
		case node.ApprovalRejected:
			d.Notice = fmt.Sprintf("Query %s is rejected: the querier is told so when it asks again.", q.Get("decided"))
		}
	}
	if s.Approvals != nil {
		all, err := s.Approvals.Approvals(r.Context(), "")
		if err != nil {
			s.pageError(w, r, p, err)
			return
		}
		var decided []*node.Approval
		for _, a := range all {
			if a.Status == node.ApprovalPending {
				d.Pending = append(d.Pending, s.approvalItem(a))
			} else {
				decided = append(decided, a)
			}
		}
		slices.SortStableFunc(decided, func(a, b *node.Approval) int { return b.DecidedAt.Compare(a.DecidedAt) })
		for _, a := range decided[:min(len(decided), recentDecisions)] {
			d.Decided = append(d.Decided, s.approvalItem(a))
		}
	}
	s.render(w, r, status, "fed_approvals", &pageData{Title: "Approvals", User: p, Data: d})
}

// errNotInFederation answers a request about approvals on a node that is
// in no federation.
var errNotInFederation = node.E("web.federation", node.Unavailable, "this node is not in a federation")

// decideApproval approves or rejects a pending query as p: the decision
// is written to the audit log before it takes effect. Returns NotFound,
// Conflict when the query was decided already, Invalid for another
// decision.
func (s *Server) decideApproval(ctx context.Context, p *principal, id, decision string) (*node.Approval, error) {
	const op = "web.decideApproval"
	if s.Approvals == nil {
		return nil, errNotInFederation
	}
	var status, action string
	switch decision {
	case "approve":
		status, action = node.ApprovalApproved, ActionQueryApprove
	case "reject":
		status, action = node.ApprovalRejected, ActionQueryReject
	default:
		return nil, node.E(op, node.Invalid, "the decision is approve or reject")
	}
	a, err := s.Approvals.Approval(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Status != node.ApprovalPending {
		return nil, node.E(op, node.Conflict, "query %s was %s already", a.ID, a.Status)
	}
	sql := ""
	if a.Request.Query != nil {
		sql = a.Request.Query.Canonical()
	}
	if err := s.audit(ctx, p, action, a.ID, fmt.Sprintf("from %s: %s", a.Peer.Org, sql)); err != nil {
		return nil, err
	}
	return s.Approvals.DecideApproval(ctx, a.ID, status, p.Name)
}

func (s *Server) fedDecide(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	a, err := s.decideApproval(r.Context(), p, id, r.PostForm.Get("decision"))
	switch node.KindOf(err) {
	case node.Unknown:
	case node.NotFound:
		s.renderApprovals(w, r, p, http.StatusNotFound, "There is no query "+id+" in the queue.")
		return
	case node.Conflict:
		s.renderApprovals(w, r, p, http.StatusConflict, "Query "+id+" was decided already: see below.")
		return
	case node.Invalid:
		s.renderApprovals(w, r, p, http.StatusBadRequest, "Choose Approve or Reject.")
		return
	default:
		if errors.Is(err, errNotInFederation) {
			s.renderApprovals(w, r, p, http.StatusServiceUnavailable, "This node is not in a federation.")
			return
		}
		s.pageError(w, r, p, err)
		return
	}
	q := url.Values{"decided": {a.ID}, "status": {a.Status}}
	http.Redirect(w, r, "/federation/approvals?"+q.Encode(), http.StatusSeeOther)
}
