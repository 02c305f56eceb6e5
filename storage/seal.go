package storage

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"sync"
)

// Identity fields are sealed in two layers. Each case that ever had an
// identity has its own random 32-byte identity key; every version's identity
// is sealed with AES-256-GCM under it (sealed identity, in the record). The
// identity key is kept wrapped under the keyring's current key-encryption
// key (KEK) in the case's current record only (c/<code>, flagKey):
//
//	byte    wrapped-key format (wrapFormat)
//	uvarint KEK generation
//	[12]    nonce
//	[48]    AES-GCM(identity key)
//
// Erasing a case drops its wrapped key and rotates the KEK, so the copies of
// the wrapped key that badger may still hold in old files can no longer be
// unwrapped by anyone. Keeping the wrapped key in the record, rather than
// under a key of its own, makes a write one badger entry per case.
const wrapFormat = 1

const caseKeyLen = 32

var errKeyUnavailable = errors.New("identity key unavailable")

// identityAAD and caseKeyAAD bind a sealed value to its case code, so that
// a sealed identity or a wrapped key moved to another case does not open.
func identityAAD(dst []byte, code string) []byte {
	dst = append(dst, "ctfed/identity/1\x00"...)
	return append(dst, code...)
}

func caseKeyAAD(dst []byte, code string) []byte {
	dst = append(dst, "ctfed/casekey/1\x00"...)
	return append(dst, code...)
}

// keks caches one AEAD per KEK generation of a keyring.
type keks struct {
	kr *Keyring
	mu sync.RWMutex
	m  map[uint32]cipher.AEAD
}

func (k *keks) aead(gen uint32) (cipher.AEAD, error) {
	k.mu.RLock()
	a, ok := k.m[gen]
	k.mu.RUnlock()
	if ok {
		return a, nil
	}
	key, ok := k.kr.kek(gen)
	if !ok {
		return nil, errKeyUnavailable
	}
	a, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.m == nil {
		k.m = map[uint32]cipher.AEAD{}
	}
	k.m[gen] = a
	k.mu.Unlock()
	return a, nil
}

// current returns the newest KEK generation and its AEAD.
func (k *keks) current() (uint32, cipher.AEAD, error) {
	gen, _ := k.kr.currentKEK()
	a, err := k.aead(gen)
	return gen, a, err
}

// forget drops cached AEADs of generations the keyring no longer holds.
func (k *keks) forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for gen := range k.m {
		if _, ok := k.kr.kek(gen); !ok {
			delete(k.m, gen)
		}
	}
}

// wrapCaseKey appends the wrapped form of caseKey wrapped under the KEK
// generation gen. nonce is 12 fresh random bytes; aad is scratch space.
func wrapCaseKey(dst []byte, gen uint32, kek cipher.AEAD, caseKey, nonce []byte, code string, aad []byte) []byte {
	dst = append(dst, wrapFormat)
	dst = binary.AppendUvarint(dst, uint64(gen))
	dst = append(dst, nonce...)
	return kek.Seal(dst, nonce, caseKey, caseKeyAAD(aad[:0], code))
}

// parseWrappedKey splits a wrapped identity key.
func parseWrappedKey(v []byte) (gen uint32, nonce, sealed []byte, err error) {
	if len(v) < 2 || v[0] != wrapFormat {
		return 0, nil, nil, errCorrupt
	}
	g, n := binary.Uvarint(v[1:])
	if n <= 0 || g == 0 || g > 1<<32-1 {
		return 0, nil, nil, errCorrupt
	}
	rest := v[1+n:]
	if len(rest) != gcmNonceLen+caseKeyLen+gcmTagLen {
		return 0, nil, nil, errCorrupt
	}
	return uint32(g), rest[:gcmNonceLen], rest[gcmNonceLen:], nil
}

// unwrapCaseKey returns the identity key in a wrapped key, or
// errKeyUnavailable when its KEK generation is no longer held.
func (k *keks) unwrapCaseKey(v []byte, code string) ([]byte, error) {
	gen, nonce, sealed, err := parseWrappedKey(v)
	if err != nil {
		return nil, err
	}
	a, err := k.aead(gen)
	if err != nil {
		return nil, err
	}
	key, err := a.Open(nil, nonce, sealed, caseKeyAAD(nil, code))
	if err != nil {
		return nil, errCorrupt
	}
	return key, nil
}

// sealIdentity appends nonce || AES-GCM(plain) under caseKey.
func sealIdentity(dst, caseKey, nonce, plain []byte, code string, aad []byte) ([]byte, error) {
	a, err := newGCM(caseKey)
	if err != nil {
		return nil, err
	}
	dst = append(dst, nonce...)
	return a.Seal(dst, nonce, plain, identityAAD(aad[:0], code)), nil
}

// openIdentity returns the plaintext of a sealed identity.
func openIdentity(caseKey, sealed []byte, code string) ([]byte, error) {
	if len(sealed) < gcmNonceLen+gcmTagLen {
		return nil, errCorrupt
	}
	a, err := newGCM(caseKey)
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, sealed[:gcmNonceLen], sealed[gcmNonceLen:], identityAAD(nil, code))
	if err != nil {
		return nil, errCorrupt
	}
	return plain, nil
}
