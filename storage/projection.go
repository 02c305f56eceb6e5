package storage

import (
	"context"
	"path/filepath"
	"runtime/debug"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage/columnar"
)

var _ node.Aggregator = (*DB)(nil)

// openProjection builds the columnar projection of every stored case's
// queryable fields, which Aggregate reads; writes keep it current (see
// notify). It runs in Open.
func (db *DB) openProjection(ctx context.Context) error {
	p := columnar.New(db.Codebook)
	storeDir, err := filepath.Abs(filepath.Join(db.Dir, StoreDir))
	if err != nil {
		storeDir = ""
	}
	// The rebuild decodes every case once and keeps only the projection:
	// collect its garbage eagerly, and hand back the table pages it read as
	// it goes, so that opening a large store does not peak far above what
	// the open node then holds.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	err = db.bdb.View(func(txn *badger.Txn) error {
		prefix := caseKey(nil, "")
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256, Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Seek(prefix); it.Valid(); it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return node.E("", node.Unavailable, "%w", err)
				}
				if n%(1<<17) == 0 && storeDir != "" {
					releaseMappedPages(storeDir)
				}
			}
			err := it.Item().Value(func(v []byte) error {
				var kc keyCache
				c, err := db.decodeCase(txn, v, false, &kc)
				if err != nil {
					return err
				}
				p.Upsert(c)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	db.proj = p
	if storeDir != "" {
		releaseMappedPages(storeDir)
	}
	return nil
}

// Aggregate implements node.Aggregator over the in-memory projection.
func (db *DB) Aggregate(q *node.Query, opt node.AggregateOptions) (*node.ExactTable, error) {
	const op = "storage.Aggregate"
	db.lc.RLock()
	p := db.proj
	db.lc.RUnlock()
	if p == nil {
		return nil, node.E(op, node.Unavailable, "the store is not open")
	}
	return p.Aggregate(q, columnar.Options{ConsentOnly: opt.ConsentOnly, Bound: opt.Bound, MaxCells: opt.MaxCells})
}

// ProjectionBytes returns the projection's size in memory, for benchmarks.
func (db *DB) ProjectionBytes() int {
	db.lc.RLock()
	defer db.lc.RUnlock()
	if db.proj == nil {
		return 0
	}
	return db.proj.Bytes()
}
