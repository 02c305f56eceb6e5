package federation

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/node"
)

// Revocation withdraws one certificate (by Serial) or every certificate of
// a peer (by PeerID).
type Revocation struct {
	Serial uint64    `json:"serial,omitempty"`
	PeerID string    `json:"peer_id,omitempty"`
	Time   time.Time `json:"time"`
}

// Roster is the federation's membership as the authority signed it: the
// members' certificates, the revocations, a version that only grows, when it
// was issued and when the next one is due (a node whose roster is past
// NextUpdate plus its grace period stops answering), the authority's own
// peer IDs (always let in) and, when the federation uses a private network
// key, that key's fingerprint.
type Roster struct {
	Format         int           `json:"format"`
	Version        uint64        `json:"version"`
	IssuedAt       time.Time     `json:"issued_at"`
	NextUpdate     time.Time     `json:"next_update"`
	AuthorityPeers []string      `json:"authority_peers,omitempty"`
	PSKFingerprint string        `json:"psk_fingerprint,omitempty"`
	Certificates   []Certificate `json:"certificates"`
	Revocations    []Revocation  `json:"revocations,omitempty"`
	Signature      []byte        `json:"signature,omitempty"`

	byPeer map[peer.ID]int
}

// Verify checks every field of r, every certificate's signature and r's own
// signature against the authority key, and indexes r for Member. Returns
// Invalid.
func (r *Roster) Verify(key ed25519.PublicKey) error {
	const op = "federation.Roster.Verify"
	if r.Format != rosterFormat {
		return node.E(op, node.Invalid, "unknown roster format %d", r.Format)
	}
	if r.Version == 0 {
		return node.E(op, node.Invalid, "version 0")
	}
	if r.NextUpdate.Before(r.IssuedAt) {
		return node.E(op, node.Invalid, "next_update is before issued_at")
	}
	if len(r.Certificates)+len(r.Revocations)+len(r.AuthorityPeers) > maxRosterSize {
		return node.E(op, node.Invalid, "more than %d entries", maxRosterSize)
	}
	for _, a := range r.AuthorityPeers {
		if _, err := parsePeerID(a); err != nil {
			return node.E(op, node.Invalid, "authority peer: %w", err)
		}
	}
	if r.PSKFingerprint != "" {
		f, err := ParseFingerprint(r.PSKFingerprint)
		if err != nil || f.prefix != PSKFingerprintPrefix {
			return node.E(op, node.Invalid, "psk_fingerprint is not a private network key fingerprint")
		}
	}
	for _, v := range r.Revocations {
		if (v.Serial == 0) == (v.PeerID == "") {
			return node.E(op, node.Invalid, "a revocation names either a serial or a peer ID")
		}
		if v.PeerID != "" {
			if _, err := parsePeerID(v.PeerID); err != nil {
				return node.E(op, node.Invalid, "revocation: %w", err)
			}
		}
	}
	u := *r
	u.Signature, u.byPeer = nil, nil
	if !verifyDoc(key, tagRoster, &u, r.Signature) {
		return node.E(op, node.Invalid, "the roster is not signed by the federation authority")
	}
	byPeer := make(map[peer.ID]int, len(r.Certificates))
	serials := make(map[uint64]bool, len(r.Certificates))
	for i := range r.Certificates {
		c := &r.Certificates[i]
		if err := c.Verify(key); err != nil {
			return node.E(op, node.Invalid, "certificate %d: %w", i, err)
		}
		p, _ := peer.Decode(c.PeerID)
		if _, dup := byPeer[p]; dup {
			return node.E(op, node.Invalid, "two certificates for peer %s", c.PeerID)
		}
		if serials[c.Serial] {
			return node.E(op, node.Invalid, "two certificates with serial %d", c.Serial)
		}
		byPeer[p], serials[c.Serial] = i, true
	}
	r.byPeer = byPeer
	return nil
}

// verifiedCopy verifies a shallow copy of r against key and returns it, so
// a roster another goroutine may be reading is never written to.
func verifiedCopy(r *Roster, key ed25519.PublicKey) (*Roster, error) {
	c := *r
	c.byPeer = nil
	if err := c.Verify(key); err != nil {
		return nil, err
	}
	return &c, nil
}

// Encode returns the roster's file encoding.
func (r *Roster) Encode() []byte { return encodeIndent(r) }

// DecodeRoster decodes a roster (a file or a message) and verifies it
// against the pinned authority key. Returns Invalid.
func DecodeRoster(data []byte, key ed25519.PublicKey) (*Roster, error) {
	var r Roster
	if err := decodeStrict("federation.DecodeRoster", data, MaxRosterSize, &r); err != nil {
		return nil, err
	}
	if err := r.Verify(key); err != nil {
		return nil, err
	}
	return &r, nil
}

// LoadRosterFile reads and verifies a roster file, e.g. one an operator
// copied from another member. Returns Invalid for a bad roster, NotFound
// for a missing file.
func LoadRosterFile(path string, key ed25519.PublicKey) (*Roster, error) {
	const op = "federation.LoadRosterFile"
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, node.E(op, node.NotFound, "no roster file")
		}
		return nil, node.E(op, node.Unavailable, "%w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRosterSize+1))
	if err != nil {
		return nil, node.E(op, node.Unavailable, "%w", err)
	}
	return DecodeRoster(data, key)
}

// Certificate returns p's certificate, whatever its status, or nil.
func (r *Roster) Certificate(p peer.ID) *Certificate {
	if r == nil {
		return nil
	}
	if r.byPeer == nil {
		for i := range r.Certificates {
			if r.Certificates[i].PeerID == p.String() {
				return &r.Certificates[i]
			}
		}
		return nil
	}
	if i, ok := r.byPeer[p]; ok {
		return &r.Certificates[i]
	}
	return nil
}

// Member returns p's certificate and its status at now, with a clock-skew
// tolerance: a certificate is valid from NotBefore−skew to NotAfter+skew.
// Only MemberOK makes p a current member.
func (r *Roster) Member(p peer.ID, now time.Time, skew time.Duration) (*Certificate, MemberStatus) {
	c := r.Certificate(p)
	if c == nil {
		return nil, MemberUnknown
	}
	if r.revoked(c) {
		return c, MemberRevoked
	}
	if now.Add(skew).Before(c.NotBefore) {
		return c, MemberNotYetValid
	}
	if now.Add(-skew).After(c.NotAfter) {
		return c, MemberExpired
	}
	return c, MemberOK
}

func (r *Roster) revoked(c *Certificate) bool {
	for _, v := range r.Revocations {
		if v.Serial == c.Serial || v.PeerID == c.PeerID && v.PeerID != "" {
			return true
		}
	}
	return false
}

// IsAuthority reports whether p is one of the authority's peers.
func (r *Roster) IsAuthority(p peer.ID) bool {
	return r != nil && slices.Contains(r.AuthorityPeers, p.String())
}

// Members returns the certificates of the current members at now that hold
// role (any role when role is empty), in roster order.
func (r *Roster) Members(role string, now time.Time, skew time.Duration) []*Certificate {
	if r == nil {
		return nil
	}
	var out []*Certificate
	for i := range r.Certificates {
		c := &r.Certificates[i]
		p, err := peer.Decode(c.PeerID)
		if err != nil {
			continue
		}
		if _, st := r.Member(p, now, skew); st != MemberOK {
			continue
		}
		if role == "" || c.HasRole(role) {
			out = append(out, c)
		}
	}
	return out
}

// Stale reports whether r is past its next_update plus grace at now.
func (r *Roster) Stale(now time.Time, grace time.Duration) bool {
	return now.After(r.NextUpdate.Add(grace))
}

// String describes the roster without its contents.
func (r *Roster) String() string {
	if r == nil {
		return "no roster"
	}
	return fmt.Sprintf("roster v%d (%d certificates, %d revocations)", r.Version, len(r.Certificates), len(r.Revocations))
}
