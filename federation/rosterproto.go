package federation

import (
	"bufio"
	"context"
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
	"go.uber.org/zap"
)

// The roster protocol (/ctfed/roster/1.0.0). The initiator sends its
// version, and its roster when it pushes; the responder installs a newer
// roster it received and replies with its version, and its roster when the
// initiator's is older; when the responder's is older, the initiator sends
// its roster in a third message. Every roster is verified against the
// pinned authority key, so any member may pass one on.

const (
	serviceRoster    = "ctfed.roster"
	rosterStreamTime = 30 * time.Second
)

// handleRoster is the roster protocol's responder.
func (n *Node) handleRoster(s network.Stream) {
	if err := s.Scope().SetService(serviceRoster); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(rosterStreamTime))
	log := n.Logger.With(zap.String("peer_id", s.Conn().RemotePeer().String()))
	r := bufio.NewReader(io.LimitReader(s, 2*(maxRosterMsgSize+16)))
	first, err := n.readRosterMsg(r)
	if err != nil {
		log.Debug("roster exchange: bad first message", zap.Error(err))
		_ = s.Reset()
		return
	}
	if first.Roster != nil {
		n.installReceived(first.Roster, s.Conn().RemotePeer())
	}
	n.consumePeerRecords(first.PeerRecords)
	reply := n.rosterOffer(first.Version)
	reply.PeerRecords = n.peerRecords()
	if err := writeMsg(s, reply); err != nil {
		_ = s.Reset()
		return
	}
	if reply.Version < first.Version && first.Roster == nil {
		third, err := n.readRosterMsg(r)
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				log.Debug("roster exchange: bad third message", zap.Error(err))
				_ = s.Reset()
				return
			}
		} else if third.Roster != nil {
			n.installReceived(third.Roster, s.Conn().RemotePeer())
		}
	}
	_ = s.Close()
}

// rosterOffer is this node's message to a peer at version theirs: its
// version, and its roster if the peer's is older.
func (n *Node) rosterOffer(theirs uint64) *rosterMsg {
	m := &rosterMsg{Format: wireFormat}
	if cur := n.roster.Load(); cur != nil {
		m.Version = cur.Version
		if cur.Version > theirs {
			m.Roster = cur
		}
	}
	return m
}

// readRosterMsg reads and verifies one roster protocol message.
func (n *Node) readRosterMsg(r *bufio.Reader) (*rosterMsg, error) {
	data, err := readFrame(r, maxRosterMsgSize)
	if err != nil {
		return nil, err
	}
	return decodeRosterMsg(data, n.AuthorityKey)
}

// installReceived installs a roster received from p, logging the outcome.
func (n *Node) installReceived(r *Roster, from peer.ID) {
	ok, err := n.InstallRoster(n.ctx, r)
	if err != nil {
		n.Logger.Warn("roster from a peer", zap.String("peer_id", from.String()), zap.Error(err))
		return
	}
	if !ok {
		n.Logger.Debug("stale roster from a peer ignored", zap.String("peer_id", from.String()), zap.Uint64("roster_version", r.Version))
	}
}

// exchangeRoster runs the initiator's side with p: it offers its version
// (and its roster when push is true) and installs a newer roster it gets.
func (n *Node) exchangeRoster(ctx context.Context, p peer.ID, push bool) error {
	s, err := n.host.NewStream(ctx, p, RosterProtocol)
	if err != nil {
		return err
	}
	if err := s.Scope().SetService(serviceRoster); err != nil {
		_ = s.Reset()
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	mine := n.roster.Load()
	first := &rosterMsg{Format: wireFormat}
	if mine != nil {
		first.Version = mine.Version
		if push {
			first.Roster = mine
		}
	}
	first.PeerRecords = n.peerRecords()
	if err := writeMsg(s, first); err != nil {
		_ = s.Reset()
		return err
	}
	reply, err := n.readRosterMsg(bufio.NewReader(io.LimitReader(s, maxRosterMsgSize+16)))
	if err != nil {
		_ = s.Reset()
		return err
	}
	if reply.Roster != nil {
		n.installReceived(reply.Roster, p)
	}
	n.consumePeerRecords(reply.PeerRecords)
	if mine != nil && !push && reply.Version < mine.Version {
		if err := writeMsg(s, &rosterMsg{Format: wireFormat, Version: mine.Version, Roster: mine}); err != nil {
			_ = s.Reset()
			return err
		}
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return err
	}
	// Wait for the responder to finish reading, so a push counts as
	// delivered only once it has been installed.
	_, _ = io.Copy(io.Discard, io.LimitReader(s, 1))
	return s.Close()
}

// pushRoster pushes r to p; it succeeds once p holds r or a newer roster.
func (n *Node) pushRoster(ctx context.Context, p peer.ID, r *Roster) error {
	if cur := n.roster.Load(); cur == nil || cur.Version != r.Version {
		// A newer roster superseded r; its own push takes over.
		return nil
	}
	return n.exchangeRoster(ctx, p, true)
}

// peerRecordTTL is how long addresses learnt from a relayed peer record are
// kept.
const peerRecordTTL = 24 * time.Hour

// peerRecords returns the signed peer records this node holds for itself,
// the current members and the authority's peers.
func (n *Node) peerRecords() [][]byte {
	cab, ok := peerstore.GetCertifiedAddrBook(n.host.Peerstore())
	if !ok {
		return nil
	}
	ids := []peer.ID{n.PeerID()}
	r := n.roster.Load()
	for _, c := range r.Members("", n.Now(), n.ClockSkew) {
		if p, err := peer.Decode(c.PeerID); err == nil && p != n.PeerID() {
			ids = append(ids, p)
		}
	}
	if r != nil {
		for _, s := range r.AuthorityPeers {
			if p, err := peer.Decode(s); err == nil && p != n.PeerID() {
				ids = append(ids, p)
			}
		}
	}
	var out [][]byte
	for _, p := range ids {
		env := cab.GetPeerRecord(p)
		if env == nil {
			continue
		}
		if b, err := env.Marshal(); err == nil && len(out) < maxPeerRecords {
			out = append(out, b)
		}
	}
	return out
}

// consumePeerRecords stores the addresses of the signed peer records of
// current members; each record is verified against its own peer's key, so
// the peer that relays it cannot forge it.
func (n *Node) consumePeerRecords(recs [][]byte) {
	cab, ok := peerstore.GetCertifiedAddrBook(n.host.Peerstore())
	if !ok {
		return
	}
	for _, b := range recs {
		env, rec, err := record.ConsumeEnvelope(b, peer.PeerRecordEnvelopeDomain)
		if err != nil {
			continue
		}
		pr, ok := rec.(*peer.PeerRecord)
		if !ok || pr.PeerID == n.PeerID() || !n.allowed(pr.PeerID) {
			continue
		}
		_, _ = cab.ConsumePeerRecord(env, peerRecordTTL)
	}
}

// refreshAddrs asks the authority's peers for the members' signed peer
// records when this node knows no address for one of members, within the
// dial timeout.
func (n *Node) refreshAddrs(ctx context.Context, members []*Certificate) {
	missing := false
	for _, c := range members {
		p, err := peer.Decode(c.PeerID)
		if err != nil || p == n.PeerID() {
			continue
		}
		if n.host.Network().Connectedness(p) != network.Connected && len(n.host.Peerstore().Addrs(p)) == 0 {
			missing = true
			break
		}
	}
	if !missing {
		return
	}
	var auth []peer.ID
	for p := range n.authPeers {
		auth = append(auth, p)
	}
	if r := n.roster.Load(); r != nil {
		for _, s := range r.AuthorityPeers {
			if p, err := peer.Decode(s); err == nil && !n.authPeers[p] {
				auth = append(auth, p)
			}
		}
	}
	for _, p := range auth {
		if p == n.PeerID() {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, n.DialTimeout)
		err := n.exchangeRoster(actx, p, false)
		cancel()
		if err == nil {
			return
		}
	}
}
