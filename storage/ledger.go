package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// Ledger keys:
//
//	l/n/<year u16>             node-wide spending of a year (privacy.Amount JSON)
//	l/o/<org>\x00<year u16>    an organisation's spending of a year
//	l/c/<cache key>            a cached answer (node.NoisyTable JSON), with a TTL
var (
	prefixLedgerNode  = []byte("l/n/")
	prefixLedgerOrg   = []byte("l/o/")
	prefixLedgerCache = []byte("l/c/")
)

var _ node.Ledger = (*DB)(nil)

func ledgerNodeKey(year int) []byte {
	return binary.BigEndian.AppendUint16(append([]byte(nil), prefixLedgerNode...), uint16(year))
}

func ledgerOrgKey(org string, year int) []byte {
	k := append(append([]byte(nil), prefixLedgerOrg...), org...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint16(k, uint16(year))
}

func readAmount(txn *badger.Txn, key []byte) (privacy.Amount, error) {
	var a privacy.Amount
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &a) })
	return a, err
}

func writeAmount(txn *badger.Txn, key []byte, a privacy.Amount) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// Charge implements node.Ledger: the charge is one transaction, committed
// and synced (SyncWrites) before Charge returns, under the ledger lock so
// concurrent charges never overspend.
func (db *DB) Charge(ctx context.Context, org string, years []int, cost privacy.Amount, caps privacy.Caps) error {
	return db.charge(ctx, "storage.Charge", org, years, cost, caps, true)
}

// CheckCharge implements node.Ledger.
func (db *DB) CheckCharge(ctx context.Context, org string, years []int, cost privacy.Amount, caps privacy.Caps) error {
	return db.charge(ctx, "storage.CheckCharge", org, years, cost, caps, false)
}

func (db *DB) charge(ctx context.Context, op, org string, years []int, cost privacy.Amount, caps privacy.Caps, write bool) error {
	if org == "" {
		return node.E(op, node.Invalid, "no querier organisation")
	}
	if err := caps.Validate(); err != nil {
		return node.E(op, node.Invalid, "%w", err)
	}
	for _, y := range years {
		if y < 0 || y > 0xffff {
			return node.E(op, node.Invalid, "year %d out of range", y)
		}
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	db.ledgerMu.Lock()
	defer db.ledgerMu.Unlock()
	txn := db.bdb.NewTransaction(write)
	defer txn.Discard()
	spentNode := make(map[int]privacy.Amount, len(years))
	spentOrg := make(map[int]privacy.Amount, len(years))
	for _, y := range years {
		n, err := readAmount(txn, ledgerNodeKey(y))
		if err != nil {
			return node.E(op, node.Internal, "%w", err)
		}
		o, err := readAmount(txn, ledgerOrgKey(org, y))
		if err != nil {
			return node.E(op, node.Internal, "%w", err)
		}
		spentNode[y], spentOrg[y] = n, o
	}
	newNode, newOrg, err := caps.Charge(spentNode, spentOrg, cost, years)
	if err != nil {
		var ce *privacy.CapError
		if errors.As(err, &ce) {
			return &node.Error{Op: op, Kind: node.BudgetExhausted, Err: ce}
		}
		return node.E(op, node.Invalid, "%w", err)
	}
	if !write {
		return nil
	}
	for y, a := range newNode {
		if err := writeAmount(txn, ledgerNodeKey(y), a); err != nil {
			return node.E(op, node.Internal, "%w", err)
		}
	}
	for y, a := range newOrg {
		if err := writeAmount(txn, ledgerOrgKey(org, y), a); err != nil {
			return node.E(op, node.Internal, "%w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return node.E(op, node.Unavailable, "%w", err)
	}
	if err := txn.Commit(); err != nil {
		return node.E(op, node.Internal, "commit charge: %w", err)
	}
	return nil
}

// moveYearTxn applies the year-move rule inside a case write's transaction:
// when an edit moves a case from year src to year dst, dst's spending
// becomes at least src's, node-wide and for every organisation. The caller
// holds db.mu; moveYearTxn takes the ledger lock for the rest of the
// transaction through unlock, which the caller calls after committing.
func (db *DB) moveYearTxn(txn *badger.Txn, src, dst int) error {
	if src == dst {
		return nil
	}
	n, err := readAmount(txn, ledgerNodeKey(src))
	if err != nil {
		return err
	}
	d, err := readAmount(txn, ledgerNodeKey(dst))
	if err != nil {
		return err
	}
	if m := privacy.MoveYear(n, d); m != d {
		if err := writeAmount(txn, ledgerNodeKey(dst), m); err != nil {
			return err
		}
	}
	orgs, err := ledgerOrgs(txn)
	if err != nil {
		return err
	}
	for _, org := range orgs {
		s, err := readAmount(txn, ledgerOrgKey(org, src))
		if err != nil {
			return err
		}
		d, err := readAmount(txn, ledgerOrgKey(org, dst))
		if err != nil {
			return err
		}
		if m := privacy.MoveYear(s, d); m != d {
			if err := writeAmount(txn, ledgerOrgKey(org, dst), m); err != nil {
				return err
			}
		}
	}
	return nil
}

// ledgerOrgs lists the organisations that have spent anything.
func ledgerOrgs(txn *badger.Txn) ([]string, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixLedgerOrg})
	defer it.Close()
	var orgs []string
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()[len(prefixLedgerOrg):]
		if len(k) < 3 {
			continue
		}
		org := string(k[:len(k)-3])
		if len(orgs) == 0 || orgs[len(orgs)-1] != org {
			orgs = append(orgs, org)
		}
	}
	return orgs, nil
}

// Spending implements node.Ledger.
func (db *DB) Spending(ctx context.Context) (*node.Spending, error) {
	const op = "storage.Spending"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	s := &node.Spending{Node: map[int]privacy.Amount{}, Orgs: map[string]map[int]privacy.Amount{}}
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte("l/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			var a privacy.Amount
			switch {
			case len(k) == len(prefixLedgerNode)+2 && string(k[:len(prefixLedgerNode)]) == string(prefixLedgerNode):
				if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &a) }); err != nil {
					return err
				}
				s.Node[int(binary.BigEndian.Uint16(k[len(prefixLedgerNode):]))] = a
			case len(k) > len(prefixLedgerOrg)+3 && string(k[:len(prefixLedgerOrg)]) == string(prefixLedgerOrg):
				if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &a) }); err != nil {
					return err
				}
				rest := k[len(prefixLedgerOrg):]
				org := string(rest[:len(rest)-3])
				if s.Orgs[org] == nil {
					s.Orgs[org] = map[int]privacy.Amount{}
				}
				s.Orgs[org][int(binary.BigEndian.Uint16(rest[len(rest)-2:]))] = a
			}
		}
		return nil
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	return s, nil
}

// CachedAnswer implements node.Ledger.
func (db *DB) CachedAnswer(ctx context.Context, key string) (*node.NoisyTable, bool, error) {
	const op = "storage.CachedAnswer"
	if err := db.begin(ctx, op); err != nil {
		return nil, false, err
	}
	defer db.lc.RUnlock()
	var t *node.NoisyTable
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append(append([]byte(nil), prefixLedgerCache...), key...))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		t = new(node.NoisyTable)
		return item.Value(func(v []byte) error { return json.Unmarshal(v, t) })
	})
	if err != nil {
		return nil, false, node.E(op, node.Internal, "%w", err)
	}
	return t, t != nil, nil
}

// CacheAnswer implements node.Ledger.
func (db *DB) CacheAnswer(ctx context.Context, key string, t *node.NoisyTable, ttl time.Duration) error {
	const op = "storage.CacheAnswer"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	b, err := json.Marshal(t)
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	err = db.bdb.Update(func(txn *badger.Txn) error {
		e := badger.NewEntry(append(append([]byte(nil), prefixLedgerCache...), key...), b).WithTTL(ttl)
		return txn.SetEntry(e)
	})
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}
