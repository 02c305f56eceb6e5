package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// Case returns the current version of the case with the given code, with
// its identity fields when withIdentity is true. Returns NotFound.
func (db *DB) Case(ctx context.Context, code string, withIdentity bool) (*node.Case, error) {
	const op = "storage.Case"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var c *node.Case
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(caseKey(nil, code))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return node.E("", node.NotFound, "no case %s", printableCode(code))
		}
		if err != nil {
			return err
		}
		var idKey keyCache
		return item.Value(func(v []byte) error {
			c, err = db.decodeCase(txn, v, withIdentity, &idKey)
			return err
		})
	})
	if err != nil {
		return nil, wrapOp(op, err)
	}
	return c, nil
}

// CaseHistory returns every stored version of a case, oldest first, with
// identity fields when withIdentity is true. Returns NotFound.
func (db *DB) CaseHistory(ctx context.Context, code string, withIdentity bool) ([]*node.Case, error) {
	const op = "storage.CaseHistory"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var out []*node.Case
	err := db.bdb.View(func(txn *badger.Txn) error {
		cur, err := txn.Get(caseKey(nil, code))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return node.E("", node.NotFound, "no case %s", printableCode(code))
		}
		if err != nil {
			return err
		}
		// The identity key is in the current record; earlier versions use it.
		var idKey keyCache
		var curCase *node.Case
		err = cur.Value(func(v []byte) error {
			curCase, err = db.decodeCase(txn, v, withIdentity, &idKey)
			return err
		})
		if err != nil {
			return err
		}
		prefix := historyPrefix(nil, code)
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16, Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				c, err := db.decodeCase(txn, v, withIdentity, &idKey)
				out = append(out, c)
				return err
			})
			if err != nil {
				return err
			}
		}
		out = append(out, curCase)
		return nil
	})
	if err != nil {
		return nil, wrapOp(op, err)
	}
	return out, nil
}

// keyCache holds a case's identity key once unwrapped from its current
// record, for the versions of the case read after it.
type keyCache struct {
	loaded bool
	key    []byte
	err    error
}

// decodeCase decodes a stored version; with withIdentity it opens the
// sealed identity with the key in v (a current record) or in kc (filled by
// the case's current record, read before its earlier versions). An
// identity whose key is gone (erased, or wrapped under a retired KEK
// generation, as in a backup restored after an erase) reads as erased. txn
// is unused (the key travels in the record) and may be nil; kc may be nil
// without withIdentity.
func (db *DB) decodeCase(txn *badger.Txn, v []byte, withIdentity bool, kc *keyCache) (*node.Case, error) {
	h, err := parseRecord(v)
	if err != nil {
		return nil, err
	}
	c := &node.Case{}
	if err := decodeBody(h.body, c); err != nil {
		return nil, err
	}
	c.Version, c.UpdatedAt, c.UpdatedBy = h.version, h.updatedAt, h.updatedBy
	c.IdentityErased = h.flags&flagErased != 0
	if !withIdentity {
		return c, nil
	}
	if !kc.loaded {
		kc.loaded = true
		kc.err = errKeyNotStored
		if h.wrapped != nil {
			kc.key, kc.err = db.keks.unwrapCaseKey(h.wrapped, c.Code)
		}
	}
	if h.sealed == nil {
		return c, nil
	}
	plain, err := []byte(nil), kc.err
	if err == nil {
		plain, err = openIdentity(kc.key, h.sealed, c.Code)
	}
	switch {
	case err == nil:
		if err := decodeIdentity(plain, &c.Identity); err != nil {
			return nil, err
		}
	case errors.Is(err, errKeyNotStored), errors.Is(err, errKeyUnavailable), errors.Is(err, errCorrupt):
		db.Logger.Warn("identity of a case cannot be opened: treated as erased",
			zap.String("case_code", c.Code), zap.Int("version", c.Version), zap.String("reason", err.Error()))
		c.IdentityErased = true
	default:
		return nil, err
	}
	return c, nil
}

// ListCases returns the cases matching f without identity fields, in code
// order, and how many match in all. Returns Invalid for a negative offset
// or limit.
func (db *DB) ListCases(ctx context.Context, f node.CaseFilter) ([]*node.Case, int, error) {
	const op = "storage.ListCases"
	if f.Offset < 0 || f.Limit < 0 {
		return nil, 0, node.E(op, node.Invalid, "negative offset or limit")
	}
	var out []*node.Case
	total := 0
	err := db.forEach(ctx, op, f.CodePrefix, false, func(c *node.Case) error {
		if !matches(c, &f) {
			return nil
		}
		if total >= f.Offset && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, c)
		}
		total++
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

func matches(c *node.Case, f *node.CaseFilter) bool {
	switch {
	case f.Status != "" && c.Status != f.Status,
		f.Year != 0 && c.RegistrationYear() != f.Year,
		f.Citizenship != "" && c.Citizenship != f.Citizenship:
		return false
	case f.ExploitationType != "":
		return slices.Contains(c.DimensionCodes("exploitation_type"), f.ExploitationType)
	}
	return true
}

// ForEachCase calls fn for the current version of every case, in code
// order, with identity fields when withIdentity is true. It stops at fn's
// first error and returns it.
func (db *DB) ForEachCase(ctx context.Context, withIdentity bool, fn func(*node.Case) error) error {
	return db.forEach(ctx, "storage.ForEachCase", "", withIdentity, fn)
}

// callerError carries an error returned by the caller's function.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

func (db *DB) forEach(ctx context.Context, op, codePrefix string, withIdentity bool, fn func(*node.Case) error) error {
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	err := db.bdb.View(func(txn *badger.Txn) error {
		prefix := caseKey(nil, codePrefix)
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256, Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Seek(prefix); it.Valid(); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return node.E("", node.Unavailable, "%w", err)
				}
			}
			var c *node.Case
			err := it.Item().Value(func(v []byte) error {
				var kc keyCache
				var err error
				c, err = db.decodeCase(txn, v, withIdentity, &kc)
				return err
			})
			if err != nil {
				return err
			}
			if err := fn(c); err != nil {
				return callerError{err}
			}
		}
		return nil
	})
	var ce callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		return wrapOp(op, err)
	}
	return nil
}

// CaseCount returns how many cases are stored.
func (db *DB) CaseCount(ctx context.Context) (int, error) {
	const op = "storage.CaseCount"
	if err := db.begin(ctx, op); err != nil {
		return 0, err
	}
	defer db.lc.RUnlock()
	var n uint64
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		n, err = readCount(txn)
		return err
	})
	if err != nil {
		return 0, wrapOp(op, err)
	}
	return int(n), nil
}

// printableCode returns a case code fit for an error message: codes are
// not identity fields, but an invalid one may hold anything.
func printableCode(code string) string {
	if len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) {
		return "an invalid code"
	}
	return fmt.Sprintf("%q", code)
}

func readCount(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(keyCount)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return errCorrupt
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}
