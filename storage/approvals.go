package storage

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
)

// Approval queue and reply keys:
//
//	p/<approval id>   a node.Approval (JSON)
//	r/<reply key>     a node.RemoteAnswer already given (JSON), with a TTL
var (
	prefixApproval = []byte("p/")
	prefixReply    = []byte("r/")
)

var _ node.ApprovalStore = (*DB)(nil)

func approvalKey(id string) []byte { return append(append([]byte(nil), prefixApproval...), id...) }

func getJSON(txn *badger.Txn, key []byte, v any) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func setJSON(txn *badger.Txn, key []byte, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e := badger.NewEntry(key, b)
	if ttl > 0 {
		e = e.WithTTL(ttl)
	}
	return txn.SetEntry(e)
}

// CreateApproval implements node.ApprovalStore.
func (db *DB) CreateApproval(ctx context.Context, a *node.Approval) (*node.Approval, error) {
	const op = "storage.CreateApproval"
	if a.ID == "" {
		return nil, node.E(op, node.Invalid, "an approval needs an ID")
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	db.ledgerMu.Lock()
	defer db.ledgerMu.Unlock()
	out := a
	err := db.bdb.Update(func(txn *badger.Txn) error {
		var cur node.Approval
		ok, err := getJSON(txn, approvalKey(a.ID), &cur)
		if err != nil || ok {
			out = &cur
			return err
		}
		a.Status = node.ApprovalPending
		return setJSON(txn, approvalKey(a.ID), a, 0)
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	return out, nil
}

// Approval implements node.ApprovalStore.
func (db *DB) Approval(ctx context.Context, id string) (*node.Approval, error) {
	const op = "storage.Approval"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var a node.Approval
	var ok bool
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(txn, approvalKey(id), &a)
		return err
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	if !ok {
		return nil, node.E(op, node.NotFound, "no query %s awaits approval", id)
	}
	return &a, nil
}

// DecideApproval implements node.ApprovalStore.
func (db *DB) DecideApproval(ctx context.Context, id, status, by string) (*node.Approval, error) {
	const op = "storage.DecideApproval"
	if status != node.ApprovalApproved && status != node.ApprovalRejected {
		return nil, node.E(op, node.Invalid, "a decision is approved or rejected, not %q", status)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	db.ledgerMu.Lock()
	defer db.ledgerMu.Unlock()
	var a node.Approval
	err := db.bdb.Update(func(txn *badger.Txn) error {
		ok, err := getJSON(txn, approvalKey(id), &a)
		switch {
		case err != nil:
			return err
		case !ok:
			return node.E(op, node.NotFound, "no query %s awaits approval", id)
		case a.Status != node.ApprovalPending:
			return node.E(op, node.Conflict, "query %s was %s already", id, a.Status)
		}
		a.Status, a.DecidedBy, a.DecidedAt = status, by, db.Now().UTC()
		return setJSON(txn, approvalKey(id), &a, 0)
	})
	if err != nil {
		if node.KindOf(err) != node.Internal {
			return nil, err
		}
		return nil, node.E(op, node.Internal, "%w", err)
	}
	return &a, nil
}

// Approvals implements node.ApprovalStore.
func (db *DB) Approvals(ctx context.Context, status string) ([]*node.Approval, error) {
	const op = "storage.Approvals"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var out []*node.Approval
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefixApproval})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var a node.Approval
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &a) }); err != nil {
				return err
			}
			if status == "" || a.Status == status {
				out = append(out, &a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Received.Before(out[j].Received) })
	return out, nil
}

// Reply implements node.ApprovalStore.
func (db *DB) Reply(ctx context.Context, key string) (*node.RemoteAnswer, bool, error) {
	const op = "storage.Reply"
	if err := db.begin(ctx, op); err != nil {
		return nil, false, err
	}
	defer db.lc.RUnlock()
	var a node.RemoteAnswer
	var ok bool
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(txn, append(append([]byte(nil), prefixReply...), key...), &a)
		return err
	})
	if err != nil {
		return nil, false, node.E(op, node.Internal, "%w", err)
	}
	if !ok {
		return nil, false, nil
	}
	return &a, true, nil
}

// StoreReply implements node.ApprovalStore.
func (db *DB) StoreReply(ctx context.Context, key string, a *node.RemoteAnswer, ttl time.Duration) error {
	const op = "storage.StoreReply"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	err := db.bdb.Update(func(txn *badger.Txn) error {
		return setJSON(txn, append(append([]byte(nil), prefixReply...), key...), a, ttl)
	})
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}
