package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage/columnar"
)

// SchemaVersion is the version of the store's layout (key prefixes and
// value formats) this build reads and writes. It is stored at meta/schema.
const SchemaVersion = 1

// StoreDir is the name of the badger directory inside a node directory.
const StoreDir = "store"

// MaxBatch is the most cases one PutCases call accepts. A batch of MaxBatch
// cases of ordinary size fits one badger transaction with the default
// MemTableSize; importers split larger inputs into batches of this size.
const MaxBatch = 5000

// Keys of the meta/ prefix.
var (
	keySchema   = []byte("meta/schema")
	keyCodebook = []byte("meta/codebook")
	keyCount    = []byte("meta/count")
)

// Key prefixes of case data (see doc.go for the full table).
const (
	prefixCase    = "c/"
	prefixHistory = "h/"
)

// DB is the node's badger store: the case records with their history and
// sealed identities. Create it with NewDB, adjust the exported fields, then
// Open it; Close it when done. A DB is safe for concurrent use; writes are
// serialised.
type DB struct {
	// Dir is the node directory. The badger files live in Dir/store.
	Dir string
	// Keyring holds the store key and the key-encryption keys.
	Keyring *Keyring
	// Logger receives the store's and badger's log lines. Never a record.
	Logger *zap.Logger
	// Codebook validates every case written.
	Codebook *node.Codebook
	// SyncWrites makes every commit wait for fsync. Leave it on outside tests.
	SyncWrites bool
	// MemTableSize bounds one memtable and, through it, one transaction
	// (about 15% of it): MaxBatch cases need the default.
	MemTableSize int64
	// NumMemtables is how many memtables badger keeps in memory.
	NumMemtables int
	// ValueLogFileSize is the size of one value-log file.
	ValueLogFileSize int64
	// BlockCacheSize and IndexCacheSize are badger's caches, in bytes. The
	// index cache must be positive since the store is encrypted.
	BlockCacheSize, IndexCacheSize int64
	// NumCompactors is how many compaction goroutines badger runs (at least 2).
	NumCompactors int
	// OnChange, when set, is called after each committed write for every
	// case created or updated, in commit order, with the previous version
	// (nil for a new case) and the new one, both without identity. It must
	// not retain or modify them and must not call back into the DB's write
	// methods. A projection kept by OnChange is rebuilt on open with
	// ForEachCase.
	OnChange func(old, new *node.Case)
	// Now stamps new versions; time.Now by default.
	Now func() time.Time

	lc    sync.RWMutex // held shared by every operation, exclusively by Open, Close and Restore
	mu    sync.Mutex   // serialises writes
	bdb   *badger.DB
	keks  keks
	codes *codeFilter // the stored case codes, for PutCases (codes.go)

	proj     *columnar.Table // the queryable fields of every case, for Aggregate (projection.go)
	auditMu  sync.Mutex      // serialises audit appends (audit.go)
	ledgerMu sync.Mutex      // serialises budget charges and year moves (ledger.go)
}

var _ node.CaseStore = (*DB)(nil)

// NewDB returns a DB for the node directory dir, with defaults filled in.
func NewDB(dir string, kr *Keyring) *DB {
	return &DB{
		Dir:              dir,
		Keyring:          kr,
		Logger:           zap.NewNop(),
		Codebook:         node.DefaultCodebook(),
		SyncWrites:       true,
		MemTableSize:     64 << 20,
		NumMemtables:     2,
		ValueLogFileSize: 256 << 20,
		BlockCacheSize:   32 << 20,
		IndexCacheSize:   16 << 20,
		NumCompactors:    2,
		Now:              time.Now,
	}
}

// Open opens (or creates) the store and finishes any key rotation an
// interrupted erase left behind. Returns Invalid for a bad setting or a store
// of a newer schema, Permission when the store was made with other keys,
// Unavailable when another process holds the store.
func (db *DB) Open(ctx context.Context) error {
	const op = "storage.Open"
	if err := ctx.Err(); err != nil {
		return node.E(op, node.Unavailable, "%w", err)
	}
	db.lc.Lock()
	defer db.lc.Unlock()
	switch {
	case db.Dir == "":
		return node.E(op, node.Invalid, "no node directory")
	case db.Keyring == nil:
		return node.E(op, node.Invalid, "no keyring")
	case db.Codebook == nil:
		return node.E(op, node.Invalid, "no codebook")
	case db.IndexCacheSize <= 0:
		return node.E(op, node.Invalid, "IndexCacheSize must be positive for an encrypted store")
	case db.bdb != nil:
		return node.E(op, node.Invalid, "already open")
	}
	if db.Logger == nil {
		db.Logger = zap.NewNop()
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	db.keks = keks{kr: db.Keyring}
	bdb, err := badger.Open(db.options(filepath.Join(db.Dir, StoreDir)))
	if err != nil {
		return openError(op, db.Dir, err)
	}
	db.bdb = bdb
	if err := db.checkSchema(); err != nil {
		db.bdb.Close()
		db.bdb = nil
		return wrapOp(op, err)
	}
	if err := db.finishRotation(); err != nil {
		db.bdb.Close()
		db.bdb = nil
		return wrapOp(op, err)
	}
	if db.codes, err = buildCodeFilter(db.bdb, MaxBatch); err != nil {
		db.bdb.Close()
		db.bdb = nil
		return node.E(op, node.Internal, "read case codes: %w", err)
	}
	if err := db.openProjection(ctx); err != nil {
		db.bdb.Close()
		db.bdb = nil
		return wrapOp(op, err)
	}
	return nil
}

func (db *DB) options(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{db.Logger.Sugar()}).
		WithEncryptionKey(db.Keyring.storeKey()).
		WithIndexCacheSize(db.IndexCacheSize).
		WithBlockCacheSize(db.BlockCacheSize).
		WithSyncWrites(db.SyncWrites).
		WithMemTableSize(db.MemTableSize).
		WithValueThreshold(min(1<<20, db.MemTableSize*15/100/2)).
		WithNumMemtables(max(db.NumMemtables, 1)).
		WithValueLogFileSize(db.ValueLogFileSize).
		WithNumCompactors(max(db.NumCompactors, 2)).
		WithNumGoroutines(2).
		WithMetricsEnabled(false)
}

func openError(op, dir string, err error) error {
	switch {
	case errors.Is(err, badger.ErrEncryptionKeyMismatch):
		return node.E(op, node.Permission, "the store in %s was not created with this node's keys", dir)
	case strings.Contains(err.Error(), "Cannot acquire directory lock"):
		return node.E(op, node.Unavailable, "the store in %s is in use by another ctfed process", dir)
	case errors.Is(err, badger.ErrValueLogSize), errors.Is(err, badger.ErrInvalidEncryptionKey):
		return node.E(op, node.Invalid, "%w", err)
	}
	return node.E(op, node.Internal, "open store in %s: %w", dir, err)
}

// Close flushes and closes the store, after waiting for running operations.
func (db *DB) Close(ctx context.Context) error {
	db.lc.Lock()
	defer db.lc.Unlock()
	if db.bdb == nil {
		return nil
	}
	err := db.bdb.Close()
	db.bdb = nil
	if err != nil {
		return node.E("storage.Close", node.Internal, "%w", err)
	}
	return nil
}

// begin takes the shared lifecycle lock and checks the DB is open; the
// caller must call db.lc.RUnlock when done.
func (db *DB) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return node.E(op, node.Unavailable, "%w", err)
	}
	db.lc.RLock()
	if db.bdb == nil {
		db.lc.RUnlock()
		return node.E(op, node.Unavailable, "the store is not open")
	}
	return nil
}

// checkSchema writes meta/schema in a new store and refuses a store of a
// newer schema than this build's.
func (db *DB) checkSchema() error {
	return db.bdb.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			it := txn.NewIterator(badger.IteratorOptions{})
			it.Rewind()
			empty := !it.Valid()
			it.Close()
			if !empty {
				return node.E("", node.Internal, "the store has data but no schema version")
			}
			if err := txn.Set(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
				return err
			}
			return txn.Set(keyCodebook, []byte(db.Codebook.Version))
		case err != nil:
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(v) != 4 {
			return node.E("", node.Internal, "the store's schema version is corrupt")
		}
		return checkSchemaVersion("store", binary.BigEndian.Uint32(v))
	})
}

func checkSchemaVersion(what string, v uint32) error {
	switch {
	case v > SchemaVersion:
		return node.E("", node.Invalid, "%s schema %d is newer than this ctfed (%d): upgrade ctfed", what, v, SchemaVersion)
	case v < 1:
		return node.E("", node.Invalid, "%s schema %d is not a ctfed schema", what, v)
	}
	return nil
}

// Keys.

func caseKey(dst []byte, code string) []byte {
	dst = append(dst, prefixCase...)
	return append(dst, code...)
}

func historyPrefix(dst []byte, code string) []byte {
	dst = append(dst, prefixHistory...)
	dst = append(dst, code...)
	return append(dst, '/')
}

func historyKey(dst []byte, code string, version int) []byte {
	dst = historyPrefix(dst, code)
	return binary.BigEndian.AppendUint32(dst, uint32(version))
}

// badgerLogger sends badger's log lines to zap. Badger's informational lines
// go to debug.
type badgerLogger struct{ s *zap.SugaredLogger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.s.Errorf("badger: "+trimNL(f), a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.s.Warnf("badger: "+trimNL(f), a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.s.Debugf("badger: "+trimNL(f), a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.s.Debugf("badger: "+trimNL(f), a...) }

func trimNL(s string) string { return strings.TrimRight(s, "\n") }

// removeStore deletes a store directory; used when a restore fails.
func removeStore(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
