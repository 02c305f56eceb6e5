package storage

import (
	"hash/maphash"
	"math/bits"

	"github.com/dgraph-io/badger/v4"
)

// codeFilter is an in-memory Bloom filter of the stored case codes, so that
// PutCases skips the badger lookup of a code that is certainly new (most of
// an import). It never forgets a code (cases are never deleted), is built at
// Open from the keys alone and grows by rebuilding. It is only used under
// db.mu: filled after each commit, read by PutCases' workers.
type codeFilter struct {
	seed     maphash.Seed
	bits     []uint64
	n        int // codes added
	capacity int // codes it holds at about 1% false positives
}

const (
	filterBitsPerCode = 10
	filterHashes      = 7
	minFilterCapacity = 1 << 16
)

func newCodeFilter(capacity int) *codeFilter {
	capacity = max(capacity, minFilterCapacity)
	words := (capacity*filterBitsPerCode + 63) / 64
	return &codeFilter{seed: maphash.MakeSeed(), bits: make([]uint64, words), capacity: capacity}
}

func (f *codeFilter) add(code string) { f.addHash(maphash.String(f.seed, code)) }

func (f *codeFilter) addHash(h1 uint64) {
	h2 := bits.RotateLeft64(h1, 32) | 1
	m := uint64(len(f.bits)) * 64
	for i := range uint64(filterHashes) {
		p := (h1 + i*h2) % m
		f.bits[p/64] |= 1 << (p % 64)
	}
	f.n++
}

// mayHave reports false only for a code never added.
func (f *codeFilter) mayHave(code string) bool {
	h1 := maphash.String(f.seed, code)
	h2 := bits.RotateLeft64(h1, 32) | 1
	m := uint64(len(f.bits)) * 64
	for i := range uint64(filterHashes) {
		p := (h1 + i*h2) % m
		if f.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether adding more codes would raise the false-positive
// rate above the target.
func (f *codeFilter) full() bool { return f.n >= f.capacity }

// buildCodeFilter reads every stored case code (keys only) into a filter
// with room for twice as many plus extra.
func buildCodeFilter(bdb *badger.DB, extra int) (*codeFilter, error) {
	var codes int
	err := bdb.View(func(txn *badger.Txn) error {
		n, err := readCount(txn)
		codes = int(n)
		return err
	})
	if err != nil {
		return nil, err
	}
	f := newCodeFilter(2*codes + extra)
	err = bdb.View(func(txn *badger.Txn) error {
		prefix := []byte(prefixCase)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			f.addHash(maphash.Bytes(f.seed, it.Item().Key()[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}
