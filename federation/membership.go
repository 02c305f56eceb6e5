package federation

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ctfed/ctfed/node"
)

// Document formats: a document of another format is refused.
const (
	joinRequestFormat = 1
	certificateFormat = 1
	rosterFormat      = 1
	bundleFormat      = 1
)

// JoinRequest is what a node hands the authority to be admitted: its peer
// ID, X25519 public key, organisation and country, and optionally addresses
// at which the authority's node can reach it to push rosters. It is signed
// by the node's libp2p key, so the authority knows the node holds it.
type JoinRequest struct {
	Format    int       `json:"format"`
	PeerID    string    `json:"peer_id"`
	X25519    []byte    `json:"x25519"`
	Org       string    `json:"org"`
	Country   string    `json:"country"`
	Addrs     []string  `json:"addrs,omitempty"`
	Created   time.Time `json:"created"`
	Signature []byte    `json:"signature,omitempty"`
}

// NewJoinRequest builds and signs id's join request. addrs are multiaddrs
// (without /p2p/) at which the node listens, or none. Returns Invalid.
func NewJoinRequest(id *Identity, org, country string, addrs []string) (*JoinRequest, error) {
	const op = "federation.NewJoinRequest"
	r := &JoinRequest{
		Format:  joinRequestFormat,
		PeerID:  id.PeerID().String(),
		X25519:  id.X25519Public(),
		Org:     org,
		Country: country,
		Addrs:   slices.Clone(addrs),
		Created: time.Now().UTC().Truncate(time.Second),
	}
	if err := r.checkFields(); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	sig, err := id.sign(tagJoinRequest, r)
	if err != nil {
		return nil, node.E(op, node.Internal, "sign: %w", err)
	}
	r.Signature = sig
	return r, nil
}

func (r *JoinRequest) checkFields() error {
	if _, err := parsePeerID(r.PeerID); err != nil {
		return err
	}
	if len(r.X25519) != 32 {
		return fmt.Errorf("the X25519 key is %d bytes, want 32", len(r.X25519))
	}
	if err := checkText("the organisation", r.Org, maxOrgLen, true); err != nil {
		return err
	}
	if err := checkCountry(r.Country); err != nil {
		return err
	}
	if len(r.Addrs) > maxAddrs {
		return fmt.Errorf("more than %d addresses", maxAddrs)
	}
	for _, a := range r.Addrs {
		if len(a) > maxAddrLen {
			return fmt.Errorf("an address is longer than %d bytes", maxAddrLen)
		}
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("an address is not a multiaddr")
		}
	}
	return nil
}

// Encode returns the request's file encoding.
func (r *JoinRequest) Encode() []byte { return encodeIndent(r) }

// DecodeJoinRequest decodes a join request and verifies its fields and its
// signature by the key inside its peer ID. Returns Invalid.
func DecodeJoinRequest(data []byte) (*JoinRequest, error) {
	const op = "federation.DecodeJoinRequest"
	var r JoinRequest
	if err := decodeStrict(op, data, MaxJoinRequestSize, &r); err != nil {
		return nil, err
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	return &r, nil
}

// checkCountry accepts an ISO 3166-1 alpha-3 code of the codebook.
func checkCountry(c string) error {
	if c == node.CodeUnknown || !node.DefaultCodebook().Countries.Has(c) {
		return fmt.Errorf("the country must be an ISO 3166-1 alpha-3 code")
	}
	return nil
}

// checkRoles refuses an empty, unknown or repeated role, or roles out of
// order (contributor before querier).
func checkRoles(roles []string) error {
	if len(roles) == 0 {
		return fmt.Errorf("no role")
	}
	for i, r := range roles {
		if r != node.RoleContributor && r != node.RoleQuerier {
			return fmt.Errorf("unknown role %q", clip(r, 32))
		}
		if i > 0 && roles[i-1] >= r {
			return fmt.Errorf("roles must be sorted and given once")
		}
	}
	return nil
}

// NormaliseRoles sorts roles and removes repeats. Returns Invalid for an
// unknown role or none.
func NormaliseRoles(roles []string) ([]string, error) {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if err := checkRoles(out); err != nil {
		return nil, node.E("federation.NormaliseRoles", node.Invalid, "%w", err)
	}
	return out, nil
}

// Certificate is the authority's statement that a peer is a member: its
// peer ID, X25519 public key, organisation, country and roles, valid from
// NotBefore to NotAfter, under a serial unique within the federation.
type Certificate struct {
	Format    int       `json:"format"`
	Serial    uint64    `json:"serial"`
	PeerID    string    `json:"peer_id"`
	X25519    []byte    `json:"x25519"`
	Org       string    `json:"org"`
	Country   string    `json:"country"`
	Roles     []string  `json:"roles"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Signature []byte    `json:"signature,omitempty"`
}

// HasRole reports whether the certificate grants role.
func (c *Certificate) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// Peer returns the member as the domain knows it.
func (c *Certificate) Peer() node.Peer {
	return node.Peer{PeerID: c.PeerID, Org: c.Org, Country: c.Country, Roles: slices.Clone(c.Roles)}
}

func (c *Certificate) checkFields() error {
	if c.Format != certificateFormat {
		return fmt.Errorf("unknown certificate format %d", c.Format)
	}
	if c.Serial == 0 {
		return fmt.Errorf("serial 0")
	}
	if _, err := parsePeerID(c.PeerID); err != nil {
		return err
	}
	if len(c.X25519) != 32 {
		return fmt.Errorf("the X25519 key is %d bytes, want 32", len(c.X25519))
	}
	if err := checkText("the organisation", c.Org, maxOrgLen, true); err != nil {
		return err
	}
	if err := checkCountry(c.Country); err != nil {
		return err
	}
	if err := checkRoles(c.Roles); err != nil {
		return err
	}
	if !c.NotAfter.After(c.NotBefore) {
		return fmt.Errorf("the certificate expires before it is valid")
	}
	return nil
}

// Verify checks the certificate's fields and its signature by the authority
// key. Returns Invalid.
func (c *Certificate) Verify(key ed25519.PublicKey) error {
	const op = "federation.Certificate.Verify"
	if err := c.checkFields(); err != nil {
		return node.E(op, node.Invalid, "%w", err)
	}
	u := *c
	u.Signature = nil
	if !verifyDoc(key, tagCertificate, &u, c.Signature) {
		return node.E(op, node.Invalid, "certificate %d is not signed by the federation authority", c.Serial)
	}
	return nil
}

// Encode returns the certificate's file encoding.
func (c *Certificate) Encode() []byte { return encodeIndent(c) }

// DecodeCertificate decodes a certificate and verifies it against the
// pinned authority key. Returns Invalid.
func DecodeCertificate(data []byte, key ed25519.PublicKey) (*Certificate, error) {
	var c Certificate
	if err := decodeStrict("federation.DecodeCertificate", data, MaxCertificateSize, &c); err != nil {
		return nil, err
	}
	if err := c.Verify(key); err != nil {
		return nil, err
	}
	return &c, nil
}

// MemberStatus is what a roster says of a peer at a given time.
type MemberStatus uint8

// The member statuses. Only MemberOK lets a peer in.
const (
	MemberUnknown MemberStatus = iota
	MemberRevoked
	MemberNotYetValid
	MemberExpired
	MemberOK
)

var memberStatusNames = [...]string{"unknown", "revoked", "not_yet_valid", "expired", "ok"}

// String returns the status's stable name.
func (s MemberStatus) String() string {
	if int(s) < len(memberStatusNames) {
		return memberStatusNames[s]
	}
	return "unknown"
}

// encodeIndent is the file encoding of a document: indented JSON. The
// signatures do not depend on it.
func encodeIndent(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("federation: encode %T: %v", v, err))
	}
	return append(b, '\n')
}
