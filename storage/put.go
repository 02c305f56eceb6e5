package storage

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
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
// empty by, more than MaxBatch cases or a batch too large for one
// transaction; Conflict for a code that exists with other content in
// CreateOnly mode. On error nothing is written.
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
	for i, c := range cases {
		if c == nil {
			return res, node.E(op, node.Invalid, "case %d is nil", i+1)
		}
	}
	if err := db.begin(ctx, op); err != nil {
		return res, err
	}
	defer db.lc.RUnlock()
	db.mu.Lock()
	defer db.mu.Unlock()

	// Stage 1, in parallel: normalise, validate, encode, compare with the
	// stored version, seal. It reads a snapshot; db.mu keeps it current.
	gen, kek, err := db.keks.current()
	if err != nil {
		return res, node.E(op, node.Internal, "key-encryption key: %w", err)
	}
	b := &batch{db: db, cases: cases, mode: mode, by: by, now: db.Now().UTC(), gen: gen, kek: kek,
		out: make([]putOut, len(cases))}
	if err := b.prepare(); err != nil {
		return res, wrapOp(op, err)
	}
	if err := ctx.Err(); err != nil {
		return res, node.E(op, node.Unavailable, "%w", err)
	}

	// Stage 2: one transaction. The projection is updated meanwhile, on
	// the other core, and put back if the commit fails.
	projDone := db.updateProjection(cases, b.out)
	err = b.commit()
	if projDone != nil {
		<-projDone
		if err != nil {
			db.revertProjection(cases, b.out)
		}
	}
	if err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			return res, node.E(op, node.Invalid, "batch of %d cases too large for one transaction: split it into smaller batches", len(cases))
		}
		return res, wrapOp(op, err)
	}
	db.addCodes(cases, b.out)
	for i, c := range cases {
		o := &b.out[i]
		switch o.kind {
		case changeNone:
			res.Unchanged++
			continue
		case changeCreated:
			res.Created++
		default:
			res.Updated++
		}
		c.Version, c.UpdatedAt, c.UpdatedBy, c.IdentityErased = o.version, b.now, by, o.erased
	}
	db.notify(cases, b.out)
	return res, nil
}

type changeKind uint8

const (
	changeNone changeKind = iota
	changeCreated
	changeUpdated
)

// putOut is what stage 1 decided for one case.
type putOut struct {
	kind     changeKind
	version  int
	erased   bool
	key, val []byte // c/<code> and the new record
	histKey  []byte // h/<code>/<old version>, for an update
	histVal  []byte // the previous version, without its wrapped key
	old      []byte // the previous record, for OnChange and the ledger
	err      error
}

// batch is one PutCases call.
type batch struct {
	db    *DB
	cases []*node.Case
	mode  node.PutMode
	by    string
	now   time.Time
	gen   uint32
	kek   cipher.AEAD
	out   []putOut
}

// minChunk is the fewest cases a stage-1 worker takes: below it one
// goroutine does the whole batch.
const minChunk = 256

// prepare runs stage 1 over the batch in up to GOMAXPROCS workers, each on
// a contiguous chunk with its own read snapshot, and returns the first
// error in case order.
func (b *batch) prepare() error {
	n := len(b.cases)
	workers := max(1, min(runtime.GOMAXPROCS(0), n/minChunk))
	if workers == 1 {
		b.work(0, n)
	} else {
		var wg sync.WaitGroup
		per := (n + workers - 1) / workers
		for from := 0; from < n; from += per {
			wg.Go(func() { b.work(from, min(from+per, n)) })
		}
		wg.Wait()
	}
	seen := make(map[string]int, n)
	for i, c := range b.cases {
		if err := b.out[i].err; err != nil {
			return err
		}
		if j, dup := seen[c.Code]; dup {
			return node.E("", node.Invalid, "case %d: case code %s already given by case %d of the batch", i+1, printableCode(c.Code), j+1)
		}
		seen[c.Code] = i
	}
	return nil
}

// worker holds one stage-1 goroutine's scratch space.
type worker struct {
	b      *batch
	txn    *badger.Txn
	random []byte // fresh randomness for identity keys and nonces
	arena  arena
	body   []byte
	id     []byte
	aad    []byte
	wrap   []byte
	sealed []byte
	rec    []byte
}

func (b *batch) work(from, to int) {
	w := &worker{b: b, txn: b.db.bdb.NewTransaction(false)}
	defer w.txn.Discard()
	n := 0
	for _, c := range b.cases[from:to] {
		if !c.Identity.IsZero() {
			n++
		}
	}
	// Per case with identity: an identity key and two nonces.
	w.random = make([]byte, n*(caseKeyLen+2*gcmNonceLen))
	rand.Read(w.random)
	for i := from; i < to; i++ {
		c := b.cases[i]
		c.Normalize()
		if err := c.Validate(b.db.Codebook); err != nil {
			b.out[i].err = node.E("", node.Invalid, "case %d (%s): %w", i+1, printableCode(c.Code), err)
			return
		}
		if err := w.put(c, &b.out[i]); err != nil {
			b.out[i].err = fmt.Errorf("case %d (%s): %w", i+1, printableCode(c.Code), err)
			return
		}
	}
}

// take returns the next n random bytes. A case needing a new identity key
// after prepare counted none (an identity key lost to a retired KEK) draws
// fresh ones.
func (w *worker) take(n int) []byte {
	if len(w.random) < n {
		return randomBytes(n)
	}
	b := w.random[:n:n]
	w.random = w.random[n:]
	return b
}

var errKeyNotStored = errors.New("no identity key stored")

// put decides what to write for c and encodes it into o.
func (w *worker) put(c *node.Case, o *putOut) error {
	b := w.b
	w.body = appendBody(w.body[:0], c)
	hasID := !c.Identity.IsZero()
	w.id = w.id[:0]
	if hasID {
		w.id = appendIdentity(w.id, &c.Identity)
	}
	o.key = w.arena.copy(caseKey(w.rec[:0], c.Code))

	version, erased := 1, false
	var idKey, wrapped []byte // the case's identity key and its wrapped form
	var keyErr error = errKeyNotStored
	var item *badger.Item
	err := badger.ErrKeyNotFound
	if b.db.codes.mayHave(c.Code) {
		item, err = w.txn.Get(o.key)
	}
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		o.kind = changeCreated
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
		if h.wrapped != nil {
			wrapped = h.wrapped
			idKey, keyErr = b.db.keks.unwrapCaseKey(h.wrapped, c.Code)
			if keyErr != nil && !errors.Is(keyErr, errKeyUnavailable) {
				return keyErr
			}
		}
		wasErased := h.flags&flagErased != 0
		same := bytes.Equal(h.body, w.body)
		if same {
			switch {
			case h.sealed == nil:
				same = !hasID || (wasErased && b.mode == node.CreateOnly)
			case !hasID || keyErr != nil:
				same = false
			default:
				plain, err := openIdentity(idKey, h.sealed, c.Code)
				same = err == nil && bytes.Equal(plain, w.id)
			}
		}
		if same {
			o.kind, o.version, o.erased = changeNone, h.version, wasErased
			return nil
		}
		if b.mode == node.CreateOnly {
			return node.E("", node.Conflict, "case code %s is already stored with other content", printableCode(c.Code))
		}
		o.kind, o.old = changeUpdated, old
		version = h.version + 1
		erased = wasErased && !hasID
		hist := h
		hist.flags &^= flagKey
		hist.wrapped = nil
		o.histKey = w.arena.copy(historyKey(w.rec[:0], c.Code, h.version))
		o.histVal = w.arena.copy(appendRecord(w.rec[:0], &hist))
	}

	rec := recordHeader{version: version, updatedAt: b.now, updatedBy: b.by, body: w.body}
	if erased {
		rec.flags |= flagErased
	}
	if hasID && keyErr != nil {
		// A new identity key, wrapped under the current KEK.
		idKey = w.take(caseKeyLen)
		w.wrap = wrapCaseKey(w.wrap[:0], b.gen, b.kek, idKey, w.take(gcmNonceLen), c.Code, w.aad)
		wrapped = w.wrap
	}
	if hasID {
		sealed, err := sealIdentity(w.sealed[:0], idKey, w.take(gcmNonceLen), w.id, c.Code, w.aad)
		if err != nil {
			return err
		}
		w.sealed = sealed
		rec.flags |= flagSealed
		rec.sealed = sealed
	}
	if wrapped != nil {
		// Kept even without an identity in this version: earlier versions
		// need it.
		rec.flags |= flagKey
		rec.wrapped = wrapped
	}
	o.val = w.arena.copy(appendRecord(w.rec[:0], &rec))
	o.version, o.erased = version, erased
	return nil
}

// commit writes stage 1's records, the case count and any budget year
// move in one transaction.
func (b *batch) commit() error {
	db := b.db
	type move struct{ src, dst int }
	var moves []move
	for i := range b.out {
		if o := &b.out[i]; o.kind == changeUpdated {
			if src, dst := recordYear(o.old), b.cases[i].RegistrationYear(); src != dst && src != 0 {
				moves = append(moves, move{src, dst})
			}
		}
	}
	if len(moves) > 0 {
		// A case moved to another registration year: the ledger's rule
		// applies in this transaction. The ledger's lock is taken before
		// the transaction starts, so that it reads the spending of every
		// charge committed before it and no charge commits meanwhile.
		db.ledgerMu.Lock()
		defer db.ledgerMu.Unlock()
	}
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	created := 0
	for i := range b.out {
		o := &b.out[i]
		switch o.kind {
		case changeNone:
			continue
		case changeCreated:
			created++
		case changeUpdated:
			if err := txn.Set(o.histKey, o.histVal); err != nil {
				return err
			}
		}
		if err := txn.Set(o.key, o.val); err != nil {
			return err
		}
	}
	if created > 0 {
		n, err := readCount(txn)
		if err != nil {
			return err
		}
		if err := txn.Set(keyCount, binary.BigEndian.AppendUint64(nil, n+uint64(created))); err != nil {
			return err
		}
	}
	for _, m := range moves {
		if err := db.moveYearTxn(txn, m.src, m.dst); err != nil {
			return err
		}
	}
	return txn.Commit()
}

// addCodes adds the batch's new codes to the code filter, rebuilding it
// larger when it is full.
func (db *DB) addCodes(cases []*node.Case, out []putOut) {
	for i, c := range cases {
		if out[i].kind == changeCreated {
			db.codes.add(c.Code)
		}
	}
	if db.codes.full() {
		f, err := buildCodeFilter(db.bdb, MaxBatch)
		if err != nil {
			// Keep the full filter: more lookups, never a wrong answer.
			db.Logger.Error("rebuild the case-code filter", zap.Error(err))
			return
		}
		db.codes = f
	}
}

// recordYear returns the registration year of a stored record, or 0.
func recordYear(v []byte) int {
	h, err := parseRecord(v)
	if err != nil {
		return 0
	}
	d := decoder{b: h.body, s: string(h.body)}
	d.str() // code
	return node.Date(d.str()).Year()
}

// updateProjection applies the batch's creations and updates to the
// projection in a goroutine and returns the channel closed when it is
// done, or nil without a projection. Queries may see the batch a moment
// before its commit returns.
func (db *DB) updateProjection(cases []*node.Case, out []putOut) <-chan struct{} {
	if db.proj == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, c := range cases {
			if out[i].kind != changeNone {
				db.proj.Upsert(c)
			}
		}
	}()
	return done
}

// revertProjection undoes updateProjection after a failed commit.
func (db *DB) revertProjection(cases []*node.Case, out []putOut) {
	for i, c := range cases {
		switch out[i].kind {
		case changeCreated:
			db.proj.Delete(c.Code)
		case changeUpdated:
			old, err := db.decodeCase(nil, out[i].old, false, nil)
			if err != nil {
				db.Logger.Error("restore the projection after a failed write", zap.Error(err))
				continue
			}
			db.proj.Upsert(old)
		}
	}
}

// notify calls OnChange for every case created or updated, after commit.
func (db *DB) notify(cases []*node.Case, out []putOut) {
	if db.OnChange == nil {
		return
	}
	for i, c := range cases {
		o := &out[i]
		if o.kind == changeNone {
			continue
		}
		var old *node.Case
		if o.old != nil {
			var err error
			if old, err = db.decodeCase(nil, o.old, false, nil); err != nil {
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
