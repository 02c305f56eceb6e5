package federation

import (
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"
)

// gater is the node's connection gater: it lets in, inbound and outbound,
// only current members of the node's roster and the authority's peers.
// Inbound connections are judged once the peer has proven its key (after
// the security handshake).
type gater struct{ n *Node }

var _ connmgr.ConnectionGater = (*gater)(nil)

// InterceptPeerDial refuses to dial a peer that is not a current member.
func (g *gater) InterceptPeerDial(p peer.ID) bool {
	ok := g.n.allowed(p)
	if !ok {
		g.n.Logger.Debug("refused to dial a peer that is not a member", zap.String("peer_id", p.String()))
	}
	return ok
}

// InterceptAddrDial allows every address of a peer already allowed.
func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptAccept allows the handshake; the peer is judged once known.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection, in either direction, with a peer
// that is not a current member.
func (g *gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	ok := g.n.allowed(p)
	if !ok {
		g.n.Logger.Info("refused a connection from a peer that is not a member",
			zap.String("peer_id", p.String()), zap.Stringer("direction", dir))
	}
	return ok
}

// InterceptUpgraded allows a connection already secured and allowed.
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
