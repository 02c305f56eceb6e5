package node

import (
	"context"
	"time"
)

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
)

// Approval is an incoming query waiting for, or decided by, a person at
// the node: the querier, the request with its stated purpose, and the
// decision.
type Approval struct {
	ID        string       `json:"id"`
	Peer      Peer         `json:"peer"`
	Request   QueryRequest `json:"request"`
	Received  time.Time    `json:"received"`
	Status    string       `json:"status"`
	DecidedBy string       `json:"decided_by,omitempty"`
	DecidedAt time.Time    `json:"decided_at,omitzero"`
}

// ApprovalStore keeps the approval queue and the replies already given to
// remote queriers (so that a repeated query ID is answered again, never
// charged twice).
type ApprovalStore interface {
	// CreateApproval stores a as pending unless an approval with its ID
	// exists; it returns the stored one either way.
	CreateApproval(ctx context.Context, a *Approval) (*Approval, error)
	// Approval returns the approval with the ID. Returns NotFound.
	Approval(ctx context.Context, id string) (*Approval, error)
	// DecideApproval sets a pending approval's status (approved or
	// rejected). Returns NotFound, or Conflict when it was decided already.
	DecideApproval(ctx context.Context, id, status, by string) (*Approval, error)
	// Approvals lists approvals with the status (all when empty), oldest
	// first.
	Approvals(ctx context.Context, status string) ([]*Approval, error)
	// Reply returns the reply stored under key.
	Reply(ctx context.Context, key string) (*RemoteAnswer, bool, error)
	// StoreReply keeps a reply under key for ttl.
	StoreReply(ctx context.Context, key string, a *RemoteAnswer, ttl time.Duration) error
}
