package storage

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// PutCases validates and writes cases in one atomic transaction, as by.
// Each case is normalised in place (node.Case.Normalize) and validated
// against the codebook; on success the Version, UpdatedAt, UpdatedBy and
// IdentityErased of every created or updated case are set to what was
// stored. A case identical to the stored one (ignoring those four fields)
// is left unchanged and gets no new version. In CreateOnly mode, a case
// whose stored identity was erased and that differs from it only by its
// identity is also left unchanged, so re-importing an old file does not
// bring an erased identity back.
//
// Returns Invalid for a case that fails validation, a code given twice, an
// empty by, or more than MaxBatch cases; Conflict for a code that exists
// with other content in CreateOnly mode. On error nothing is written.
func (db *DB) PutCases(ctx context.Context, cases []*node.Case, mode node.PutMode, by string) (node.PutResult, error) {
	const op = "storage.PutCases"
	var res node.PutResult
	switch {
	case by == "":
		return res, node.E(op, node.Invalid, "no author (by) given")
	case len(cases) > MaxBatch:
		return res, node.E(op, node.Invalid, "%d cases in one batch: at most %d", len(cases), MaxBatch)
	case mode != node.CreateOnly && mode != node.Upsert:
		return res, node.E(op, node.Invalid, "unknown put mode %d", mode)
	}
	if err := db.begin(ctx, op); err != nil {
		return res, err
	}
	defer db.lc.RUnlock()

	if err := db.prepare(cases); err != nil {
		return res, wrapOp(op, err)
	}

	db.mu.Lock()
	defer db.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return res, node.E(op, node.Unavailable, "%w", err)
	}
	w, err := db.newBatchWriter(cases, mode, by)
	if err != nil {
		return res, wrapOp(op, err)
	}
	defer w.txn.Discard()
	for i, c := range cases {
		if err := w.put(i, c); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) {
				return res, node.E(op, node.Invalid, "batch too large for one transaction at case %d of %d: split it into smaller batches", i+1, len(cases))
			}
			return res, wrapOp(op, fmt.Errorf("case %d (%s): %w", i+1, c.Code, err))
		}
	}
	if err := w.finish(); err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			return res, node.E(op, node.Invalid, "batch of %d cases too large for one transaction: split it into smaller batches", len(cases))
		}
		return res, node.E(op, node.Internal, "commit: %w", err)
	}
	for i, c := range cases {
		ch := &w.changes[i]
		if ch.kind == changeNone {
			res.Unchanged++
			continue
		}
		if ch.kind == changeCreated {
			res.Created++
		} else {
			res.Updated++
		}
		c.Version, c.UpdatedAt, c.UpdatedBy, c.IdentityErased = ch.version, w.now, by, ch.erased
	}
	db.notify(cases, w.changes)
	return res, nil
}

// prepare normalises and validates every case and checks that codes are
// unique in the batch.
func (db *DB) prepare(cases []*node.Case) error {
	seen := make(map[string]int, len(cases))
	for i, c := range cases {
		if c == nil {
			return node.E("", node.Invalid, "case %d is nil", i+1)
		}
		c.Normalize()
		if err := c.Validate(db.Codebook); err != nil {
			return node.E("", node.Invalid, "case %d (%s): %w", i+1, printableCode(c.Code), err)
		}
		if j, dup := seen[c.Code]; dup {
			return node.E("", node.Invalid, "case %d: case code %s already given by case %d of the batch", i+1, c.Code, j+1)
		}
		seen[c.Code] = i
	}
	return nil
}

// printableCode returns a case code fit for an error message: codes are
// not identity fields, but an invalid one may hold anything.
func printableCode(code string) string {
	if len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) {
		return "an invalid code"
	}
	return fmt.Sprintf("%q", code)
}

type changeKind uint8

const (
	changeNone changeKind = iota
	changeCreated
	changeUpdated
)

type change struct {
	kind    changeKind
	version int
	erased  bool
	old     []byte // the previous version's record, for OnChange
}

// batchWriter writes one PutCases batch in one transaction.
type batchWriter struct {
	db      *DB
	txn     *badger.Txn
	mode    node.PutMode
	by      string
	now     time.Time
	gen     uint32
	kek     cipher.AEAD
	random  []byte // fresh randomness for keys and nonces
	arena   arena
	scratch struct{ body, id, key, aad, wrap, sealed, rec []byte }
	created int
	changes []change
}

func (db *DB) newBatchWriter(cases []*node.Case, mode node.PutMode, by string) (*batchWriter, error) {
	gen, kek, err := db.keks.current()
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	w := &batchWriter{
		db: db, txn: db.bdb.NewTransaction(true), mode: mode, by: by,
		now: db.Now().UTC(), gen: gen, kek: kek, changes: make([]change, len(cases)),
	}
	n := 0
	for _, c := range cases {
		if !c.Identity.IsZero() {
			n++
		}
	}
	// Per case with identity: an identity key and two nonces.
	w.random = make([]byte, n*(caseKeyLen+2*gcmNonceLen))
	rand.Read(w.random)
	return w, nil
}

func (w *batchWriter) take(n int) []byte {
	b := w.random[:n:n]
	w.random = w.random[n:]
	return b
}

var errKeyNotStored = errors.New("no identity key stored")

// put writes case i of the batch.
func (w *batchWriter) put(i int, c *node.Case) error {
	txn := w.txn
	ch := &w.changes[i]
	w.scratch.body = appendBody(w.scratch.body[:0], c)
	hasID := !c.Identity.IsZero()
	w.scratch.id = w.scratch.id[:0]
	if hasID {
		w.scratch.id = appendIdentity(w.scratch.id, &c.Identity)
	}
	ck := w.arena.copy(caseKey(w.scratch.key[:0], c.Code))

	version, erased := 1, false
	var idKey []byte
	item, err := txn.Get(ck)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		ch.kind = changeCreated
	case err != nil:
		return err
	default:
		var old []byte
		if err := item.Value(func(v []byte) error { old = w.arena.copy(v); return nil }); err != nil {
			return err
		}
		h, err := parseRecord(old)
		if err != nil {
			return err
		}
		wasErased := h.flags&flagErased != 0
		same := bytes.Equal(h.body, w.scratch.body)
		if same {
			switch {
			case h.sealed == nil:
				same = !hasID || (wasErased && w.mode == node.CreateOnly)
			case !hasID:
				same = false
			default:
				idKey, err = w.loadKey(c.Code)
				switch {
				case err == nil:
					plain, err := openIdentity(idKey, h.sealed, c.Code)
					same = err == nil && bytes.Equal(plain, w.scratch.id)
				case errors.Is(err, errKeyNotStored), errors.Is(err, errKeyUnavailable):
					same = false
				default:
					return err
				}
			}
		}
		if same {
			ch.kind, ch.version, ch.erased = changeNone, h.version, wasErased
			return nil
		}
		if w.mode == node.CreateOnly {
			return node.E("", node.Conflict, "case code %s is already stored with other content", c.Code)
		}
		ch.kind, ch.old = changeUpdated, old
		version = h.version + 1
		erased = wasErased && !hasID
		if err := txn.Set(w.arena.copy(historyKey(w.scratch.key[:0], c.Code, h.version)), old); err != nil {
			return err
		}
	}

	rec := recordHeader{version: version, updatedAt: w.now, updatedBy: w.by, body: w.scratch.body}
	if erased {
		rec.flags |= flagErased
	}
	if hasID {
		if idKey == nil && ch.kind == changeUpdated {
			idKey, err = w.loadKey(c.Code)
			if err != nil && !errors.Is(err, errKeyNotStored) && !errors.Is(err, errKeyUnavailable) {
				return err
			}
		}
		if idKey == nil {
			// A new identity key, wrapped under the current KEK.
			idKey = w.take(caseKeyLen)
			wrapped := wrapCaseKey(w.scratch.wrap[:0], w.gen, w.kek, idKey, w.take(gcmNonceLen), c.Code, w.scratch.aad)
			w.scratch.wrap = wrapped
			if err := txn.Set(w.arena.copy(wrappedKeyKey(w.scratch.key[:0], c.Code)), w.arena.copy(wrapped)); err != nil {
				return err
			}
		}
		sealed, err := sealIdentity(w.scratch.sealed[:0], idKey, w.take(gcmNonceLen), w.scratch.id, c.Code, w.scratch.aad)
		if err != nil {
			return err
		}
		w.scratch.sealed = sealed
		rec.flags |= flagSealed
		rec.sealed = sealed
	}
	w.scratch.rec = appendRecord(w.scratch.rec[:0], &rec)
	if err := txn.Set(ck, w.arena.copy(w.scratch.rec)); err != nil {
		return err
	}
	ch.version, ch.erased = version, erased
	if ch.kind == changeCreated {
		w.created++
	}
	return nil
}

// loadKey returns the identity key of a stored case: errKeyNotStored when
// it has none, errKeyUnavailable when its KEK generation was retired.
func (w *batchWriter) loadKey(code string) ([]byte, error) {
	return loadCaseKey(w.txn, &w.db.keks, code)
}

func loadCaseKey(txn *badger.Txn, k *keks, code string) ([]byte, error) {
	item, err := txn.Get(wrappedKeyKey(nil, code))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, errKeyNotStored
	}
	if err != nil {
		return nil, err
	}
	var key []byte
	err = item.Value(func(v []byte) error {
		key, err = k.unwrapCaseKey(v, code)
		return err
	})
	return key, err
}

// finish updates the case count and commits.
func (w *batchWriter) finish() error {
	if w.created > 0 {
		n, err := readCount(w.txn)
		if err != nil {
			return err
		}
		if err := w.txn.Set(keyCount, binary.BigEndian.AppendUint64(nil, n+uint64(w.created))); err != nil {
			return err
		}
	}
	return w.txn.Commit()
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

// notify calls OnChange for every case created or updated.
func (db *DB) notify(cases []*node.Case, changes []change) {
	if db.OnChange == nil {
		return
	}
	for i, c := range cases {
		ch := &changes[i]
		if ch.kind == changeNone {
			continue
		}
		var old *node.Case
		if ch.old != nil {
			var err error
			if old, err = db.decodeCase(nil, ch.old, false, nil); err != nil {
				db.Logger.Error("decode previous version for OnChange", zap.Error(err))
				old = nil
			}
		}
		cur := *c
		cur.Identity = node.Identity{}
		db.OnChange(old, &cur)
	}
}

// arena hands out byte slices that stay valid until the transaction
// commits, in large blocks.
type arena struct{ buf []byte }

func (a *arena) copy(b []byte) []byte {
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(len(b), 256<<10))
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[n : n+len(b) : n+len(b)]
}

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
		var idKey keyCache
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
		return cur.Value(func(v []byte) error {
			c, err := db.decodeCase(txn, v, withIdentity, &idKey)
			out = append(out, c)
			return err
		})
	})
	if err != nil {
		return nil, wrapOp(op, err)
	}
	return out, nil
}

// keyCache holds a case's identity key once loaded, across the versions of
// one case.
type keyCache struct {
	loaded bool
	key    []byte
	err    error
}

// decodeCase decodes a stored version; with withIdentity it opens the
// sealed identity. An identity whose key is gone (erased, or wrapped under a
// retired KEK generation, as in a backup restored after an erase) reads as
// erased.
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
	if !withIdentity || h.sealed == nil {
		return c, nil
	}
	if !kc.loaded {
		kc.key, kc.err = loadCaseKey(txn, &db.keks, c.Code)
		kc.loaded = true
	}
	var plain []byte
	err = kc.err
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
