package federation

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/node"
)

// Protocol IDs. A change that an older node cannot read gets a new version.
const (
	QueryProtocol  = "/ctfed/query/1.0.0"
	RosterProtocol = "/ctfed/roster/1.0.0"
)

// Limits of the wire messages.
const (
	// MaxRequestSize bounds an encoded query request.
	MaxRequestSize = 128 << 10
	// DefaultMaxAnswerSize bounds an encoded answer unless the node says
	// otherwise (a QUANTILE over many cells carries many histogram bins).
	DefaultMaxAnswerSize = 32 << 20
	// maxRosterMsgSize bounds a roster protocol message.
	maxRosterMsgSize = MaxRosterSize + 1024

	maxQueryIDLen   = 128
	maxPurposeLen   = 2000
	maxMechanismLen = 32
)

const wireFormat = 1

// writeMsg writes v as one uvarint-length-prefixed JSON message.
func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+len(b))
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	buf = append(buf, b...)
	_, err = w.Write(buf)
	return err
}

// errTooLarge is returned by readFrame for a message over its limit.
var errTooLarge = errors.New("message too large")

// readFrame reads one uvarint-length-prefixed message of at most limit
// bytes. It never allocates more than limit.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if n > uint64(limit) {
		return nil, errTooLarge
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// queryRequestMsg is the query protocol's request: a node.QueryRequest and
// the time after which the querier no longer waits for the answer.
type queryRequestMsg struct {
	Format   int                `json:"format"`
	Request  *node.QueryRequest `json:"request"`
	Deadline time.Time          `json:"deadline"`
}

// decodeQueryRequest decodes and checks the shape of a query request; the
// query itself is validated by the answering node. Returns Invalid.
func decodeQueryRequest(data []byte) (*queryRequestMsg, error) {
	const op = "federation.decodeQueryRequest"
	var m queryRequestMsg
	if err := decodeStrict(op, data, MaxRequestSize, &m); err != nil {
		return nil, err
	}
	if m.Format != wireFormat {
		return nil, node.E(op, node.Invalid, "unknown message format %d", m.Format)
	}
	if err := checkRequest(m.Request); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	if m.Deadline.IsZero() {
		return nil, node.E(op, node.Invalid, "no deadline")
	}
	return &m, nil
}

// checkRequest checks the fields of a query request that the federation
// carries: an ID, a query, a finite ε and δ and bounded texts.
func checkRequest(r *node.QueryRequest) error {
	if r == nil {
		return errorf("no request")
	}
	if err := checkText("the query ID", r.ID, maxQueryIDLen, true); err != nil {
		return err
	}
	if r.Query == nil {
		return errorf("no query")
	}
	if err := checkText("the codebook version", r.Query.Codebook, 32, true); err != nil {
		return err
	}
	if !finiteNonNeg(r.Epsilon) || !finiteNonNeg(r.Delta) {
		return errorf("epsilon and delta must be finite and not negative")
	}
	if err := checkText("the mechanism", r.Mechanism, maxMechanismLen, false); err != nil {
		return err
	}
	if len(r.Purpose) > maxPurposeLen {
		return errorf("the purpose is longer than %d bytes", maxPurposeLen)
	}
	return nil
}

func finiteNonNeg(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) && x >= 0 }

// Answer statuses on the wire: answered and pending as node.RemoteAnswer
// says, refused with a kind, its fixed message and maybe a reason code.
const (
	wireAnswered = node.StatusAnswered
	wirePending  = node.StatusPending
	wireRefused  = "refused"
)

// Reason codes: short fixed texts that say why a node refused, beside the
// kind. They depend only on the query, the policy, the budget and the
// roster, never on data.
const (
	ReasonBudget          = "budget"
	ReasonCodebook        = "codebook_version"
	ReasonDeadline        = "deadline_passed"
	ReasonBusy            = "busy"
	ReasonStaleRoster     = "stale_roster"
	ReasonNotMember       = "not_member"
	ReasonNotQuerier      = "not_querier"
	ReasonBadAnswer       = "bad_answer"
	ReasonBadSignature    = "bad_signature"
	ReasonWrongQuery      = "wrong_query"
	ReasonBudgetNodeCap   = "budget:node-wide"
	ReasonBudgetOrgCap    = "budget:organisation"
	ReasonBudgetQueryCap  = "budget:per-query"
	ReasonProtocolFailure = "protocol"
)

var knownReasons = map[string]bool{
	ReasonBudget: true, ReasonCodebook: true, ReasonDeadline: true, ReasonBusy: true,
	ReasonStaleRoster: true, ReasonNotMember: true, ReasonNotQuerier: true,
	ReasonBudgetNodeCap: true, ReasonBudgetOrgCap: true, ReasonBudgetQueryCap: true,
}

// answerBody is what an answering node signs: bound to the query ID, the
// querier and itself, with its audit head.
type answerBody struct {
	Format    int                `json:"format"`
	QueryID   string             `json:"query_id"`
	Querier   string             `json:"querier"`
	Responder string             `json:"responder"`
	Time      time.Time          `json:"time"`
	Status    string             `json:"status"`
	Answer    *node.RemoteAnswer `json:"answer,omitempty"`
	Kind      string             `json:"kind,omitempty"`
	Message   string             `json:"message,omitempty"`
	Reason    string             `json:"reason,omitempty"`
	AuditHead *node.AuditHead    `json:"audit_head,omitempty"`
}

// answerMsg is the query protocol's reply.
type answerMsg struct {
	Body      answerBody `json:"body"`
	Signature []byte     `json:"signature"`
}

// decodeAnswer decodes an answer and checks its shape (not its signature:
// see verifyAnswer). Returns Invalid.
func decodeAnswer(data []byte, limit int) (*answerMsg, error) {
	const op = "federation.decodeAnswer"
	var m answerMsg
	if err := decodeStrict(op, data, limit, &m); err != nil {
		return nil, err
	}
	b := &m.Body
	if b.Format != wireFormat {
		return nil, node.E(op, node.Invalid, "unknown message format %d", b.Format)
	}
	if err := checkText("the query ID", b.QueryID, maxQueryIDLen, true); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	switch b.Status {
	case wireAnswered:
		if b.Answer == nil || b.Answer.Status != node.StatusAnswered || b.Answer.Table == nil {
			return nil, node.E(op, node.Invalid, "an answered reply without its table")
		}
	case wirePending:
		if b.Answer == nil || b.Answer.Status != node.StatusPending {
			return nil, node.E(op, node.Invalid, "a pending reply without its status")
		}
	case wireRefused:
		k := node.ParseKind(b.Kind)
		if k == node.Unknown || b.Message != k.Message() {
			return nil, node.E(op, node.Invalid, "a refusal without a known kind and its message")
		}
		if b.Reason != "" && !knownReasons[b.Reason] {
			return nil, node.E(op, node.Invalid, "an unknown reason code")
		}
		if b.Answer != nil {
			return nil, node.E(op, node.Invalid, "a refusal with an answer")
		}
	default:
		return nil, node.E(op, node.Invalid, "unknown status")
	}
	if b.Answer != nil && (!finiteNonNeg(b.Answer.ChargedEpsilon) || !finiteNonNeg(b.Answer.ChargedDelta)) {
		return nil, node.E(op, node.Invalid, "the charge is not a finite amount")
	}
	return &m, nil
}

// verifyAnswer checks that m is signed by responder and answers queryID
// for querier.
func verifyAnswer(m *answerMsg, responder, querier peer.ID, queryID string) error {
	const op = "federation.verifyAnswer"
	if m.Body.Responder != responder.String() || m.Body.Querier != querier.String() || m.Body.QueryID != queryID {
		return node.E(op, node.Invalid, "the answer is for another query or peer")
	}
	if !verifyPeer(responder, tagAnswer, &m.Body, m.Signature) {
		return node.E(op, node.Invalid, "the answer's signature does not verify")
	}
	return nil
}

// rosterMsg is the roster protocol's message: the sender's roster version,
// its roster when the receiver needs it, and the signed peer records
// (libp2p envelopes, each signed by its own peer) of the members it knows,
// which is how members learn each other's addresses.
type rosterMsg struct {
	Format      int      `json:"format"`
	Version     uint64   `json:"version"`
	Roster      *Roster  `json:"roster,omitempty"`
	PeerRecords [][]byte `json:"peer_records,omitempty"`
}

// maxPeerRecords bounds the peer records of one roster message.
const maxPeerRecords = 10_000

// decodeRosterMsg decodes a roster message and verifies its roster, if any,
// against the pinned key. Returns Invalid.
func decodeRosterMsg(data []byte, key []byte) (*rosterMsg, error) {
	const op = "federation.decodeRosterMsg"
	var m rosterMsg
	if err := decodeStrict(op, data, maxRosterMsgSize, &m); err != nil {
		return nil, err
	}
	if m.Format != wireFormat {
		return nil, node.E(op, node.Invalid, "unknown message format %d", m.Format)
	}
	if len(m.PeerRecords) > maxPeerRecords {
		return nil, node.E(op, node.Invalid, "more than %d peer records", maxPeerRecords)
	}
	if m.Roster != nil {
		if err := m.Roster.Verify(key); err != nil {
			return nil, err
		}
		if m.Roster.Version != m.Version {
			return nil, node.E(op, node.Invalid, "the roster's version is not the one stated")
		}
	}
	return &m, nil
}
