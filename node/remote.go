package node

import "context"

// Member roles in a federation.
const (
	RoleContributor = "contributor"
	RoleQuerier     = "querier"
)

// Peer is a federation member as its certificate describes it: the
// authority vouches for every field.
type Peer struct {
	PeerID  string   `json:"peer_id"`
	Org     string   `json:"org"`
	Country string   `json:"country"`
	Roles   []string `json:"roles"`
}

// QueryRequest is one statistical question sent to a node: an ID chosen by
// the querier (a repeated ID from the same querier is answered again but
// never charged twice), the canonical query at its codebook version, the ε
// and δ asked, the mechanism, and the purpose shown to the node's operator.
type QueryRequest struct {
	ID        string  `json:"id"`
	Query     *Query  `json:"query"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta,omitempty"`
	Mechanism string  `json:"mechanism,omitempty"`
	Purpose   string  `json:"purpose"`
}

// Answer statuses. Pending is not an error: the query waits for a person's
// approval and the querier may ask again with the same ID to collect it.
const (
	StatusAnswered = "answered"
	StatusPending  = "pending"
)

// RemoteAnswer is a node's reply to a QueryRequest: answered with its noisy
// table, or pending approval.
type RemoteAnswer struct {
	Status string      `json:"status"`
	Table  *NoisyTable `json:"table,omitempty"`
	// Charged is what this request charged, in ε and δ (zero for a repeat,
	// a cached answer or a pending query).
	ChargedEpsilon float64 `json:"charged_epsilon"`
	ChargedDelta   float64 `json:"charged_delta,omitempty"`
}

// Answerer answers queries from other members of the federation; the
// node's service implements it and the federation's query handler calls it
// after checking the peer's membership. It returns Permission when the
// node's policy does not let the peer ask (or the query's dimensions or
// measure are not allowed), BudgetExhausted when a cap would be exceeded,
// Invalid for a bad query or another codebook version, Unavailable when the
// node cannot answer now.
type Answerer interface {
	AnswerQuery(ctx context.Context, from Peer, req *QueryRequest) (*RemoteAnswer, error)
}
