package federation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// Defaults of a Node.
const (
	DefaultDialTimeout          = 5 * time.Second
	DefaultStreamTimeout        = 2 * time.Minute
	DefaultClockSkew            = 5 * time.Minute
	DefaultStaleGrace           = 24 * time.Hour
	DefaultMaxConcurrentPerPeer = 4
	DefaultPushAttempts         = 8
	DefaultPushBackoff          = time.Second
	maxPushBackoff              = 5 * time.Minute
	exchangeWorkers             = 4
	DefaultRenewCheck           = time.Minute
)

// Audit actions the federation writes.
const (
	ActionQueryAnswer   = "federation.query.answer"
	ActionQueryAsk      = "federation.query.ask"
	ActionRosterInstall = "federation.roster.install"
)

// Node is one member's presence on the federation's network: a libp2p host
// (TCP only, so the optional private network key works) with the connection
// gater, the roster protocol and the query protocol, and the current
// roster. Fill the exported fields after NewNode, then Open; Close stops
// every goroutine it started.
type Node struct {
	// Identity is the node's keys. Required.
	Identity *Identity
	// AuthorityKey is the pinned federation authority key. Required.
	AuthorityKey ed25519.PublicKey
	// AuthorityAddrs are the authority's node addresses, multiaddrs ending
	// in /p2p/PEERID (from the join bundle). Their peers are always let in,
	// and the node connects to them at Open to receive the current roster.
	AuthorityAddrs []string
	// ListenAddrs are the multiaddrs to listen on, e.g.
	// /ip4/0.0.0.0/tcp/4001. None: the node only dials.
	ListenAddrs []string
	// PSK is the federation's private network key (32 bytes), or nil.
	PSK []byte
	// Roster is the roster the node starts from (nil: it waits for one from
	// the authority). It must be signed by AuthorityKey. After Open, see
	// CurrentRoster.
	Roster *Roster
	// Codebook is the codebook the node answers at.
	Codebook *node.Codebook
	// Answerer answers other members' queries; nil: the node answers none
	// (every request is refused as Unavailable).
	Answerer node.Answerer
	// Audit is the node's audit log; nil: nothing is audited and answers
	// carry no audit head.
	Audit node.AuditLog
	// Logger receives the node's log.
	Logger *zap.Logger

	// DialTimeout bounds every dial.
	DialTimeout time.Duration
	// StreamTimeout bounds the life of every inbound stream.
	StreamTimeout time.Duration
	// ClockSkew is the tolerance on certificate validity.
	ClockSkew time.Duration
	// StaleGrace is how long past its next_update the node still answers
	// with its roster.
	StaleGrace time.Duration
	// MaxConcurrentPerPeer caps the queries one querier peer has in flight
	// at this node; more are refused as Unavailable ("busy").
	MaxConcurrentPerPeer int
	// MaxAnswerSize bounds an answer this node reads as a querier.
	MaxAnswerSize int
	// PushRosters makes the node push every newly installed roster to
	// every member, with retries (the authority's node).
	PushRosters bool
	// Authority, when set, is the federation authority this node speaks
	// for: once half of the current roster's validity has passed, the node
	// has it issue a renewed roster (Authority.Renew) and installs it, so
	// members never go stale. Set PushRosters too so they receive it.
	Authority *Authority
	// RenewCheck is how often the node checks whether to renew.
	RenewCheck time.Duration
	// PushAttempts and PushBackoff shape the pushes' retries: up to
	// PushAttempts tries per member, the wait doubling from PushBackoff.
	PushAttempts int
	PushBackoff  time.Duration

	// OnRoster is called (if set) with every roster the node installs, after
	// it is in force, so the caller can persist it. Its error is logged.
	OnRoster func(*Roster) error
	// OnAuditHead is called (if set) with the audit head of every signed
	// answer this node receives as a querier, so the caller keeps them. It
	// is called from several goroutines at once.
	OnAuditHead func(from node.Peer, head node.AuditHead)

	// Now returns the current time.
	Now func() time.Time

	host      host.Host
	roster    atomic.Pointer[Roster]
	authPeers map[peer.ID]bool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	exchangeQ chan peer.ID

	mu         sync.Mutex // guards the fields below and serialises installs
	inflight   map[peer.ID]int
	pushCancel context.CancelFunc
}

// NewNode returns a Node with id, pinned to the authority key, with
// defaults filled in.
func NewNode(id *Identity, authorityKey ed25519.PublicKey) *Node {
	return &Node{
		Identity:             id,
		AuthorityKey:         authorityKey,
		Codebook:             node.DefaultCodebook(),
		Logger:               zap.NewNop(),
		DialTimeout:          DefaultDialTimeout,
		StreamTimeout:        DefaultStreamTimeout,
		ClockSkew:            DefaultClockSkew,
		StaleGrace:           DefaultStaleGrace,
		MaxConcurrentPerPeer: DefaultMaxConcurrentPerPeer,
		MaxAnswerSize:        DefaultMaxAnswerSize,
		PushAttempts:         DefaultPushAttempts,
		PushBackoff:          DefaultPushBackoff,
		RenewCheck:           DefaultRenewCheck,
		Now:                  time.Now,
	}
}

// Open validates the fields, starts the libp2p host with its gater and
// handlers, and connects to the authority's nodes in the background.
// Returns Invalid for a bad field, Unavailable when the host cannot listen.
func (n *Node) Open(ctx context.Context) error {
	const op = "federation.Open"
	if n.Identity == nil || n.Identity.Key == nil {
		return node.E(op, node.Invalid, "no identity")
	}
	if len(n.AuthorityKey) != ed25519.PublicKeySize {
		return node.E(op, node.Invalid, "no authority key pinned")
	}
	if n.Codebook == nil {
		n.Codebook = node.DefaultCodebook()
	}
	if n.Logger == nil {
		n.Logger = zap.NewNop()
	}
	if n.Now == nil {
		n.Now = time.Now
	}
	if n.DialTimeout <= 0 || n.StreamTimeout <= 0 || n.ClockSkew < 0 || n.StaleGrace < 0 || n.MaxConcurrentPerPeer <= 0 {
		return node.E(op, node.Invalid, "timeouts and limits must be positive")
	}
	if n.MaxAnswerSize <= 0 {
		n.MaxAnswerSize = DefaultMaxAnswerSize
	}
	if n.PushAttempts <= 0 {
		n.PushAttempts = DefaultPushAttempts
	}
	if n.PushBackoff <= 0 {
		n.PushBackoff = DefaultPushBackoff
	}
	if err := checkPSK(n.PSK); err != nil {
		return node.E(op, node.Invalid, "%w", err)
	}
	n.authPeers = make(map[peer.ID]bool)
	var authInfos []peer.AddrInfo
	for _, a := range n.AuthorityAddrs {
		ai, err := addrInfo(a)
		if err != nil {
			return node.E(op, node.Invalid, "authority address: %w", err)
		}
		n.authPeers[ai.ID] = true
		authInfos = append(authInfos, *ai)
	}
	if n.Roster != nil {
		r, err := verifiedCopy(n.Roster, n.AuthorityKey)
		if err != nil {
			return err
		}
		if err := n.checkPSKMatches(r); err != nil {
			return node.E(op, node.Invalid, "%w", err)
		}
		n.roster.Store(r)
	}
	n.inflight = make(map[peer.ID]int)
	n.exchangeQ = make(chan peer.ID, 256)
	n.ctx, n.cancel = context.WithCancel(context.Background())

	opts := []libp2p.Option{
		libp2p.Identity(n.Identity.Key),
		libp2p.ListenAddrStrings(n.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ConnectionGater(&gater{n: n}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.WithDialTimeout(n.DialTimeout),
		libp2p.UserAgent("ctfed"),
	}
	if len(n.ListenAddrs) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	if len(n.PSK) > 0 {
		opts = append(opts, libp2p.PrivateNetwork(n.PSK))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		n.cancel()
		return node.E(op, node.Unavailable, "start the libp2p host: %w", err)
	}
	n.host = h
	h.SetStreamHandler(QueryProtocol, n.handleQuery)
	h.SetStreamHandler(RosterProtocol, n.handleRoster)
	h.Network().Notify(&network.NotifyBundle{ConnectedF: n.connected})

	for range exchangeWorkers {
		n.wg.Add(1)
		go n.exchangeLoop()
	}
	for _, ai := range authInfos {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		n.wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer n.wg.Done()
			n.dialAuthority(ai)
		}(ai)
	}
	if r := n.roster.Load(); r != nil && n.PushRosters {
		n.push(r)
	}
	if n.Authority != nil {
		if n.RenewCheck <= 0 {
			n.RenewCheck = DefaultRenewCheck
		}
		n.wg.Add(1)
		go n.renewLoop()
	}
	n.Logger.Info("federation node open",
		zap.String("peer_id", h.ID().String()),
		zap.Strings("addrs", n.Addrs()),
		zap.Bool("private_network", len(n.PSK) > 0))
	return nil
}

// Close stops the host and waits for every goroutine of the node, up to
// ctx's deadline.
func (n *Node) Close(ctx context.Context) error {
	if n.host == nil {
		return nil
	}
	n.cancel()
	err := n.host.Close()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, node.E("federation.Close", node.Unavailable, "goroutines still running: %w", ctx.Err()))
	}
	if err != nil {
		return node.E("federation.Close", node.Internal, "close the libp2p host: %w", err)
	}
	return nil
}

// Host returns the node's libp2p host (after Open).
func (n *Node) Host() host.Host { return n.host }

// PeerID returns the node's peer ID.
func (n *Node) PeerID() peer.ID { return n.Identity.PeerID() }

// Addrs returns the node's listening addresses as multiaddrs ending in
// /p2p/PEERID, the form other nodes dial (after Open).
func (n *Node) Addrs() []string {
	if n.host == nil {
		return nil
	}
	ais, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, len(ais))
	for i, a := range ais {
		out[i] = a.String()
	}
	return out
}

// AddPeerAddrs records addresses (multiaddrs, with or without /p2p/) at
// which peerID can be dialled, e.g. from its join request. Returns Invalid.
func (n *Node) AddPeerAddrs(peerID string, addrs []string) error {
	const op = "federation.AddPeerAddrs"
	p, err := parsePeerID(peerID)
	if err != nil {
		return node.E(op, node.Invalid, "%w", err)
	}
	var ms []ma.Multiaddr
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return node.E(op, node.Invalid, "an address is not a multiaddr")
		}
		tr, _ := peer.SplitAddr(m)
		if tr != nil {
			ms = append(ms, tr)
		}
	}
	n.host.Peerstore().AddAddrs(p, ms, peerstore.PermanentAddrTTL)
	return nil
}

// Connect dials addr (a multiaddr ending in /p2p/PEERID) within the dial
// timeout. Returns Invalid for a bad address, Permission for a peer the
// gater refuses, Unavailable when it cannot be reached.
func (n *Node) Connect(ctx context.Context, addr string) error {
	const op = "federation.Connect"
	ai, err := addrInfo(addr)
	if err != nil {
		return node.E(op, node.Invalid, "%w", err)
	}
	if !n.allowed(ai.ID) {
		return node.E(op, node.Permission, "peer %s is not a current member", ai.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, n.DialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, *ai); err != nil {
		return node.E(op, node.Unavailable, "peer %s is unreachable", ai.ID)
	}
	return nil
}

// CurrentRoster returns the roster in force, or nil before the first one.
func (n *Node) CurrentRoster() *Roster { return n.roster.Load() }

// Member returns what the current roster says of p now.
func (n *Node) Member(p peer.ID) (*Certificate, MemberStatus) {
	return n.roster.Load().Member(p, n.Now(), n.ClockSkew)
}

// allowed reports whether the gater lets p in: a current member or one of
// the authority's peers.
func (n *Node) allowed(p peer.ID) bool {
	if n.authPeers[p] {
		return true
	}
	r := n.roster.Load()
	if r == nil {
		return false
	}
	if r.IsAuthority(p) {
		return true
	}
	_, st := r.Member(p, n.Now(), n.ClockSkew)
	return st == MemberOK
}

// InstallRoster makes r the node's roster if it is signed by the pinned key
// and newer than the current one, closes the connections of peers that lost
// their membership, calls OnRoster and, on the authority's node, pushes r to
// every member. It reports whether r was installed: an older or equal
// version is stale and changes nothing (false, nil). Returns Invalid for a
// roster not signed by the pinned key.
func (n *Node) InstallRoster(ctx context.Context, r *Roster) (bool, error) {
	const op = "federation.InstallRoster"
	if r == nil {
		return false, node.E(op, node.Invalid, "no roster")
	}
	r, err := verifiedCopy(r, n.AuthorityKey)
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	cur := n.roster.Load()
	if cur != nil && r.Version <= cur.Version {
		n.mu.Unlock()
		return false, nil
	}
	n.roster.Store(r)
	n.mu.Unlock()

	log := n.Logger.With(zap.Uint64("roster_version", r.Version))
	log.Info("roster installed", zap.Int("certificates", len(r.Certificates)), zap.Int("revocations", len(r.Revocations)))
	if err := n.checkPSKMatches(r); err != nil {
		log.Warn("the roster names another private network key than this node's", zap.Error(err))
	}
	n.pruneConns()
	var errs []error
	if n.Audit != nil {
		e := &node.AuditEntry{Actor: n.PeerID().String(), Action: ActionRosterInstall, Subject: fmt.Sprintf("v%d", r.Version),
			Detail: fmt.Sprintf("certificates=%d revocations=%d", len(r.Certificates), len(r.Revocations))}
		if err := n.Audit.Append(ctx, e); err != nil {
			errs = append(errs, node.E(op, node.KindOf(err), "audit: %w", err))
		}
	}
	if n.OnRoster != nil {
		if err := n.OnRoster(r); err != nil {
			errs = append(errs, node.E(op, node.KindOf(err), "persist the roster: %w", err))
		}
	}
	if n.PushRosters && n.host != nil {
		n.push(r)
	}
	if err := errors.Join(errs...); err != nil {
		log.Error("after installing the roster", zap.Error(err))
		return true, err
	}
	return true, nil
}

// checkPSKMatches reports a roster whose private network key fingerprint is
// not this node's key's.
func (n *Node) checkPSKMatches(r *Roster) error {
	if r.PSKFingerprint == "" {
		return nil
	}
	want, err := ParseFingerprint(r.PSKFingerprint)
	if err != nil {
		return err
	}
	if len(n.PSK) == 0 || !PSKFingerprint(n.PSK).Equal(want) {
		return fmt.Errorf("the roster requires the private network key %s", want)
	}
	return nil
}

// pruneConns closes the connections of peers the gater no longer lets in.
func (n *Node) pruneConns() {
	if n.host == nil {
		return
	}
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		if !n.allowed(p) {
			n.Logger.Info("closing the connection of a peer that is no longer a member", zap.String("peer_id", p.String()))
			_ = c.Close()
		}
	}
}

// connected queues a roster exchange with every peer this node dialled.
func (n *Node) connected(_ network.Network, c network.Conn) {
	if c.Stat().Direction != network.DirOutbound {
		return
	}
	select {
	case n.exchangeQ <- c.RemotePeer():
	default:
		n.Logger.Debug("roster exchange queue full", zap.String("peer_id", c.RemotePeer().String()))
	}
}

// exchangeLoop runs the roster exchanges queued by connected.
func (n *Node) exchangeLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case p := <-n.exchangeQ:
			ctx, cancel := context.WithTimeout(n.ctx, n.DialTimeout+10*time.Second)
			if err := n.exchangeRoster(ctx, p, false); err != nil && n.ctx.Err() == nil {
				n.Logger.Debug("roster exchange failed", zap.String("peer_id", p.String()), zap.Error(err))
			}
			cancel()
		}
	}
}

// dialAuthority connects to one of the authority's nodes, retrying with
// backoff until it succeeds or the node closes; the connection's roster
// exchange brings the current roster.
func (n *Node) dialAuthority(ai peer.AddrInfo) {
	wait := n.PushBackoff
	for attempt := 0; attempt < n.PushAttempts; attempt++ {
		ctx, cancel := context.WithTimeout(n.ctx, n.DialTimeout)
		err := n.host.Connect(ctx, ai)
		cancel()
		if err == nil || n.ctx.Err() != nil {
			return
		}
		n.Logger.Debug("the authority's node is unreachable", zap.String("peer_id", ai.ID.String()), zap.Int("attempt", attempt+1))
		if !sleepCtx(n.ctx, wait) {
			return
		}
		wait = min(2*wait, maxPushBackoff)
	}
	n.Logger.Warn("the authority's node stayed unreachable", zap.String("peer_id", ai.ID.String()))
}

// push sends r to every member and authority peer but this node, each with
// retries, in goroutines owned by the node; a newer push cancels an older
// one.
func (n *Node) push(r *Roster) {
	n.mu.Lock()
	if n.pushCancel != nil {
		n.pushCancel()
	}
	ctx, cancel := context.WithCancel(n.ctx)
	n.pushCancel = cancel
	n.mu.Unlock()
	targets := make(map[peer.ID]bool)
	for _, c := range r.Members("", n.Now(), n.ClockSkew) {
		if p, err := peer.Decode(c.PeerID); err == nil {
			targets[p] = true
		}
	}
	for _, s := range r.AuthorityPeers {
		if p, err := peer.Decode(s); err == nil {
			targets[p] = true
		}
	}
	delete(targets, n.PeerID())
	ids := make([]peer.ID, 0, len(targets))
	for p := range targets {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	for _, p := range ids {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.pushTo(ctx, p, r)
		}()
	}
}

// pushTo pushes r to p, retrying with backoff.
func (n *Node) pushTo(ctx context.Context, p peer.ID, r *Roster) {
	wait := n.PushBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, n.DialTimeout+10*time.Second)
		err := n.pushRoster(actx, p, r)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		if attempt >= n.PushAttempts {
			n.Logger.Warn("could not push the roster", zap.String("peer_id", p.String()), zap.Uint64("roster_version", r.Version), zap.Int("attempts", attempt))
			return
		}
		if !sleepCtx(ctx, wait) {
			return
		}
		wait = min(2*wait, maxPushBackoff)
	}
}

// renewLoop renews the roster through n.Authority once half of its
// validity has passed.
func (n *Node) renewLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.RenewCheck)
	defer t.Stop()
	for {
		n.renewIfDue()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// renewIfDue installs the authority's roster if it is newer than the
// node's, and has it renew a roster past half of its validity.
func (n *Node) renewIfDue() {
	a := n.Authority
	ar := a.Current()
	if ar == nil {
		return
	}
	if cur := n.roster.Load(); cur == nil || ar.Version > cur.Version {
		if _, err := n.InstallRoster(n.ctx, ar); err != nil {
			n.Logger.Error("install the authority's roster", zap.Error(err))
		}
	}
	half := ar.IssuedAt.Add(ar.NextUpdate.Sub(ar.IssuedAt) / 2)
	if n.Now().Before(half) {
		return
	}
	r, err := a.Renew()
	if err != nil {
		n.Logger.Error("renew the roster", zap.Error(err))
		return
	}
	if _, err := n.InstallRoster(n.ctx, r); err != nil {
		n.Logger.Error("install the renewed roster", zap.Error(err))
	}
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
