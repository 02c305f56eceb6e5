package federation

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/node"
)

// Identity is one node's keys: its Ed25519 libp2p identity key (its peer ID
// is its name on the network; it signs join requests and answers) and its
// X25519 key-agreement key (certified by the authority for secure
// aggregation). Both are secret: the node's keyring keeps Marshal's bytes.
type Identity struct {
	Key    crypto.PrivKey
	X25519 *ecdh.PrivateKey
	id     peer.ID
}

// identityFile is Identity's encoding.
type identityFile struct {
	Format int    `json:"format"`
	Libp2p []byte `json:"libp2p"`
	X25519 []byte `json:"x25519"`
}

const identityFormat = 1

// NewIdentity generates a node's keys.
func NewIdentity() (*Identity, error) {
	const op = "federation.NewIdentity"
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, node.E(op, node.Internal, "generate the libp2p key: %w", err)
	}
	xk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, node.E(op, node.Internal, "generate the X25519 key: %w", err)
	}
	return newIdentity(sk, xk)
}

func newIdentity(sk crypto.PrivKey, xk *ecdh.PrivateKey) (*Identity, error) {
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return nil, node.E("federation.Identity", node.Invalid, "peer ID: %w", err)
	}
	return &Identity{Key: sk, X25519: xk, id: id}, nil
}

// Marshal encodes the identity's secret keys for the node's keyring.
func (id *Identity) Marshal() []byte {
	raw, err := crypto.MarshalPrivateKey(id.Key)
	if err != nil {
		// An Ed25519 key always marshals.
		panic(fmt.Sprintf("federation: marshal libp2p key: %v", err))
	}
	b, _ := json.Marshal(identityFile{Format: identityFormat, Libp2p: raw, X25519: id.X25519.Bytes()})
	return b
}

// UnmarshalIdentity decodes what Marshal encoded. Returns Invalid.
func UnmarshalIdentity(data []byte) (*Identity, error) {
	const op = "federation.UnmarshalIdentity"
	var f identityFile
	if err := decodeStrict(op, data, 4096, &f); err != nil {
		return nil, err
	}
	if f.Format != identityFormat {
		return nil, node.E(op, node.Invalid, "unknown identity format %d", f.Format)
	}
	sk, err := crypto.UnmarshalPrivateKey(f.Libp2p)
	if err != nil {
		return nil, node.E(op, node.Invalid, "the libp2p key does not decode")
	}
	if sk.Type() != crypto.Ed25519 {
		return nil, node.E(op, node.Invalid, "the libp2p key is not an Ed25519 key")
	}
	xk, err := ecdh.X25519().NewPrivateKey(f.X25519)
	if err != nil {
		return nil, node.E(op, node.Invalid, "the X25519 key does not decode")
	}
	return newIdentity(sk, xk)
}

// PeerID returns the node's peer ID.
func (id *Identity) PeerID() peer.ID { return id.id }

// X25519Public returns the node's X25519 public key (32 bytes).
func (id *Identity) X25519Public() []byte { return id.X25519.PublicKey().Bytes() }

// sign signs the canonical bytes of v under tag with the libp2p key.
func (id *Identity) sign(tag string, v any) ([]byte, error) {
	msg, err := canonical(tag, v)
	if err != nil {
		return nil, err
	}
	return id.Key.Sign(msg)
}

// verifyPeer verifies sig over the canonical bytes of v under tag with the
// public key embedded in an Ed25519 peer ID.
func verifyPeer(p peer.ID, tag string, v any, sig []byte) bool {
	pk, err := p.ExtractPublicKey()
	if err != nil || pk.Type() != crypto.Ed25519 || len(sig) != ed25519.SignatureSize {
		return false
	}
	msg, err := canonical(tag, v)
	if err != nil {
		return false
	}
	ok, err := pk.Verify(msg, sig)
	return err == nil && ok
}

// parsePeerID decodes a peer ID and requires an Ed25519 key inside it, as
// every ctfed node has.
func parsePeerID(s string) (peer.ID, error) {
	if s == "" || len(s) > maxPeerIDLen {
		return "", fmt.Errorf("not a peer ID")
	}
	p, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("not a peer ID")
	}
	pk, err := p.ExtractPublicKey()
	if err != nil || pk.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("the peer ID does not hold an Ed25519 key")
	}
	if p.String() != s {
		return "", fmt.Errorf("the peer ID is not in its canonical form")
	}
	return p, nil
}
