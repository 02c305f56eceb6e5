package storage

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// EraseIdentity destroys the identity fields of a case in every stored
// version, as by; the rest of the record stays and every version reads with
// IdentityErased set. The case's identity key is crypto-shredded: its
// wrapped copy is dropped from its record, a new KEK generation is made, every other case's
// identity key is re-wrapped under it, and the old generation is removed
// from the keyring, so the bytes badger still holds in old files (and any
// backup taken before) can no longer be opened.
//
// The steps are ordered so that a crash at any point is finished by the next
// Open: the keyring holds both generations until every identity key is
// re-wrapped. Returns NotFound for an unknown code, Invalid for an empty by.
func (db *DB) EraseIdentity(ctx context.Context, code string, by string) error {
	const op = "storage.EraseIdentity"
	if by == "" {
		return node.E(op, node.Invalid, "no author (by) given")
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	db.mu.Lock()
	defer db.mu.Unlock()

	// A rotation an earlier erase could not finish comes first, so that the
	// keyring holds exactly one generation below the new one.
	if err := db.finishRotation(); err != nil {
		return wrapOp(op, err)
	}
	var exists, hasKey bool
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(caseKey(nil, code))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		exists = true
		return item.Value(func(v []byte) error {
			h, err := parseRecord(v)
			hasKey = h.wrapped != nil
			return err
		})
	})
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	if !exists {
		return node.E(op, node.NotFound, "no case %s", printableCode(code))
	}

	// 1. A new KEK generation, saved next to the current one.
	if hasKey {
		if _, err := db.Keyring.addKEK(); err != nil {
			return node.E(op, node.Internal, "new key-encryption key: %w", err)
		}
	}
	// 2. In one transaction: every version loses its sealed identity and is
	// marked erased; the current one loses the wrapped identity key.
	if err := db.eraseVersions(code); err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	// 3. Every other identity key moves to the new generation; the old one
	// is destroyed.
	if hasKey {
		if err := db.finishRotation(); err != nil {
			return node.E(op, node.Internal, "identity erased but the key rotation is unfinished (the next open finishes it): %w", err)
		}
	}
	db.Logger.Info("case identity erased", zap.String("case_code", code), zap.String("by", by))
	return nil
}

// eraseVersions rewrites every version of a case without its sealed
// identity and its wrapped identity key, marked erased, in one transaction.
func (db *DB) eraseVersions(code string) error {
	return db.bdb.Update(func(txn *badger.Txn) error {
		type kv struct{ k, v []byte }
		var sets []kv
		collect := func(item *badger.Item) error {
			return item.Value(func(v []byte) error {
				h, err := parseRecord(v)
				if err != nil {
					return err
				}
				h.flags = (h.flags | flagErased) &^ (flagSealed | flagKey)
				h.sealed, h.wrapped = nil, nil
				sets = append(sets, kv{item.KeyCopy(nil), appendRecord(nil, &h)})
				return nil
			})
		}
		prefix := historyPrefix(nil, code)
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefix})
		for it.Seek(prefix); it.Valid(); it.Next() {
			if err := collect(it.Item()); err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
		item, err := txn.Get(caseKey(nil, code))
		if err != nil {
			return err
		}
		if err := collect(item); err != nil {
			return err
		}
		for _, s := range sets {
			if err := txn.Set(s.k, s.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// finishRotation completes a KEK rotation: when the keyring holds more than
// one generation, every wrapped identity key of an older generation is
// re-wrapped under the newest, the writes are synced, and the older
// generations are removed from the keyring. Callers hold db.mu (or are
// opening the store).
func (db *DB) finishRotation() error {
	gens := db.Keyring.kekGens()
	if len(gens) <= 1 {
		return nil
	}
	cur := gens[len(gens)-1]
	n, err := db.rewrap(cur)
	if err != nil {
		return err
	}
	if err := db.bdb.Sync(); err != nil {
		return err
	}
	if err := db.Keyring.dropKEKsBefore(cur); err != nil {
		return err
	}
	db.keks.forget()
	db.Logger.Info("key-encryption key rotated", zap.Uint32("generation", cur), zap.Int("rewrapped", n))
	return nil
}

// rewrap re-wraps every identity key of a generation older than cur under
// cur, rewriting the current records that hold them, and returns how many
// it moved. A key of a generation the keyring no
// longer holds is left as it is: it cannot be opened by anyone.
func (db *DB) rewrap(cur uint32) (int, error) {
	kek, err := db.keks.aead(cur)
	if err != nil {
		return 0, err
	}
	rnd := bufio.NewReaderSize(rand.Reader, 64<<10)
	nonce := make([]byte, gcmNonceLen)
	wb := db.bdb.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	err = db.bdb.View(func(txn *badger.Txn) error {
		prefix := []byte(prefixCase)
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256, Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			item := it.Item()
			code := string(item.Key()[len(prefixCase):])
			err := item.Value(func(v []byte) error {
				h, err := parseRecord(v)
				if err != nil || h.wrapped == nil {
					return err
				}
				gen, _, _, err := parseWrappedKey(h.wrapped)
				if err != nil || gen >= cur {
					return err
				}
				key, err := db.keks.unwrapCaseKey(h.wrapped, code)
				if errors.Is(err, errKeyUnavailable) {
					return nil
				}
				if err != nil {
					return err
				}
				if _, err := io.ReadFull(rnd, nonce); err != nil {
					return err
				}
				n++
				h.wrapped = wrapCaseKey(nil, cur, kek, key, nonce, code, nil)
				return wb.Set(item.KeyCopy(nil), appendRecord(nil, &h))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, wb.Flush()
}
