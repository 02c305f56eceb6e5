package federation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/pnet"

	"github.com/ctfed/ctfed/node"
)

// Fingerprint prefixes.
const (
	AuthorityFingerprintPrefix = "ctfed-auth:"
	PSKFingerprintPrefix       = "ctfed-psk:"
)

// Fingerprint is the SHA-256 of a key, what a person compares or types to
// pin it. Its text form is a prefix naming the kind of key and the base32 of
// the hash in groups of four, e.g. "ctfed-auth:ABCD-EFGH-...".
type Fingerprint struct {
	prefix string
	sum    [sha256.Size]byte
}

var fpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the fingerprint's text form.
func (f Fingerprint) String() string {
	if f.prefix == "" {
		return ""
	}
	s := fpEncoding.EncodeToString(f.sum[:])
	var b strings.Builder
	b.WriteString(f.prefix)
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// IsZero reports whether f is the zero Fingerprint (none pinned).
func (f Fingerprint) IsZero() bool { return f.prefix == "" }

// Equal reports whether f and g are the same fingerprint.
func (f Fingerprint) Equal(g Fingerprint) bool {
	return f.prefix == g.prefix && subtle.ConstantTimeCompare(f.sum[:], g.sum[:]) == 1
}

// MarshalText implements encoding.TextMarshaler.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Fingerprint) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*f = Fingerprint{}
		return nil
	}
	g, err := ParseFingerprint(string(b))
	if err != nil {
		return err
	}
	*f = g
	return nil
}

// ParseFingerprint reads a fingerprint's text form: its prefix, then the
// base32 hash, in any case, with or without the dashes and spaces that group
// it. Returns Invalid.
func ParseFingerprint(s string) (Fingerprint, error) {
	const op = "federation.ParseFingerprint"
	if len(s) > 200 {
		return Fingerprint{}, node.E(op, node.Invalid, "not a fingerprint")
	}
	var f Fingerprint
	switch {
	case strings.HasPrefix(strings.ToLower(s), AuthorityFingerprintPrefix):
		f.prefix = AuthorityFingerprintPrefix
	case strings.HasPrefix(strings.ToLower(s), PSKFingerprintPrefix):
		f.prefix = PSKFingerprintPrefix
	default:
		return Fingerprint{}, node.E(op, node.Invalid, "a fingerprint starts with %q or %q", AuthorityFingerprintPrefix, PSKFingerprintPrefix)
	}
	body := strings.NewReplacer("-", "", " ", "").Replace(s[len(f.prefix):])
	sum, err := fpEncoding.DecodeString(strings.ToUpper(body))
	if err != nil || len(sum) != sha256.Size {
		return Fingerprint{}, node.E(op, node.Invalid, "the fingerprint is not %d base32 characters", fpEncoding.EncodedLen(sha256.Size))
	}
	copy(f.sum[:], sum)
	return f, nil
}

// AuthorityFingerprint returns the fingerprint of an authority's public key.
func AuthorityFingerprint(pub ed25519.PublicKey) Fingerprint {
	return Fingerprint{prefix: AuthorityFingerprintPrefix, sum: sha256.Sum256(append([]byte("ctfed authority key\x00"), pub...))}
}

// NewAuthorityKey generates a federation authority key. Its seed
// (key.Seed()) is what the authority's keyring keeps, under the passphrase.
func NewAuthorityKey() (ed25519.PrivateKey, error) {
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, node.E("federation.NewAuthorityKey", node.Internal, "%w", err)
	}
	return sk, nil
}

// NewPSK generates a private network key for the federation: 32 random
// bytes shared by every member (see EncodePSK).
func NewPSK() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, node.E("federation.NewPSK", node.Internal, "%w", err)
	}
	return k, nil
}

// PSKFingerprint returns the fingerprint of a private network key, the one
// a roster names. It reveals nothing of the key.
func PSKFingerprint(psk []byte) Fingerprint {
	return Fingerprint{prefix: PSKFingerprintPrefix, sum: sha256.Sum256(append([]byte("ctfed private network key\x00"), psk...))}
}

// EncodePSK encodes a private network key in libp2p's swarm key file format
// (/key/swarm/psk/1.0.0/, hex).
func EncodePSK(psk []byte) []byte {
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(psk) + "\n")
}

// DecodePSK reads a private network key in libp2p's swarm key file format.
// Returns Invalid.
func DecodePSK(data []byte) ([]byte, error) {
	if len(data) > 1024 {
		return nil, node.E("federation.DecodePSK", node.Invalid, "not a private network key file")
	}
	k, err := pnet.DecodeV1PSK(bytes.NewReader(data))
	if err != nil || len(k) != 32 {
		return nil, node.E("federation.DecodePSK", node.Invalid, "not a private network key file")
	}
	return k, nil
}

// checkPSK refuses a key that is not 32 bytes.
func checkPSK(psk []byte) error {
	if len(psk) != 0 && len(psk) != 32 {
		return fmt.Errorf("the private network key is %d bytes, want 32", len(psk))
	}
	return nil
}
