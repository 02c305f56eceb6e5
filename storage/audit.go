package storage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
)

// Audit log keys: a/<seq, 8 bytes big-endian> holds an entry's JSON;
// meta/audit_head the newest sequence number and hash.
var (
	prefixAudit  = []byte("a/")
	keyAuditHead = []byte("meta/audit_head")
)

var _ node.AuditLog = (*DB)(nil)

func auditKey(seq uint64) []byte {
	k := make([]byte, len(prefixAudit)+8)
	copy(k, prefixAudit)
	binary.BigEndian.PutUint64(k[len(prefixAudit):], seq)
	return k
}

// AuditHash is the hash that chains entry e to its predecessor: SHA-256 of
// a domain tag, the previous hash and the entry's fields (not its Hash),
// each length-prefixed so no two entries encode alike.
func AuditHash(e *node.AuditEntry) []byte {
	h := sha256.New()
	h.Write([]byte("ctfed audit v1\x00"))
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], e.Seq)
	h.Write(n[:])
	field(e.Prev)
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.Actor))
	field([]byte(e.Action))
	field([]byte(e.Subject))
	field([]byte(e.Detail))
	return h.Sum(nil)
}

// Append adds e to the audit log, setting its Seq, Time (if zero), Prev and
// Hash; the entry is synced to disk before Append returns.
func (db *DB) Append(ctx context.Context, e *node.AuditEntry) error {
	const op = "storage.AuditAppend"
	if e.Actor == "" || e.Action == "" {
		return node.E(op, node.Invalid, "an audit entry needs an actor and an action")
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	// Appends are serialised by their own lock, so that sequence numbers
	// and the chain follow commit order even while an import holds db.mu.
	db.auditMu.Lock()
	defer db.auditMu.Unlock()
	err := db.bdb.Update(func(txn *badger.Txn) error {
		head, err := readAuditHead(txn)
		if err != nil {
			return err
		}
		if e.Time.IsZero() {
			e.Time = db.Now().UTC()
		}
		e.Time = e.Time.UTC()
		e.Seq = head.Seq + 1
		e.Prev = head.Hash
		e.Hash = AuditHash(e)
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := txn.Set(auditKey(e.Seq), b); err != nil {
			return err
		}
		hb, err := json.Marshal(node.AuditHead{Seq: e.Seq, Hash: e.Hash})
		if err != nil {
			return err
		}
		return txn.Set(keyAuditHead, hb)
	})
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}

func readAuditHead(txn *badger.Txn) (node.AuditHead, error) {
	var head node.AuditHead
	item, err := txn.Get(keyAuditHead)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return head, nil
	}
	if err != nil {
		return head, err
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &head) })
	return head, err
}

// AuditHead returns the newest entry's sequence number and hash (zero for
// an empty log).
func (db *DB) AuditHead(ctx context.Context) (node.AuditHead, error) {
	const op = "storage.AuditHead"
	if err := db.begin(ctx, op); err != nil {
		return node.AuditHead{}, err
	}
	defer db.lc.RUnlock()
	var head node.AuditHead
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		head, err = readAuditHead(txn)
		return err
	})
	if err != nil {
		return head, node.E(op, node.Internal, "%w", err)
	}
	return head, nil
}

// AuditEntries calls fn for every entry with Seq ≥ from, oldest first. It
// stops at fn's first error and returns it.
func (db *DB) AuditEntries(ctx context.Context, from uint64, fn func(*node.AuditEntry) error) error {
	const op = "storage.AuditEntries"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: prefixAudit})
		defer it.Close()
		for it.Seek(auditKey(from)); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return node.E(op, node.Unavailable, "%w", err)
			}
			var e node.AuditEntry
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return node.E(op, node.Internal, "audit entry %x: %w", it.Item().Key(), err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return nil
	})
}

// AuditProblem is one defect found by VerifyAudit.
type AuditProblem struct {
	Seq uint64
	Msg string
}

func (p AuditProblem) Error() string { return fmt.Sprintf("audit entry %d: %s", p.Seq, p.Msg) }

// VerifyAudit checks the whole audit log: every entry's hash, its link to
// its predecessor, consecutive sequence numbers, and that the stored head is
// the last entry. Each head in signed (heads this node has signed and others
// kept) must still be in the log with the same hash, so truncation below a
// signed head is detected. It returns the entries checked and every problem.
func (db *DB) VerifyAudit(ctx context.Context, signed []node.AuditHead) (int, []AuditProblem, error) {
	var (
		problems []AuditProblem
		n        int
		prevSeq  uint64
		prevHash []byte
		hashes   = map[uint64][]byte{}
	)
	want := map[uint64]bool{}
	for _, h := range signed {
		want[h.Seq] = true
	}
	err := db.AuditEntries(ctx, 0, func(e *node.AuditEntry) error {
		n++
		if e.Seq != prevSeq+1 {
			problems = append(problems, AuditProblem{e.Seq, fmt.Sprintf("follows entry %d: entries are missing or out of order", prevSeq)})
		}
		if string(e.Prev) != string(prevHash) {
			problems = append(problems, AuditProblem{e.Seq, "does not link to the entry before it (an entry was altered, removed or reordered)"})
		}
		if got := AuditHash(e); string(got) != string(e.Hash) {
			problems = append(problems, AuditProblem{e.Seq, "its contents do not match its hash (altered)"})
		}
		if want[e.Seq] {
			hashes[e.Seq] = e.Hash
		}
		prevSeq, prevHash = e.Seq, e.Hash
		return nil
	})
	if err != nil {
		return n, problems, err
	}
	head, err := db.AuditHead(ctx)
	if err != nil {
		return n, problems, err
	}
	if head.Seq != prevSeq || string(head.Hash) != string(prevHash) {
		problems = append(problems, AuditProblem{head.Seq, fmt.Sprintf("the log's head says entry %d but the last entry is %d (the tail was truncated or replaced)", head.Seq, prevSeq)})
	}
	for _, h := range signed {
		got, ok := hashes[h.Seq]
		switch {
		case !ok:
			problems = append(problems, AuditProblem{h.Seq, "a head this node signed is gone from the log (truncated)"})
		case string(got) != string(h.Hash):
			problems = append(problems, AuditProblem{h.Seq, "differs from the head this node signed (rewritten)"})
		}
	}
	return n, problems, nil
}

// Received audit heads: hr/<peer>\x00<seq u64> holds the hash of a head that
// peer signed in an answer to this node.
var prefixHeads = []byte("hr/")

// KeepHead keeps an audit head that peer signed in an answer to this node,
// so that the peer's operator can later prove its log was not truncated
// below it.
func (db *DB) KeepHead(ctx context.Context, peer string, head node.AuditHead) error {
	const op = "storage.KeepHead"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	k := append(append(append([]byte(nil), prefixHeads...), peer...), 0)
	k = binary.BigEndian.AppendUint64(k, head.Seq)
	if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(k, head.Hash) }); err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}

// Heads returns the audit heads kept, by peer, oldest first.
func (db *DB) Heads(ctx context.Context) (map[string][]node.AuditHead, error) {
	const op = "storage.Heads"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	out := map[string][]node.AuditHead{}
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefixHeads})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(prefixHeads):]
			if len(k) < 9 || k[len(k)-9] != 0 {
				continue
			}
			peer := string(k[:len(k)-9])
			h, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[peer] = append(out[peer], node.AuditHead{Seq: binary.BigEndian.Uint64(k[len(k)-8:]), Hash: h})
		}
		return nil
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	return out, nil
}
