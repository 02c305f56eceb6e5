package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
)

// mustAudit appends n entries and returns the heads after each.
func mustAudit(tb testing.TB, db *DB, n int) []node.AuditHead {
	tb.Helper()
	ctx := context.Background()
	var heads []node.AuditHead
	for i := 1; i <= n; i++ {
		if err := db.Append(ctx, &node.AuditEntry{Actor: "tester", Action: "test.action", Subject: fmt.Sprint(i)}); err != nil {
			tb.Fatal(err)
		}
		h, err := db.AuditHead(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		heads = append(heads, h)
	}
	return heads
}

// rawEntry reads and writes the stored form of entry seq directly, as an
// attacker with the store key could.
func rawEntry(tb testing.TB, db *DB, seq uint64) *node.AuditEntry {
	tb.Helper()
	var e node.AuditEntry
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(auditKey(seq))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &e) })
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &e
}

func writeRaw(tb testing.TB, db *DB, fn func(txn *badger.Txn) error) {
	tb.Helper()
	if err := db.bdb.Update(fn); err != nil {
		tb.Fatal(err)
	}
}

func setEntry(txn *badger.Txn, seq uint64, e *node.AuditEntry) error {
	b, _ := json.Marshal(e)
	return txn.Set(auditKey(seq), b)
}

func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, db *DB)
		want   string
	}{
		{"OK", func(*testing.T, *DB) {}, ""},
		{"Modified", func(t *testing.T, db *DB) {
			e := rawEntry(t, db, 3)
			e.Detail = "changed"
			writeRaw(t, db, func(txn *badger.Txn) error { return setEntry(txn, 3, e) })
		}, "altered"},
		{"ModifiedAndRehashed", func(t *testing.T, db *DB) {
			e := rawEntry(t, db, 3)
			e.Detail = "changed"
			e.Hash = AuditHash(e)
			writeRaw(t, db, func(txn *badger.Txn) error { return setEntry(txn, 3, e) })
		}, "does not link"},
		{"Removed", func(t *testing.T, db *DB) {
			writeRaw(t, db, func(txn *badger.Txn) error { return txn.Delete(auditKey(3)) })
		}, "missing or out of order"},
		{"Reordered", func(t *testing.T, db *DB) {
			a, b := rawEntry(t, db, 2), rawEntry(t, db, 3)
			writeRaw(t, db, func(txn *badger.Txn) error {
				if err := setEntry(txn, 2, b); err != nil {
					return err
				}
				return setEntry(txn, 3, a)
			})
		}, "out of order"},
		{"TruncatedTail", func(t *testing.T, db *DB) {
			writeRaw(t, db, func(txn *badger.Txn) error { return txn.Delete(auditKey(5)) })
		}, "truncated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			mustAudit(t, db, 5)
			tt.tamper(t, db)
			n, problems, err := db.VerifyAudit(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, p := range problems {
				msgs = append(msgs, p.Error())
			}
			got := strings.Join(msgs, "; ")
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Fatalf("got problems %q in an intact log of %d entries", got, n)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("got %q, want a problem saying %q", got, tt.want)
			}
		})
	}
}

// TestAuditTruncatedBelowSignedHead: an attacker truncates the log and
// rewrites its head consistently; only a head the node signed (and a
// querier kept) reveals it.
func TestAuditTruncatedBelowSignedHead(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	heads := mustAudit(t, db, 6)
	writeRaw(t, db, func(txn *badger.Txn) error {
		for seq := uint64(4); seq <= 6; seq++ {
			if err := txn.Delete(auditKey(seq)); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(heads[2])
		return txn.Set(keyAuditHead, b)
	})
	_, problems, err := db.VerifyAudit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Fatalf("a consistent truncation is invisible without signed heads, got %v", problems)
	}
	_, problems, err = db.VerifyAudit(ctx, []node.AuditHead{heads[4]})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "signed is gone") {
		t.Fatalf("got %v, want the signed head reported missing", problems)
	}
}
