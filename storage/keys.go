package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/ctfed/ctfed/node"
)

// KeysFile is the name of the keyring file in a node directory.
const KeysFile = "keys.json"

// keyFileVersion is the version of the keys.json format this build writes.
const keyFileVersion = 1

// kdfParams are the argon2id parameters of a keyring. MemoryKiB is in KiB.
type kdfParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// defaultKDF is what CreateKeyring and ChangePassphrase use. Tests lower it.
var defaultKDF = kdfParams{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Bounds on the argon2id parameters accepted from a keys.json file, so that a
// tampered file cannot make ctfed allocate without limit.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
	minSaltLen      = 16
	maxSaltLen      = 64
)

// keyFile is keys.json as stored. In the normal form the key set is sealed
// with a random master key (Keys), and the master key is sealed twice: under
// a key derived from the passphrase with argon2id (PassphraseWrap) and under
// one derived from the recovery key (RecoveryWrap). In insecure mode the key
// set is stored in the clear (Plain).
type keyFile struct {
	Version        int        `json:"version"`
	Insecure       bool       `json:"insecure,omitempty"`
	KDF            *kdfFile   `json:"kdf,omitempty"`
	PassphraseWrap []byte     `json:"passphrase_wrap,omitempty"`
	RecoveryWrap   []byte     `json:"recovery_wrap,omitempty"`
	Keys           []byte     `json:"keys,omitempty"`
	Plain          *keySetDoc `json:"plain_keys,omitempty"`
}

type kdfFile struct {
	Alg string `json:"alg"`
	kdfParams
	Salt []byte `json:"salt"`
}

// keySetDoc is the key set as serialised inside keys.json.
type keySetDoc struct {
	Store []byte            `json:"store"`
	HMAC  []byte            `json:"hmac"`
	KEKs  []kekDoc          `json:"kek"`
	Extra map[string][]byte `json:"extra,omitempty"`
}

type kekDoc struct {
	Gen uint32 `json:"gen"`
	Key []byte `json:"key"`
}

// Keyring holds a node's secret keys: the store key (badger's encryption
// key), the generations of the key-encryption key (KEK) that wraps each
// case's identity key, the HMAC key import uses to derive case codes, and
// extra named keys for later components. It lives in keys.json in the node
// directory, mode 0600, sealed under the passphrase and, separately, under
// the recovery key. A Keyring is safe for concurrent use.
type Keyring struct {
	dir      string
	insecure bool

	mu        sync.Mutex
	file      keyFile // the wrapping parts, kept to rewrite the file
	masterKey []byte  // seals the key set; nil in insecure mode
	store     []byte
	hmac      []byte
	keks      map[uint32][]byte
	extra     map[string][]byte
}

// CreateKeyring generates a new key set in dir and writes it to keys.json.
// It returns the keyring and the recovery key, to be shown once to the
// operator. With insecure the keys are stored unwrapped, the passphrase is
// ignored and the recovery key is empty. Returns Conflict when dir already
// holds a keys.json, Invalid for an empty passphrase.
func CreateKeyring(dir string, passphrase []byte, insecure bool) (*Keyring, string, error) {
	const op = "storage.CreateKeyring"
	path := filepath.Join(dir, KeysFile)
	if _, err := os.Stat(path); err == nil {
		return nil, "", node.E(op, node.Conflict, "%s already holds a ctfed node's keys", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", node.E(op, node.Internal, "%w", err)
	}
	if !insecure && len(passphrase) == 0 {
		return nil, "", node.E(op, node.Invalid, "a passphrase is required (or choose insecure mode for a throwaway node)")
	}
	kr := &Keyring{
		dir:      dir,
		insecure: insecure,
		store:    randomBytes(32),
		hmac:     randomBytes(32),
		keks:     map[uint32][]byte{1: randomBytes(32)},
		extra:    map[string][]byte{},
	}
	kr.file = keyFile{Version: keyFileVersion, Insecure: insecure}
	var recovery string
	if !insecure {
		kr.masterKey = randomBytes(32)
		if err := kr.wrapPassphrase(passphrase, defaultKDF); err != nil {
			return nil, "", node.E(op, node.Internal, "%w", err)
		}
		rk := randomBytes(recoveryKeyLen)
		recovery = formatRecoveryKey(rk)
		wrap, err := sealKey(recoveryWrapKey(rk), kr.masterKey, []byte("ctfed keys.json recovery"))
		if err != nil {
			return nil, "", node.E(op, node.Internal, "%w", err)
		}
		kr.file.RecoveryWrap = wrap
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", node.E(op, node.Internal, "%w", err)
	}
	if err := kr.save(); err != nil {
		return nil, "", node.E(op, node.Internal, "%w", err)
	}
	return kr, recovery, nil
}

// OpenKeyring reads keys.json in dir and unwraps it with passphrase. A file
// written in insecure mode opens with any passphrase. Returns NotFound when
// dir is not a node directory, Permission for a missing or wrong passphrase
// (nothing is touched), Invalid for a damaged file.
func OpenKeyring(dir string, passphrase []byte) (*Keyring, error) {
	const op = "storage.OpenKeyring"
	kf, err := readKeyFile(dir)
	if err != nil {
		return nil, wrapOp(op, err)
	}
	kr := &Keyring{dir: dir, file: *kf, insecure: kf.Insecure}
	if kf.Insecure {
		if err := kr.setKeySet(kf.Plain); err != nil {
			return nil, wrapOp(op, err)
		}
		return kr, nil
	}
	if len(passphrase) == 0 {
		return nil, node.E(op, node.Permission, "a passphrase is required to open %s", dir)
	}
	wk := passphraseKey(passphrase, kf.KDF)
	mk, err := openKey(wk, kf.PassphraseWrap, []byte("ctfed keys.json passphrase"))
	if err != nil {
		return nil, node.E(op, node.Permission, "wrong passphrase")
	}
	return kr.unseal(op, mk)
}

// OpenKeyringRecovery reads keys.json in dir and unwraps it with the
// recovery key printed at init. Returns NotFound, Permission for a wrong
// recovery key, Invalid for a malformed one or a damaged file.
func OpenKeyringRecovery(dir, recoveryKey string) (*Keyring, error) {
	const op = "storage.OpenKeyringRecovery"
	kf, err := readKeyFile(dir)
	if err != nil {
		return nil, wrapOp(op, err)
	}
	kr := &Keyring{dir: dir, file: *kf, insecure: kf.Insecure}
	if kf.Insecure {
		if err := kr.setKeySet(kf.Plain); err != nil {
			return nil, wrapOp(op, err)
		}
		return kr, nil
	}
	rk, err := parseRecoveryKey(recoveryKey)
	if err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	mk, err := openKey(recoveryWrapKey(rk), kf.RecoveryWrap, []byte("ctfed keys.json recovery"))
	if err != nil {
		return nil, node.E(op, node.Permission, "wrong recovery key")
	}
	return kr.unseal(op, mk)
}

func (kr *Keyring) unseal(op string, mk []byte) (*Keyring, error) {
	plain, err := openKey(mk, kr.file.Keys, []byte("ctfed keys.json keys"))
	if err != nil {
		return nil, node.E(op, node.Invalid, "keys.json is damaged: its key set does not decrypt")
	}
	var ks keySetDoc
	if err := json.Unmarshal(plain, &ks); err != nil {
		return nil, node.E(op, node.Invalid, "keys.json is damaged: %w", err)
	}
	if err := kr.setKeySet(&ks); err != nil {
		return nil, wrapOp(op, err)
	}
	kr.masterKey = mk
	return kr, nil
}

func wrapOp(op string, err error) error {
	return &node.Error{Op: op, Kind: node.KindOf(err), Err: err}
}

// ChangePassphrase wraps the keyring under a new passphrase and saves it.
// The recovery key stays valid. Returns Invalid for an empty passphrase or
// an insecure keyring.
func (kr *Keyring) ChangePassphrase(passphrase []byte) error {
	const op = "storage.ChangePassphrase"
	if kr.insecure {
		return node.E(op, node.Invalid, "the keyring is stored without a passphrase (insecure mode)")
	}
	if len(passphrase) == 0 {
		return node.E(op, node.Invalid, "a passphrase is required")
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	old := kr.file
	if err := kr.wrapPassphrase(passphrase, defaultKDF); err != nil {
		kr.file = old
		return node.E(op, node.Internal, "%w", err)
	}
	if err := kr.save(); err != nil {
		kr.file = old
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}

func (kr *Keyring) wrapPassphrase(passphrase []byte, p kdfParams) error {
	k := &kdfFile{Alg: "argon2id", kdfParams: p, Salt: randomBytes(16)}
	wrap, err := sealKey(passphraseKey(passphrase, k), kr.masterKey, []byte("ctfed keys.json passphrase"))
	if err != nil {
		return err
	}
	kr.file.KDF = k
	kr.file.PassphraseWrap = wrap
	return nil
}

func passphraseKey(passphrase []byte, k *kdfFile) []byte {
	return argon2.IDKey(passphrase, k.Salt, k.Time, k.MemoryKiB, k.Threads, 32)
}

// Insecure reports whether the keyring is stored without a passphrase:
// anyone who copies the node directory can read it. The CLI warns loudly.
func (kr *Keyring) Insecure() bool { return kr.insecure }

// Dir returns the node directory the keyring belongs to.
func (kr *Keyring) Dir() string { return kr.dir }

// HMACKey returns the node's HMAC key, which import uses to derive case
// codes from rows that carry none. The caller must not modify it.
func (kr *Keyring) HMACKey() []byte { return kr.hmac }

// Extra returns a copy of the extra key stored under name, and whether there
// is one.
func (kr *Keyring) Extra(name string) ([]byte, bool) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	v, ok := kr.extra[name]
	return slices.Clone(v), ok
}

// SetExtra stores a copy of key under name (a libp2p identity, an X25519
// key, ...). It takes effect on disk at the next Save.
func (kr *Keyring) SetExtra(name string, key []byte) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.extra[name] = slices.Clone(key)
}

// Save rewrites keys.json atomically: a temporary file is written and
// synced, renamed over keys.json, and the directory is synced.
func (kr *Keyring) Save() error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.save(); err != nil {
		return node.E("storage.Keyring.Save", node.Internal, "%w", err)
	}
	return nil
}

// storeKey returns the badger encryption key.
func (kr *Keyring) storeKey() []byte { return kr.store }

// currentKEK returns the newest KEK generation and its key.
func (kr *Keyring) currentKEK() (uint32, []byte) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	var gen uint32
	for g := range kr.keks {
		gen = max(gen, g)
	}
	return gen, kr.keks[gen]
}

// kek returns the KEK of generation gen.
func (kr *Keyring) kek(gen uint32) ([]byte, bool) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	k, ok := kr.keks[gen]
	return k, ok
}

// kekGens returns the KEK generations held, oldest first.
func (kr *Keyring) kekGens() []uint32 {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return slices.Sorted(maps.Keys(kr.keks))
}

// addKEK adds a new KEK generation, saves the keyring and returns the
// generation.
func (kr *Keyring) addKEK() (uint32, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	var gen uint32
	for g := range kr.keks {
		gen = max(gen, g)
	}
	gen++
	kr.keks[gen] = randomBytes(32)
	if err := kr.save(); err != nil {
		delete(kr.keks, gen)
		return 0, err
	}
	return gen, nil
}

// dropKEKsBefore destroys every KEK generation older than gen and saves the
// keyring.
func (kr *Keyring) dropKEKsBefore(gen uint32) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	dropped := map[uint32][]byte{}
	for g, k := range kr.keks {
		if g < gen {
			dropped[g] = k
			delete(kr.keks, g)
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	if err := kr.save(); err != nil {
		maps.Copy(kr.keks, dropped)
		return err
	}
	for _, k := range dropped {
		clear(k)
	}
	return nil
}

func (kr *Keyring) setKeySet(ks *keySetDoc) error {
	if ks == nil {
		return node.E("", node.Invalid, "keys.json is damaged: no key set")
	}
	if len(ks.Store) != 32 || len(ks.HMAC) != 32 || len(ks.KEKs) == 0 {
		return node.E("", node.Invalid, "keys.json is damaged: missing or malformed keys")
	}
	kr.store, kr.hmac = ks.Store, ks.HMAC
	kr.keks = make(map[uint32][]byte, len(ks.KEKs))
	for _, k := range ks.KEKs {
		if len(k.Key) != 32 || k.Gen == 0 {
			return node.E("", node.Invalid, "keys.json is damaged: malformed key-encryption key")
		}
		kr.keks[k.Gen] = k.Key
	}
	kr.extra = ks.Extra
	if kr.extra == nil {
		kr.extra = map[string][]byte{}
	}
	return nil
}

func (kr *Keyring) keySet() *keySetDoc {
	ks := &keySetDoc{Store: kr.store, HMAC: kr.hmac, Extra: kr.extra}
	for _, g := range slices.Sorted(maps.Keys(kr.keks)) {
		ks.KEKs = append(ks.KEKs, kekDoc{Gen: g, Key: kr.keks[g]})
	}
	if len(ks.Extra) == 0 {
		ks.Extra = nil
	}
	return ks
}

// save writes keys.json; kr.mu is held (or kr is not shared yet).
func (kr *Keyring) save() error {
	kf := kr.file
	kf.Version = keyFileVersion
	if kr.insecure {
		kf.Plain = kr.keySet()
		kf.Keys = nil
	} else {
		plain, err := json.Marshal(kr.keySet())
		if err != nil {
			return err
		}
		sealed, err := sealKey(kr.masterKey, plain, []byte("ctfed keys.json keys"))
		clear(plain)
		if err != nil {
			return err
		}
		kf.Keys, kf.Plain = sealed, nil
	}
	data, err := json.MarshalIndent(&kf, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(kr.dir, KeysFile), append(data, '\n'), 0o600); err != nil {
		return err
	}
	kr.file = kf
	kr.file.Plain = nil
	return nil
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// maxKeyFileSize bounds what readKeyFile reads.
const maxKeyFileSize = 1 << 20

func readKeyFile(dir string) (*keyFile, error) {
	path := filepath.Join(dir, KeysFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, node.E("", node.NotFound, "%s is not a ctfed node directory (no %s): run ctfed init", dir, KeysFile)
	}
	if err != nil {
		return nil, node.E("", node.Internal, "%w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, node.E("", node.Internal, "%w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, node.E("", node.Invalid, "%s is damaged: larger than %d bytes", path, maxKeyFileSize)
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		return nil, node.E("", node.Invalid, "%s is damaged: %w", path, err)
	}
	return kf, nil
}

// parseKeyFile decodes and checks keys.json. It never derives a key, so it
// is cheap on any input.
func parseKeyFile(data []byte) (*keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if kf.Version != keyFileVersion {
		return nil, fmt.Errorf("keys.json version %d is not %d: upgrade ctfed", kf.Version, keyFileVersion)
	}
	if kf.Insecure {
		if kf.Plain == nil {
			return nil, errors.New("insecure keyring without keys")
		}
		return &kf, nil
	}
	k := kf.KDF
	switch {
	case k == nil || k.Alg != "argon2id":
		return nil, errors.New("unknown key derivation (want argon2id)")
	case k.Time < 1 || k.Time > maxKDFTime, k.MemoryKiB < 8*uint32(max(k.Threads, 1)) || k.MemoryKiB > maxKDFMemoryKiB, k.Threads < 1:
		return nil, errors.New("argon2id parameters out of range")
	case len(k.Salt) < minSaltLen || len(k.Salt) > maxSaltLen:
		return nil, errors.New("argon2id salt of a bad length")
	case len(kf.PassphraseWrap) != wrappedKeyLen || len(kf.RecoveryWrap) != wrappedKeyLen:
		return nil, errors.New("malformed wrapped master key")
	case len(kf.Keys) < gcmNonceLen+gcmTagLen:
		return nil, errors.New("malformed key set")
	}
	return &kf, nil
}

// The recovery key: recoveryKeyLen random bytes written in base32, in groups
// of four characters.
const recoveryKeyLen = 20

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func formatRecoveryKey(rk []byte) string {
	s := recoveryEncoding.EncodeToString(rk)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

func parseRecoveryKey(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, strings.ToUpper(s))
	rk, err := recoveryEncoding.DecodeString(s)
	if err != nil || len(rk) != recoveryKeyLen {
		return nil, errors.New("not a recovery key (want the groups of letters and digits printed at init)")
	}
	return rk, nil
}

func recoveryWrapKey(rk []byte) []byte {
	k, err := hkdf.Key(sha256.New, rk, nil, "ctfed recovery key v1", 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce
	}
	return k
}

// AES-256-GCM sealing of small keys and blobs: nonce || ciphertext || tag.
const (
	gcmNonceLen   = 12
	gcmTagLen     = 16
	wrappedKeyLen = gcmNonceLen + 32 + gcmTagLen
)

func sealKey(key, plain, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := randomBytes(gcmNonceLen)
	return aead.Seal(out, out, plain, aad), nil
}

func openKey(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcmNonceLen+gcmTagLen {
		return nil, errors.New("sealed value too short")
	}
	return aead.Open(nil, sealed[:gcmNonceLen], sealed[gcmNonceLen:], aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return b
}
