package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/privacy"
)

// RemotePolicy says which other members may ask this node what. Deny by
// default: with no peer and no organisation allowed, every remote query is
// refused.
type RemotePolicy struct {
	// AllowPeers are the querier peer IDs allowed to ask.
	AllowPeers []string
	// AllowOrgs are querier organisations all of whose nodes may ask; only
	// when the operator chooses to trust a whole organisation.
	AllowOrgs []string
	// Allocations override Caps.OrgPerYear for named querier organisations.
	Allocations map[string]privacy.Amount
	// RequireApproval holds every new query for a person's approval.
	RequireApproval bool
	// Dimensions and Measures, when set, are the only dimensions (GROUP BY
	// and filters) and measure fields (plus "count") remote queries may use.
	Dimensions []string
	Measures   []string
	// ReplyTTL is how long an answer is kept for a repeated query ID.
	ReplyTTL time.Duration
}

// Reason codes a refusal carries across the wire with its kind, so that a
// querier's coverage can say why without any free text.
const (
	ReasonNotAllowed      = "policy:querier"
	ReasonDimension       = "policy:dimension"
	ReasonMeasure         = "policy:measure"
	ReasonRejected        = "policy:rejected"
	ReasonCodebook        = "codebook"
	ReasonBudgetPerQuery  = "budget:" + privacy.CapPerQuery
	ReasonBudgetNode      = "budget:" + privacy.CapNode
	ReasonBudgetOrg       = "budget:" + privacy.CapOrg
	ReasonInvalidQuery    = "query"
	ReasonUnavailableNode = "unavailable"
)

// ReasonError is an error with a fixed reason code for the wire.
type ReasonError struct {
	Reason string
	Err    error
}

func (e *ReasonError) Error() string { return e.Err.Error() }
func (e *ReasonError) Unwrap() error { return e.Err }

func refuse(kind Kind, reason, format string, args ...any) error {
	return &Error{Op: "remote query", Kind: kind, Err: &ReasonError{Reason: reason, Err: fmt.Errorf(format, args...)}}
}

// allowed reports whether p may ask at all.
func (rp *RemotePolicy) allowed(p Peer) bool {
	return slices.Contains(rp.AllowPeers, p.PeerID) || slices.Contains(rp.AllowOrgs, p.Org)
}

// checkScope refuses a query that uses a dimension or measure the policy
// does not allow.
func (rp *RemotePolicy) checkScope(q *Query) error {
	if len(rp.Dimensions) > 0 {
		dims := slices.Clone(q.GroupBy)
		for _, f := range q.Filters {
			dims = append(dims, f.Dim)
		}
		for _, d := range dims {
			if !slices.Contains(rp.Dimensions, d) {
				return refuse(Permission, ReasonDimension, "this node does not answer queries on %s", d)
			}
		}
	}
	if len(rp.Measures) > 0 {
		m := "count"
		if q.Measure.Func != FuncCount {
			m = q.Measure.Field
		}
		if !slices.Contains(rp.Measures, m) {
			return refuse(Permission, ReasonMeasure, "this node does not answer queries on %s", m)
		}
	}
	return nil
}

// AnswerQuery implements Answerer: a query from another member, whose
// membership and querier role the federation has checked. The node's
// policy decides whether the peer may ask and what; a repeated query ID is
// answered with the reply already given, never charged twice; with
// approval required, a new query waits as pending until a person approves
// it. Whether it is refused depends only on the query, the policy and the
// budget, never on the data.
func (s *QueryService) AnswerQuery(ctx context.Context, from Peer, req *QueryRequest) (*RemoteAnswer, error) {
	s.init()
	rp := &s.Policy.Remote
	switch {
	case req == nil || req.Query == nil:
		return nil, refuse(Invalid, ReasonInvalidQuery, "no query")
	case req.ID == "" || len(req.ID) > 128 || strings.ContainsAny(req.ID, "\x00/"):
		return nil, refuse(Invalid, ReasonInvalidQuery, "a query needs an ID of at most 128 bytes")
	case !rp.allowed(from):
		return nil, refuse(Permission, ReasonNotAllowed, "this node's policy does not let %s ask", from.Org)
	case req.Query.Codebook != s.Codebook.Version:
		return nil, refuse(Invalid, ReasonCodebook, "the query is for codebook %s; this node answers in %s", req.Query.Codebook, s.Codebook.Version)
	}
	if err := req.Query.Check(s.Codebook, s.Policy.MaxCells); err != nil {
		return nil, refuse(Invalid, ReasonInvalidQuery, "%v", err)
	}
	if err := rp.checkScope(req.Query); err != nil {
		return nil, err
	}
	replyKey := from.PeerID + "\x00" + req.ID
	unlock := s.locks.lock("reply\x00" + replyKey)
	defer unlock()
	if prev, ok, err := s.Approvals.Reply(ctx, replyKey); err != nil {
		return nil, err
	} else if ok {
		again := *prev
		again.ChargedEpsilon, again.ChargedDelta = 0, 0
		return &again, nil
	}
	if rp.RequireApproval {
		a, err := s.Approvals.CreateApproval(ctx, &Approval{ID: approvalID(from, req.ID), Peer: from, Request: *req, Received: s.Now().UTC()})
		if err != nil {
			return nil, err
		}
		switch a.Status {
		case ApprovalPending:
			s.Logger.Info("query awaits approval", zap.String("approval_id", a.ID), zap.String("org", from.Org))
			return &RemoteAnswer{Status: StatusPending}, nil
		case ApprovalRejected:
			return nil, refuse(Permission, ReasonRejected, "the node's operator rejected this query")
		}
		// Approved: answer the request that was approved, not a new one
		// reusing its ID.
		req = &a.Request
	}
	ans, err := s.Answer(ctx, &AnswerRequest{Query: req.Query, Org: from.Org, Epsilon: req.Epsilon, Delta: req.Delta, Mechanism: req.Mechanism})
	if err != nil {
		return nil, remoteError(err)
	}
	reply := &RemoteAnswer{Status: StatusAnswered, Table: ans.Table, ChargedEpsilon: ans.Charged.Epsilon.Float64(), ChargedDelta: ans.Charged.Delta.Float64()}
	ttl := rp.ReplyTTL
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	if err := s.Approvals.StoreReply(ctx, replyKey, reply, ttl); err != nil {
		s.Logger.Warn("reply not kept for repeats", zap.Error(err))
	}
	return reply, nil
}

// remoteError gives a budget refusal its reason code and hides the
// node-wide spending (CapError.Public).
func remoteError(err error) error {
	var ce *privacy.CapError
	if errors.As(err, &ce) {
		return refuse(BudgetExhausted, "budget:"+ce.Cap, "%s", ce.Public())
	}
	if KindOf(err) == Invalid {
		return refuse(Invalid, ReasonInvalidQuery, "%v", err)
	}
	return err
}

// approvalID names the approval of a querier's query ID.
func approvalID(p Peer, queryID string) string {
	id := p.PeerID
	if len(id) > 12 {
		id = id[len(id)-12:]
	}
	return id + "-" + queryID
}

// ReasonOf returns the reason code carried by err, if any.
func ReasonOf(err error) string {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
