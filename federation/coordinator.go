package federation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// DefaultQueryTimeout is how long a federated query waits for answers when
// the caller gives no timeout.
const DefaultQueryTimeout = 30 * time.Second

// Coverage statuses: what became of the query at one member.
const (
	CoverageAnswered    = "answered"
	CoverageRefused     = "refused"
	CoveragePending     = "pending"
	CoverageUnreachable = "unreachable"
	CoverageTimedOut    = "timed_out"
)

// Refusal reasons in the coverage.
const (
	RefusedPermission  = "permission"
	RefusedBudget      = "budget"
	RefusedCodebook    = "codebook_version"
	RefusedInvalid     = "invalid"
	RefusedUnavailable = "unavailable"
	RefusedInternal    = "internal"
)

// Coverage is what became of a federated query at one contributor, as its
// certificate names it. Reason (for refused) is one of the Refused…
// values; Detail is the node's fixed reason code, if any (e.g.
// "budget:organisation"); Message is the fixed message of the node's error
// kind. ChargedEpsilon and ChargedDelta are what the node says it charged.
// AuditHead is the node's audit head carried by its signed answer.
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

// Result is a federated query's released result: the combined cells (the
// release rule applied with MinCellSize, the largest of the federation's and
// the answering nodes' minima), the query and the ε and δ asked, and the
// coverage of every contributor, sorted by organisation. Per-node tables are
// never part of it.
type Result struct {
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

// Count returns how many contributors ended in status.
func (r *Result) Count(status string) int {
	n := 0
	for _, c := range r.Coverage {
		if c.Status == status {
			n++
		}
	}
	return n
}

// Coordinator runs federated queries from a querier's node: it fans one
// request out to every current contributor concurrently, waits up to the
// timeout, checks each answer and combines them. It starts no goroutine
// that outlives a query except those its Node owns.
type Coordinator struct {
	// Node is the querier's node (open).
	Node *Node
	// MinCellSize is the federation's minimum cell size; each node's own
	// minimum applies too (the largest wins).
	MinCellSize int
	// MaxCells bounds the cells of a query (node.DefaultMaxCells if 0).
	MaxCells int
	// Combiner computes totals and intervals; it memoises across queries.
	Combiner *privacy.Combiner
	// Logger receives the coordinator's log.
	Logger *zap.Logger
}

// NewCoordinator returns a Coordinator on n with defaults filled in.
func NewCoordinator(n *Node) *Coordinator {
	return &Coordinator{
		Node:        n,
		MinCellSize: privacy.DefaultMinCellSize,
		MaxCells:    node.DefaultMaxCells,
		Combiner:    privacy.NewCombiner(),
		Logger:      n.Logger,
	}
}

// outcome is one contributor's part of a query, kept only in memory.
type outcome struct {
	cov   Coverage
	table *node.NoisyTable
}

// Query asks every current contributor req, waits at most timeout (a node
// that is down or slow never holds the result past it) and returns the
// combined result with its coverage. An empty req.ID gets a random one.
// Returns Invalid for a bad request, Permission when this node is not a
// current member with the querier role, Unavailable without a roster.
func (c *Coordinator) Query(ctx context.Context, req *node.QueryRequest, timeout time.Duration) (*Result, error) {
	const op = "federation.Query"
	start := time.Now()
	n := c.Node
	if n == nil || n.host == nil {
		return nil, node.E(op, node.Unavailable, "the federation node is not open")
	}
	if req == nil {
		return nil, node.E(op, node.Invalid, "no request")
	}
	r := *req
	if r.ID == "" {
		r.ID = newQueryID()
	}
	if err := checkRequest(&r); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	cb := n.Codebook
	if err := r.Query.Check(cb, c.MaxCells); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	roster := n.CurrentRoster()
	if roster == nil {
		return nil, node.E(op, node.Unavailable, "no roster yet")
	}
	now := n.Now()
	self, st := roster.Member(n.PeerID(), now, n.ClockSkew)
	if st != MemberOK || !self.HasRole(node.RoleQuerier) {
		return nil, node.E(op, node.Permission, "this node is not a current member with the querier role (%s)", st)
	}
	members := roster.Members(node.RoleContributor, now, n.ClockSkew)
	deadline := now.Add(timeout)
	qctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	msg := &queryRequestMsg{Format: wireFormat, Request: &r, Deadline: deadline.UTC()}
	n.refreshAddrs(qctx, members)

	results := make(chan int, len(members))
	outs := make([]outcome, len(members))
	for i, cert := range members {
		outs[i].cov = Coverage{PeerID: cert.PeerID, Org: cert.Org, Country: cert.Country, Status: CoverageTimedOut}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			o := c.askOne(qctx, cert, msg)
			o.cov.PeerID, o.cov.Org, o.cov.Country = cert.PeerID, cert.Org, cert.Country
			outs[i] = o
			results <- i
		}()
	}
	done := make([]bool, len(members))
wait:
	for range members {
		select {
		case i := <-results:
			done[i] = true
		case <-qctx.Done():
			break wait
		}
	}
	cancel()
	for drained := false; !drained; {
		select {
		case i := <-results:
			done[i] = true
		default:
			drained = true
		}
	}
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return nil, node.E(op, node.Unavailable, "the query was cancelled: %w", err)
	}
	// Only finished outcomes are read; a straggler writes its own slot and
	// its buffered channel send, never what is read below.
	var tables []*node.NoisyTable
	res := &Result{QueryID: r.ID, Query: r.Query, SQL: r.Query.Canonical(), Epsilon: r.Epsilon, Delta: r.Delta, Mechanism: r.Mechanism}
	for i := range members {
		if !done[i] {
			res.Coverage = append(res.Coverage, Coverage{PeerID: members[i].PeerID, Org: members[i].Org, Country: members[i].Country, Status: CoverageTimedOut})
			continue
		}
		o := outs[i]
		if o.table != nil {
			if err := c.checkTable(o.table, r.Query); err != nil {
				o.cov.Status, o.cov.Reason, o.cov.Detail, o.table = CoverageRefused, RefusedInvalid, ReasonWrongQuery, nil
			}
		}
		if o.table != nil {
			tables = append(tables, o.table)
		}
		res.Coverage = append(res.Coverage, o.cov)
	}
	slices.SortFunc(res.Coverage, func(a, b Coverage) int {
		return cmpStrings(a.Org, b.Org, a.PeerID, b.PeerID)
	})
	cells, minSize, err := node.Combine(cb, r.Query, tables, max(c.MinCellSize, 1), c.Combiner)
	if err != nil {
		return nil, err
	}
	res.Cells, res.MinCellSize, res.Answered = cells, minSize, len(tables)
	res.Elapsed = time.Since(start)
	c.audit(ctx, res, &r)
	return res, nil
}

// askOne asks one contributor: this node's own Answerer for itself, the
// query protocol for anyone else.
func (c *Coordinator) askOne(ctx context.Context, cert *Certificate, msg *queryRequestMsg) outcome {
	n := c.Node
	p, err := peer.Decode(cert.PeerID)
	if err != nil {
		return outcome{cov: Coverage{Status: CoverageUnreachable}}
	}
	if p == n.PeerID() {
		return c.askSelf(ctx, cert, msg.Request)
	}
	a := n.ask(ctx, p, msg)
	if a.msg == nil {
		cov := Coverage{Status: a.stage}
		if a.stage == CoverageRefused {
			cov.Reason, cov.Detail = RefusedInvalid, a.problem
		}
		return outcome{cov: cov}
	}
	b := &a.msg.Body
	var o outcome
	if b.AuditHead != nil {
		o.cov.AuditHead = b.AuditHead
		if n.OnAuditHead != nil {
			n.OnAuditHead(cert.Peer(), *b.AuditHead)
		}
	}
	switch b.Status {
	case wireAnswered:
		o.cov.Status = CoverageAnswered
		o.cov.ChargedEpsilon, o.cov.ChargedDelta = b.Answer.ChargedEpsilon, b.Answer.ChargedDelta
		o.table = b.Answer.Table
	case wirePending:
		o.cov.Status = CoveragePending
		o.cov.ChargedEpsilon, o.cov.ChargedDelta = b.Answer.ChargedEpsilon, b.Answer.ChargedDelta
	default:
		k := node.ParseKind(b.Kind)
		o.cov.Status, o.cov.Reason, o.cov.Detail, o.cov.Message = CoverageRefused, refusedReason(k, b.Reason), b.Reason, k.Message()
	}
	return o
}

// askSelf answers the query with this node's own Answerer, under the same
// policy as any other querier's request.
func (c *Coordinator) askSelf(ctx context.Context, cert *Certificate, req *node.QueryRequest) outcome {
	n := c.Node
	if n.Answerer == nil {
		return outcome{cov: Coverage{Status: CoverageRefused, Reason: RefusedUnavailable, Message: node.Unavailable.Message()}}
	}
	ans, err := n.Answerer.AnswerQuery(ctx, cert.Peer(), req)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{cov: Coverage{Status: CoverageTimedOut}}
		}
		k := node.KindOf(err)
		reason := reasonOf(k, err)
		return outcome{cov: Coverage{Status: CoverageRefused, Reason: refusedReason(k, reason), Detail: reason, Message: k.Message()}}
	}
	switch {
	case ans != nil && ans.Status == node.StatusAnswered && ans.Table != nil:
		return outcome{cov: Coverage{Status: CoverageAnswered, ChargedEpsilon: ans.ChargedEpsilon, ChargedDelta: ans.ChargedDelta}, table: ans.Table}
	case ans != nil && ans.Status == node.StatusPending:
		return outcome{cov: Coverage{Status: CoveragePending, ChargedEpsilon: ans.ChargedEpsilon, ChargedDelta: ans.ChargedDelta}}
	}
	return outcome{cov: Coverage{Status: CoverageRefused, Reason: RefusedInternal, Message: node.Internal.Message()}}
}

// checkTable checks a node's table against the query asked, codebook
// version included.
func (c *Coordinator) checkTable(t *node.NoisyTable, q *node.Query) error {
	if t.Query == nil || t.Query.Codebook != q.Codebook {
		return node.E("federation.checkTable", node.Invalid, "the answer is at another codebook version")
	}
	return t.Check(c.Node.Codebook, q)
}

// refusedReason maps a node's kind and reason code to the coverage's
// reason.
func refusedReason(k node.Kind, reason string) string {
	switch {
	case reason == ReasonCodebook:
		return RefusedCodebook
	case k == node.BudgetExhausted:
		return RefusedBudget
	case k == node.Permission:
		return RefusedPermission
	case k == node.Invalid:
		return RefusedInvalid
	case k == node.Unavailable:
		return RefusedUnavailable
	}
	return RefusedInternal
}

// audit writes the querier's audit entry for one federated query: what was
// asked, its purpose, and how many contributors answered, refused, were
// pending, unreachable or timed out; never a value.
func (c *Coordinator) audit(ctx context.Context, res *Result, req *node.QueryRequest) {
	n := c.Node
	if n.Audit == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "query=%q codebook=%q epsilon=%g delta=%g mechanism=%q purpose=%q",
		queryText(req.Query), req.Query.Codebook, req.Epsilon, req.Delta, req.Mechanism, req.Purpose)
	for _, s := range []string{CoverageAnswered, CoverageRefused, CoveragePending, CoverageUnreachable, CoverageTimedOut} {
		fmt.Fprintf(&b, " %s=%d", s, res.Count(s))
	}
	e := &node.AuditEntry{Actor: n.PeerID().String(), Action: ActionQueryAsk, Subject: res.QueryID, Detail: b.String()}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := n.Audit.Append(actx, e); err != nil {
		c.logger().Error("query: audit", zap.String("query_id", res.QueryID), zap.Error(err))
	}
}

func (c *Coordinator) logger() *zap.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return zap.NewNop()
}

func newQueryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func cmpStrings(a1, b1, a2, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}
