package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ctfed/ctfed/node"
)

// The federation's part of the JSON API: the budget ledger, the audit
// log, the approval queue and federated queries.

// federationAPIRoutes returns the federation's endpoints of the JSON API.
func (s *Server) federationAPIRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/budget", s.apiBudget, operatorRoles},
		{"GET /api/audit", s.apiAudit, auditRoles},
		{"GET /api/approvals", s.apiApprovals, operatorRoles},
		{"POST /api/approvals/{id}", s.apiDecide, operatorRoles},
		{"POST /api/federated-queries", s.apiFederatedQuery, querierRoles},
	}
}

// apiBudgetLine is one line of the budget ledger: what a querier
// organisation (or, with scope "node", every querier together) has spent
// on one registration year, its cap and what remains, in ε and δ.
type apiBudgetLine struct {
	Scope            string  `json:"scope"`
	Org              string  `json:"org,omitempty"`
	Year             int     `json:"year"`
	SpentEpsilon     float64 `json:"spent_epsilon"`
	SpentDelta       float64 `json:"spent_delta"`
	CapEpsilon       float64 `json:"cap_epsilon"`
	CapDelta         float64 `json:"cap_delta"`
	RemainingEpsilon float64 `json:"remaining_epsilon"`
	RemainingDelta   float64 `json:"remaining_delta"`
}

func (s *Server) apiBudget(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.Query == nil {
		s.apiFail(w, http.StatusServiceUnavailable, node.Unavailable, "this node answers no queries")
		return
	}
	lines, err := s.Query.Budget(r.Context(), "")
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	out := make([]apiBudgetLine, 0, len(lines))
	for _, l := range lines {
		lcap := l.Cap
		scope := "node"
		if l.Org != "" {
			scope = "organisation"
			if a, ok := s.Query.Policy.Remote.Allocations[l.Org]; ok {
				lcap = a
			}
		}
		rem := lcap.Sub(l.Spent)
		out = append(out, apiBudgetLine{Scope: scope, Org: l.Org, Year: l.Year,
			SpentEpsilon: l.Spent.Epsilon.Float64(), SpentDelta: l.Spent.Delta.Float64(),
			CapEpsilon: lcap.Epsilon.Float64(), CapDelta: lcap.Delta.Float64(),
			RemainingEpsilon: rem.Epsilon.Float64(), RemainingDelta: rem.Delta.Float64()})
	}
	writeJSON(w, http.StatusOK, struct {
		Lines []apiBudgetLine `json:"lines"`
	}{out})
}

// Bounds of the audit endpoint's limit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

type apiAuditPage struct {
	Entries []*node.AuditEntry `json:"entries"`
	// Next is the from of the next request: the entry after the last one
	// read (Head+1 when the log was read to its end).
	Next uint64 `json:"next"`
	// Head is the newest entry's sequence number.
	Head uint64 `json:"head"`
}

// apiAudit lists the audit log oldest first from the entry numbered from
// (1 by default), at most limit entries, only those of action when given.
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	q := r.URL.Query()
	from, limit := uint64(1), defaultAuditLimit
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, "from must be a whole number")
			return
		}
		from = max(n, 1)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			s.apiFail(w, http.StatusBadRequest, node.Invalid, fmt.Sprintf("limit must be a whole number from 1 to %d", maxAuditLimit))
			return
		}
		limit = n
	}
	action := q.Get("action")
	head, err := s.Audit.AuditHead(ctx)
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	page := apiAuditPage{Entries: []*node.AuditEntry{}, Head: head.Seq, Next: from}
	err = s.Audit.AuditEntries(ctx, from, func(e *node.AuditEntry) error {
		if len(page.Entries) == limit {
			return errStopScan
		}
		page.Next = e.Seq + 1
		if action == "" || e.Action == action {
			page.Entries = append(page.Entries, e)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		s.apiError(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// apiApproval is one query of the approval queue with what it asks in
// words and its canonical SQL.
type apiApproval struct {
	*node.Approval
	Description string `json:"description"`
	SQL         string `json:"sql"`
}

func (s *Server) apiApprovalOf(a *node.Approval) apiApproval {
	out := apiApproval{Approval: a}
	if q := a.Request.Query; q != nil {
		out.Description, out.SQL = describeQuery(s.Codebook, q), q.Canonical()
	}
	return out
}

// apiApprovals lists the approval queue: the pending queries by default,
// or those of status (approved, rejected, or all).
func (s *Server) apiApprovals(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.Approvals == nil {
		s.apiFail(w, http.StatusServiceUnavailable, node.Unavailable, "this node is not in a federation")
		return
	}
	status := r.URL.Query().Get("status")
	switch status {
	case "":
		status = node.ApprovalPending
	case "all":
		status = ""
	case node.ApprovalPending, node.ApprovalApproved, node.ApprovalRejected:
	default:
		s.apiFail(w, http.StatusBadRequest, node.Invalid, "status is pending, approved, rejected or all")
		return
	}
	list, err := s.Approvals.Approvals(r.Context(), status)
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	out := make([]apiApproval, len(list))
	for i, a := range list {
		out[i] = s.apiApprovalOf(a)
	}
	writeJSON(w, http.StatusOK, struct {
		Approvals []apiApproval `json:"approvals"`
	}{out})
}

type apiDecision struct {
	Decision string `json:"decision"`
}

// apiDecide approves or rejects a pending query.
func (s *Server) apiDecide(w http.ResponseWriter, r *http.Request, p *principal) {
	var body apiDecision
	if err := decodeJSON(w, r, &body); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	a, err := s.decideApproval(r.Context(), p, r.PathValue("id"), body.Decision)
	if err != nil {
		msg := ""
		switch node.KindOf(err) {
		case node.NotFound:
			msg = "no query with this ID is in the approval queue"
		case node.Conflict:
			msg = "the query was decided already"
		case node.Invalid:
			msg = `decision is "approve" or "reject"`
		case node.Unavailable:
			if errors.Is(err, errNotInFederation) {
				s.apiFail(w, http.StatusServiceUnavailable, node.Unavailable, "this node is not in a federation")
				return
			}
		}
		s.apiError(w, r, err, msg)
		return
	}
	writeJSON(w, http.StatusOK, s.apiApprovalOf(a))
}

// apiFedQuery is the body of a federated query: the query as SQL or in
// its JSON form (one of them), ε (0: the policy's default), δ and the
// mechanism (laplace or gaussian; empty: the policy's), the timeout in
// seconds (0: 30), the purpose shown to the nodes' operators, and, to ask
// again (collecting answers that were pending approval), the query ID of
// the earlier result.
type apiFedQuery struct {
	SQL            string          `json:"sql,omitempty"`
	Query          json.RawMessage `json:"query,omitempty"`
	Epsilon        float64         `json:"epsilon,omitempty"`
	Delta          float64         `json:"delta,omitempty"`
	Mechanism      string          `json:"mechanism,omitempty"`
	TimeoutSeconds float64         `json:"timeout_seconds,omitempty"`
	Purpose        string          `json:"purpose"`
	QueryID        string          `json:"query_id,omitempty"`
}

// apiFedResult is a federated result with what it asks in words.
type apiFedResult struct {
	*FederatedResult
	Description string `json:"description"`
}

func (s *Server) apiResult(res *FederatedResult) apiFedResult {
	return apiFedResult{FederatedResult: res, Description: describeQuery(s.Codebook, res.Query)}
}

func (s *Server) apiFederatedQuery(w http.ResponseWriter, r *http.Request, p *principal) {
	var body apiFedQuery
	if err := decodeJSON(w, r, &body); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	a := fedAsk{SQL: body.SQL, JSON: body.Query, Epsilon: body.Epsilon, Delta: body.Delta, Mechanism: body.Mechanism,
		Purpose: body.Purpose, QueryID: body.QueryID}
	if body.TimeoutSeconds != 0 {
		if !(body.TimeoutSeconds >= 1 && body.TimeoutSeconds <= MaxFederatedTimeout.Seconds()) {
			a.Timeout = -1 // fedRequest names the problem
		} else {
			a.Timeout = time.Duration(body.TimeoutSeconds * float64(time.Second))
		}
	}
	req, timeout, errs := s.fedRequest(&a)
	if len(errs) > 0 {
		b := apiErrorBody{Kind: node.Invalid.String(), Message: "the query request is invalid: see fields"}
		for _, e := range errs {
			field := e.Field
			if field == "timeout" {
				field = "timeout_seconds"
			}
			b.Fields = append(b.Fields, apiFieldError{Field: field, Message: e.Msg})
		}
		writeJSON(w, http.StatusBadRequest, b)
		return
	}
	res, err := s.runFederated(r.Context(), p, req, timeout)
	if err != nil {
		switch node.KindOf(err) {
		case node.Invalid, node.Permission:
			s.apiError(w, r, err, apiMessage(fedFailure(err)))
			return
		case node.Unavailable:
			s.logError(r, node.Unavailable, err)
			s.apiFail(w, http.StatusServiceUnavailable, node.Unavailable, apiMessage(fedFailure(err)))
			return
		}
		s.apiError(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, s.apiResult(res))
}

// apiMessage turns a sentence for people into an API message: "The
// federation cannot be reached." → "the federation cannot be reached".
func apiMessage(s string) string { return lowerFirst(strings.TrimSuffix(s, ".")) }
