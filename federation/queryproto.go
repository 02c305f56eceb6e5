package federation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// The query protocol (/ctfed/query/1.0.0): the querier sends one request
// (a node.QueryRequest and a deadline), the node replies with one signed
// answer: answered with its noisy table, pending approval, or refused with a
// kind, its fixed message and maybe a reason code.

const serviceQuery = "ctfed.query"

// handleQuery is the query protocol's responder.
func (n *Node) handleQuery(s network.Stream) {
	if err := s.Scope().SetService(serviceQuery); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(n.StreamTimeout))
	remote := s.Conn().RemotePeer()
	log := n.Logger.With(zap.String("peer_id", remote.String()))
	data, err := readFrame(bufio.NewReader(io.LimitReader(s, MaxRequestSize+16)), MaxRequestSize)
	if err != nil {
		log.Debug("query: unreadable request", zap.Error(err))
		_ = s.Reset()
		return
	}
	msg, err := decodeQueryRequest(data)
	if err != nil {
		log.Info("query: malformed request", zap.Error(err))
		if n.Audit != nil {
			e := &node.AuditEntry{Actor: remote.String(), Action: ActionQueryAnswer, Detail: "status=malformed"}
			if err := n.Audit.Append(n.ctx, e); err != nil {
				log.Error("query: audit", zap.Error(err))
			}
		}
		_ = s.Reset()
		return
	}
	// The answer must be written within the stream's life: a deadline
	// further than StreamTimeout is cut to it, and the write has a little
	// more.
	_ = s.SetDeadline(n.answerDeadline(msg).Add(answerWriteGrace))
	body, from := n.answer(remote, msg)
	log = log.With(zap.String("query_id", msg.Request.ID), zap.String("status", body.Status))
	if body.Status == wireRefused {
		log = log.With(zap.String("kind", body.Kind), zap.String("reason", body.Reason))
	}

	// The audit entry is written before the answer leaves, and the head the
	// answer carries covers it.
	if n.Audit != nil {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		head, err := n.auditAnswer(ctx, remote, from, msg, body)
		cancel()
		if err != nil {
			log.Error("query: audit", zap.Error(err))
			body = refusal(body, node.Unavailable, "")
		} else {
			body.AuditHead = &head
		}
	}
	body.Time = n.Now().UTC()
	sig, err := n.Identity.sign(tagAnswer, body)
	if err != nil {
		log.Error("query: sign the answer", zap.Error(err))
		_ = s.Reset()
		return
	}
	if err := writeMsg(s, &answerMsg{Body: *body, Signature: sig}); err != nil {
		log.Debug("query: write the answer", zap.Error(err))
		_ = s.Reset()
		return
	}
	log.Info("query handled")
	_ = s.Close()
}

// answer decides the reply to one request from remote, calling the
// Answerer only for a current member with the querier role whose request
// has not passed its deadline. It returns the reply's body and the peer as
// the roster describes it (zero when unknown).
func (n *Node) answer(remote peer.ID, msg *queryRequestMsg) (*answerBody, node.Peer) {
	req := msg.Request
	body := &answerBody{Format: wireFormat, QueryID: req.ID, Querier: remote.String(), Responder: n.PeerID().String()}
	now := n.Now()
	r := n.roster.Load()
	if r == nil || r.Stale(now, n.StaleGrace) {
		return refusal(body, node.Unavailable, ReasonStaleRoster), node.Peer{PeerID: remote.String()}
	}
	cert, st := r.Member(remote, now, n.ClockSkew)
	if st != MemberOK {
		return refusal(body, node.Permission, ReasonNotMember), node.Peer{PeerID: remote.String()}
	}
	from := cert.Peer()
	if !cert.HasRole(node.RoleQuerier) {
		return refusal(body, node.Permission, ReasonNotQuerier), from
	}
	if req.Query.Codebook != n.Codebook.Version {
		return refusal(body, node.Invalid, ReasonCodebook), from
	}
	if !now.Before(msg.Deadline) {
		return refusal(body, node.Unavailable, ReasonDeadline), from
	}
	if n.Answerer == nil {
		return refusal(body, node.Unavailable, ""), from
	}
	if !n.acquire(remote) {
		return refusal(body, node.Unavailable, ReasonBusy), from
	}
	defer n.release(remote)
	ctx, cancel := context.WithDeadline(n.ctx, n.answerDeadline(msg))
	defer cancel()
	ans, err := n.Answerer.AnswerQuery(ctx, from, req)
	if err != nil {
		k := node.KindOf(err)
		if k == node.Internal {
			n.Logger.Error("query: the answerer failed", zap.String("query_id", req.ID), zap.Error(err))
		}
		return refusal(body, k, reasonOf(k, err)), from
	}
	switch {
	case ans == nil:
	case ans.Status == node.StatusAnswered && ans.Table != nil:
		body.Status, body.Answer = wireAnswered, ans
		return body, from
	case ans.Status == node.StatusPending:
		body.Status, body.Answer = wirePending, &node.RemoteAnswer{Status: node.StatusPending, ChargedEpsilon: ans.ChargedEpsilon, ChargedDelta: ans.ChargedDelta}
		return body, from
	}
	n.Logger.Error("query: the answerer returned no answer", zap.String("query_id", req.ID))
	return refusal(body, node.Internal, ""), from
}

// answerWriteGrace is the time a handler has to write an answer after the
// answer's deadline.
const answerWriteGrace = 5 * time.Second

// answerDeadline is when the Answerer must be done: the request's deadline,
// or StreamTimeout from now if that comes first.
func (n *Node) answerDeadline(msg *queryRequestMsg) time.Time {
	d := msg.Deadline
	if lim := time.Now().Add(n.StreamTimeout); lim.Before(d) {
		d = lim
	}
	return d
}

// refusal turns body into a refusal of kind k with its fixed message.
func refusal(body *answerBody, k node.Kind, reason string) *answerBody {
	if k == node.Unknown {
		k = node.Internal
	}
	body.Status, body.Answer = wireRefused, nil
	body.Kind, body.Message, body.Reason = k.String(), k.Message(), reason
	return body
}

// reasonOf returns the fixed reason code of an Answerer's refusal: the cap
// that a BudgetExhausted names.
func reasonOf(k node.Kind, err error) string {
	if k != node.BudgetExhausted {
		return ""
	}
	var ce *privacy.CapError
	if errors.As(err, &ce) {
		switch ce.Cap {
		case privacy.CapNode:
			return ReasonBudgetNodeCap
		case privacy.CapOrg:
			return ReasonBudgetOrgCap
		case privacy.CapPerQuery:
			return ReasonBudgetQueryCap
		}
	}
	// node.QueryService carries the cap as its reason code, not the CapError.
	if r := node.ReasonOf(err); knownReasons[r] {
		return r
	}
	return ReasonBudget
}

// acquire takes one of p's concurrent query slots.
func (n *Node) acquire(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inflight[p] >= n.MaxConcurrentPerPeer {
		return false
	}
	n.inflight[p]++
	return true
}

func (n *Node) release(p peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inflight[p]--; n.inflight[p] <= 0 {
		delete(n.inflight, p)
	}
}

// auditAnswer appends the answering side's audit entry: who asked what,
// its purpose, and what was answered or why it was refused; never a value.
func (n *Node) auditAnswer(ctx context.Context, remote peer.ID, from node.Peer, msg *queryRequestMsg, body *answerBody) (node.AuditHead, error) {
	req := msg.Request
	detail := fmt.Sprintf("org=%q query=%q codebook=%q epsilon=%g delta=%g mechanism=%q purpose=%q status=%s",
		from.Org, queryText(req.Query), req.Query.Codebook, req.Epsilon, req.Delta, req.Mechanism, req.Purpose, body.Status)
	if body.Status == wireRefused {
		detail += fmt.Sprintf(" kind=%s reason=%s", body.Kind, body.Reason)
	}
	if body.Answer != nil {
		detail += fmt.Sprintf(" charged_epsilon=%g charged_delta=%g", body.Answer.ChargedEpsilon, body.Answer.ChargedDelta)
	}
	e := &node.AuditEntry{Actor: remote.String(), Action: ActionQueryAnswer, Subject: req.ID, Detail: detail}
	if err := n.Audit.Append(ctx, e); err != nil {
		return node.AuditHead{}, err
	}
	return n.Audit.AuditHead(ctx)
}

// queryText is the canonical text of a query for the audit log, bounded.
func queryText(q *node.Query) string {
	if q == nil {
		return ""
	}
	return clip(q.Canonical(), 4096)
}

// askOutcome is what became of one request to one peer.
type askOutcome struct {
	msg     *answerMsg
	stage   string // coverage status when msg is nil
	problem string // reason code when the answer was unusable
}

// ask sends one request to p and reads its verified answer. The stream is
// reset as soon as ctx is done.
func (n *Node) ask(ctx context.Context, p peer.ID, msg *queryRequestMsg) askOutcome {
	if n.host.Network().Connectedness(p) != network.Connected {
		dctx, cancel := context.WithTimeout(ctx, n.DialTimeout)
		err := n.host.Connect(dctx, peer.AddrInfo{ID: p})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return askOutcome{stage: CoverageTimedOut}
			}
			return askOutcome{stage: CoverageUnreachable}
		}
	}
	s, err := n.host.NewStream(ctx, p, QueryProtocol)
	if err != nil {
		if ctx.Err() != nil {
			return askOutcome{stage: CoverageTimedOut}
		}
		return askOutcome{stage: CoverageUnreachable}
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if err := s.Scope().SetService(serviceQuery); err != nil {
		_ = s.Reset()
		return askOutcome{stage: CoverageUnreachable}
	}
	// ctx bounds the exchange (its end resets the stream); the stream's own
	// deadline is a backstop for a ctx without one.
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	} else {
		_ = s.SetDeadline(msg.Deadline.Add(n.DialTimeout))
	}
	fail := func() askOutcome {
		_ = s.Reset()
		if ctx.Err() != nil || !time.Now().Before(msg.Deadline) {
			// Past the deadline: the node was too slow, not unreachable.
			return askOutcome{stage: CoverageTimedOut}
		}
		return askOutcome{stage: CoverageUnreachable}
	}
	if err := writeMsg(s, msg); err != nil {
		return fail()
	}
	if err := s.CloseWrite(); err != nil {
		return fail()
	}
	data, err := readFrame(bufio.NewReader(io.LimitReader(s, int64(n.MaxAnswerSize)+16)), n.MaxAnswerSize)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			_ = s.Reset()
			return askOutcome{stage: CoverageRefused, problem: ReasonBadAnswer}
		}
		return fail()
	}
	_ = s.Close()
	a, err := decodeAnswer(data, n.MaxAnswerSize)
	if err != nil {
		return askOutcome{stage: CoverageRefused, problem: ReasonBadAnswer}
	}
	if err := verifyAnswer(a, p, n.PeerID(), msg.Request.ID); err != nil {
		return askOutcome{stage: CoverageRefused, problem: ReasonBadSignature}
	}
	return askOutcome{msg: a}
}
