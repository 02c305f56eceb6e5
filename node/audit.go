package node

import (
	"context"
	"time"
)

// AuditEntry is one line of a node's audit log: who did what, when, to
// which subject. Detail never holds an identity field, a record or an exact
// aggregate.
type AuditEntry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Prev    []byte    `json:"prev,omitempty"`
	Hash    []byte    `json:"hash,omitempty"`
}

// AuditHead identifies the newest entry of an audit log.
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash []byte `json:"hash"`
}

// AuditLog is a node's append-only, hash-chained audit log.
type AuditLog interface {
	// Append adds e, setting its Seq, Time (if zero), Prev and Hash, and
	// syncs it to disk before returning.
	Append(ctx context.Context, e *AuditEntry) error
	// AuditEntries calls fn for every entry with Seq ≥ from, oldest first.
	AuditEntries(ctx context.Context, from uint64, fn func(*AuditEntry) error) error
	// AuditHead returns the newest entry's sequence number and hash.
	AuditHead(ctx context.Context) (AuditHead, error)
}
