package federation

import (
	"crypto/ed25519"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ctfed/ctfed/node"
)

// Defaults of the authority.
const (
	// DefaultRosterValidity is how long after its issue a roster's
	// next_update falls.
	DefaultRosterValidity = 7 * 24 * time.Hour
	// DefaultCertificateValidity is how long a certificate is valid when
	// the operator does not say.
	DefaultCertificateValidity = 365 * 24 * time.Hour
)

// Authority is the federation authority's signing side: it admits members,
// revokes them and issues each new roster. It holds no network state; the
// caller persists Roster after every change and hands new rosters to the
// authority's Node (Node.InstallRoster), which pushes them to the members.
// Serials and versions are derived from the current roster, so the roster
// file is the authority's whole state besides its key.
type Authority struct {
	// Key is the authority's signing key.
	Key ed25519.PrivateKey
	// Roster is the current roster, nil before the first admission. Once a
	// Node renews through the Authority, read it with Current.
	Roster *Roster
	// PeerIDs are the peer IDs of the authority's own nodes, written into
	// every roster so that members always let them in.
	PeerIDs []string
	// PSKFingerprint is the fingerprint of the federation's private network
	// key (see PSKFingerprint), or empty.
	PSKFingerprint string
	// RosterValidity is the time from a roster's issue to its next_update.
	RosterValidity time.Duration
	// Now returns the current time.
	Now func() time.Time

	mu sync.Mutex
}

// NewAuthority returns an Authority signing with key, starting from the
// current roster (nil for a new federation), with defaults filled in.
func NewAuthority(key ed25519.PrivateKey, current *Roster) *Authority {
	a := &Authority{Key: key, Roster: current, RosterValidity: DefaultRosterValidity, Now: time.Now}
	if current != nil {
		a.PeerIDs = slices.Clone(current.AuthorityPeers)
		a.PSKFingerprint = current.PSKFingerprint
	}
	return a
}

// Current returns the current roster, nil before the first admission.
func (a *Authority) Current() *Roster {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.Roster
}

// PublicKey returns the authority's public key, the one members pin.
func (a *Authority) PublicKey() ed25519.PublicKey { return a.Key.Public().(ed25519.PublicKey) }

// Fingerprint returns the fingerprint of the authority's public key.
func (a *Authority) Fingerprint() Fingerprint { return AuthorityFingerprint(a.PublicKey()) }

// Admit verifies a join request and issues its certificate with roles,
// valid from now for validity, and the new roster that holds it. A member
// admitted again gets a new certificate in place of the old one. Returns
// Invalid for a bad request or roles, Conflict for a revoked peer.
func (a *Authority) Admit(req *JoinRequest, roles []string, validity time.Duration) (*Certificate, *Roster, error) {
	now := a.Now().UTC().Truncate(time.Second)
	if validity <= 0 {
		return nil, nil, node.E("federation.Admit", node.Invalid, "the validity must be positive")
	}
	return a.Issue(req, roles, now, now.Add(validity))
}

// Issue is Admit with an explicit validity period.
func (a *Authority) Issue(req *JoinRequest, roles []string, notBefore, notAfter time.Time) (*Certificate, *Roster, error) {
	const op = "federation.Admit"
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := req.Verify(); err != nil {
		return nil, nil, err
	}
	roles, err := NormaliseRoles(roles)
	if err != nil {
		return nil, nil, err
	}
	old := a.Roster
	for _, v := range rosterRevocations(old) {
		if v.PeerID == req.PeerID {
			return nil, nil, node.E(op, node.Conflict, "peer %s was revoked; it must join with a new identity", req.PeerID)
		}
	}
	c := Certificate{
		Format:    certificateFormat,
		Serial:    nextSerial(old),
		PeerID:    req.PeerID,
		X25519:    slices.Clone(req.X25519),
		Org:       req.Org,
		Country:   req.Country,
		Roles:     roles,
		NotBefore: notBefore.UTC().Truncate(time.Second),
		NotAfter:  notAfter.UTC().Truncate(time.Second),
	}
	if err := c.checkFields(); err != nil {
		return nil, nil, node.E(op, node.Invalid, "%w", err)
	}
	if c.Signature, err = signDoc(a.Key, tagCertificate, &c); err != nil {
		return nil, nil, node.E(op, node.Internal, "sign: %w", err)
	}
	var certs []Certificate
	if old != nil {
		for _, o := range old.Certificates {
			if o.PeerID != c.PeerID {
				certs = append(certs, o)
			}
		}
	}
	certs = append(certs, c)
	r, err := a.issue(certs, rosterRevocations(old))
	if err != nil {
		return nil, nil, err
	}
	return &c, r, nil
}

// Revoke revokes every certificate of peerID and returns the new roster.
// Returns Invalid for a bad peer ID, NotFound for a peer the roster does not
// hold.
func (a *Authority) Revoke(peerID string) (*Roster, error) {
	const op = "federation.Revoke"
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := parsePeerID(peerID)
	if err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	if a.Roster.Certificate(p) == nil {
		return nil, node.E(op, node.NotFound, "peer %s is not in the roster", peerID)
	}
	revs := rosterRevocations(a.Roster)
	for _, v := range revs {
		if v.PeerID == peerID {
			return a.Roster, nil
		}
	}
	revs = append(revs, Revocation{PeerID: peerID, Time: a.Now().UTC().Truncate(time.Second)})
	return a.issue(slices.Clone(a.Roster.Certificates), revs)
}

// RevokeSerial revokes one certificate by its serial and returns the new
// roster. Returns NotFound for a serial the roster does not hold.
func (a *Authority) RevokeSerial(serial uint64) (*Roster, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	found := false
	if a.Roster != nil {
		for _, c := range a.Roster.Certificates {
			found = found || c.Serial == serial
		}
	}
	if !found {
		return nil, node.E("federation.RevokeSerial", node.NotFound, "no certificate with serial %d", serial)
	}
	revs := append(rosterRevocations(a.Roster), Revocation{Serial: serial, Time: a.Now().UTC().Truncate(time.Second)})
	return a.issue(slices.Clone(a.Roster.Certificates), revs)
}

// Renew issues the current roster again under a new version with a fresh
// next_update (and the current PeerIDs and PSKFingerprint). The authority's
// node calls it before next_update so members never go stale.
func (a *Authority) Renew() (*Roster, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var certs []Certificate
	if a.Roster != nil {
		certs = slices.Clone(a.Roster.Certificates)
	}
	return a.issue(certs, rosterRevocations(a.Roster))
}

// issue signs a roster one version above the current one and makes it
// current. a.mu is held.
func (a *Authority) issue(certs []Certificate, revs []Revocation) (*Roster, error) {
	const op = "federation.Authority"
	now := a.Now().UTC().Truncate(time.Second)
	validity := a.RosterValidity
	if validity <= 0 {
		validity = DefaultRosterValidity
	}
	r := &Roster{
		Format:         rosterFormat,
		IssuedAt:       now,
		NextUpdate:     now.Add(validity),
		AuthorityPeers: slices.Clone(a.PeerIDs),
		PSKFingerprint: a.PSKFingerprint,
		Certificates:   certs,
		Revocations:    revs,
	}
	if a.Roster != nil {
		r.Version = a.Roster.Version + 1
	} else {
		r.Version = 1
	}
	if r.Certificates == nil {
		r.Certificates = []Certificate{}
	}
	sig, err := signDoc(a.Key, tagRoster, r)
	if err != nil {
		return nil, node.E(op, node.Internal, "sign the roster: %w", err)
	}
	r.Signature = sig
	if err := r.Verify(a.PublicKey()); err != nil {
		return nil, err
	}
	a.Roster = r
	return r, nil
}

func rosterRevocations(r *Roster) []Revocation {
	if r == nil {
		return nil
	}
	return slices.Clone(r.Revocations)
}

func nextSerial(r *Roster) uint64 {
	var n uint64
	if r == nil {
		return 1
	}
	for _, c := range r.Certificates {
		n = max(n, c.Serial)
	}
	for _, v := range r.Revocations {
		n = max(n, v.Serial)
	}
	return n + 1
}

// Verify checks the request's fields and its signature by the key inside
// its peer ID. Returns Invalid.
func (r *JoinRequest) Verify() error {
	const op = "federation.JoinRequest.Verify"
	if r == nil {
		return node.E(op, node.Invalid, "no join request")
	}
	if r.Format != joinRequestFormat {
		return node.E(op, node.Invalid, "unknown join request format %d", r.Format)
	}
	if err := r.checkFields(); err != nil {
		return node.E(op, node.Invalid, "%w", err)
	}
	p, _ := peer.Decode(r.PeerID)
	u := *r
	u.Signature = nil
	if !verifyPeer(p, tagJoinRequest, &u, r.Signature) {
		return node.E(op, node.Invalid, "the signature does not verify with the key of peer %s", r.PeerID)
	}
	return nil
}

// JoinBundle is what the authority hands a new member: its certificate, the
// current roster, the authority's public key and fingerprint (which the
// member checks against the fingerprint it pinned) and the addresses of the
// authority's nodes. PSK, when set, is the federation's private network
// key: a bundle that carries one is a secret and must be handed over as one.
type JoinBundle struct {
	Format               int         `json:"format"`
	AuthorityKey         []byte      `json:"authority_key"`
	AuthorityFingerprint string      `json:"authority_fingerprint"`
	AuthorityAddrs       []string    `json:"authority_addrs,omitempty"`
	Certificate          Certificate `json:"certificate"`
	Roster               *Roster     `json:"roster"`
	PSK                  []byte      `json:"psk,omitempty"`
}

// Bundle builds the join bundle for cert with the current roster. addrs are
// the authority's node addresses as multiaddrs ending in /p2p/PEERID; psk is
// the private network key or nil. Returns Invalid.
func (a *Authority) Bundle(cert *Certificate, addrs []string, psk []byte) (*JoinBundle, error) {
	const op = "federation.Bundle"
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Roster == nil || cert == nil {
		return nil, node.E(op, node.Invalid, "no roster or certificate")
	}
	if err := cert.Verify(a.PublicKey()); err != nil {
		return nil, err
	}
	if err := checkAuthorityAddrs(addrs); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	if err := checkPSK(psk); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	return &JoinBundle{
		Format:               bundleFormat,
		AuthorityKey:         slices.Clone(a.PublicKey()),
		AuthorityFingerprint: a.Fingerprint().String(),
		AuthorityAddrs:       slices.Clone(addrs),
		Certificate:          *cert,
		Roster:               a.Roster,
		PSK:                  slices.Clone(psk),
	}, nil
}

// Encode returns the bundle's file encoding.
func (b *JoinBundle) Encode() []byte { return encodeIndent(b) }

// DecodeJoinBundle decodes a join bundle and verifies it: the authority key
// must match pin (when pin is not zero; the fingerprint the operator gave at
// init) and the fingerprint the bundle states, and the certificate and the
// roster must be signed by that key. Returns Invalid.
func DecodeJoinBundle(data []byte, pin Fingerprint) (*JoinBundle, error) {
	const op = "federation.DecodeJoinBundle"
	var b JoinBundle
	if err := decodeStrict(op, data, MaxBundleSize, &b); err != nil {
		return nil, err
	}
	if b.Format != bundleFormat {
		return nil, node.E(op, node.Invalid, "unknown bundle format %d", b.Format)
	}
	if len(b.AuthorityKey) != ed25519.PublicKeySize {
		return nil, node.E(op, node.Invalid, "the authority key is not an Ed25519 public key")
	}
	key := ed25519.PublicKey(b.AuthorityKey)
	fp := AuthorityFingerprint(key)
	stated, err := ParseFingerprint(b.AuthorityFingerprint)
	if err != nil || !stated.Equal(fp) {
		return nil, node.E(op, node.Invalid, "the bundle's authority key does not match its fingerprint")
	}
	if !pin.IsZero() && !pin.Equal(fp) {
		return nil, node.E(op, node.Invalid, "the bundle's authority key is not the pinned one (%s)", pin)
	}
	if err := checkAuthorityAddrs(b.AuthorityAddrs); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	if err := checkPSK(b.PSK); err != nil {
		return nil, node.E(op, node.Invalid, "%w", err)
	}
	if err := b.Certificate.Verify(key); err != nil {
		return nil, err
	}
	if b.Roster == nil {
		return nil, node.E(op, node.Invalid, "no roster")
	}
	if err := b.Roster.Verify(key); err != nil {
		return nil, err
	}
	return &b, nil
}

// checkAuthorityAddrs requires multiaddrs that end in /p2p/PEERID.
func checkAuthorityAddrs(addrs []string) error {
	if len(addrs) > maxAddrs {
		return errorf("more than %d authority addresses", maxAddrs)
	}
	for _, s := range addrs {
		if _, err := addrInfo(s); err != nil {
			return err
		}
	}
	return nil
}

// addrInfo parses a multiaddr ending in /p2p/PEERID.
func addrInfo(s string) (*peer.AddrInfo, error) {
	if len(s) > maxAddrLen {
		return nil, errorf("an address is longer than %d bytes", maxAddrLen)
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, errorf("an address is not a multiaddr")
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return nil, errorf("an address does not end in /p2p/PEERID")
	}
	return ai, nil
}
