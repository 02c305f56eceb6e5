package federation

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/node"
)

// hostInfo returns n's peer ID and listening addresses.
func hostInfo(n *Node) peer.AddrInfo { return peer.AddrInfo{ID: n.PeerID(), Addrs: n.host.Addrs()} }

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// connectErr dials b from a and returns the error.
func connectErr(a, b *Node) error {
	return a.Connect(context.Background(), b.Addrs()[0])
}

func TestGater(t *testing.T) {
	f := newTestFed(t)
	now := time.Now().UTC().Truncate(time.Second)
	hqID, memberID, revokedID, futureID, expiredID := mustIdentity(t), mustIdentity(t), mustIdentity(t), mustIdentity(t), mustIdentity(t)
	f.admit(t, hqID, "HQ", "CHE", node.RoleQuerier)
	f.admit(t, memberID, "Shelter", "THA", node.RoleContributor)
	f.admit(t, revokedID, "Revoked Org", "NGA", node.RoleContributor)
	if _, _, err := f.auth.Issue(mustJoinRequest(t, futureID, "Future Org", "ROU"), []string{node.RoleContributor}, now.Add(24*time.Hour), now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.auth.Issue(mustJoinRequest(t, expiredID, "Expired Org", "UKR"), []string{node.RoleContributor}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Revoke(revokedID.PeerID().String()); err != nil {
		t.Fatal(err)
	}
	hq := mustOpenNode(t, f, hqID, nil)
	member := mustOpenNode(t, f, memberID, nil)
	outsiders := map[string]*Node{
		"NonMember":   mustOpenNode(t, f, mustIdentity(t), nil),
		"Revoked":     mustOpenNode(t, f, revokedID, nil),
		"NotYetValid": mustOpenNode(t, f, futureID, nil),
		"Expired":     mustOpenNode(t, f, expiredID, nil),
	}
	t.Run("MemberOK", func(t *testing.T) {
		if err := connectErr(member, hq); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
	})
	for name, o := range outsiders {
		t.Run("Inbound"+name, func(t *testing.T) {
			// The outsider's own gater would refuse hq too: let it dial
			// through its host, so that hq's gater is the one tested.
			// The handshake completes on the dialler's side before the
			// listener's gater, which judges the proven peer ID, closes it.
			_ = o.host.Connect(context.Background(), hostInfo(hq))
			waitFor(t, 5*time.Second, "the refused connection to close", func() bool {
				return o.host.Network().Connectedness(hq.PeerID()) != network.Connected
			})
			if hq.host.Network().Connectedness(o.PeerID()) == network.Connected {
				t.Errorf("got connected, want refused")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if s, err := o.host.NewStream(network.WithNoDial(ctx, "test"), hq.PeerID(), QueryProtocol); err == nil {
				_ = s.Reset()
				t.Errorf("got a stream, want none")
			}
		})
		t.Run("Outbound"+name, func(t *testing.T) {
			if err := hq.host.Connect(context.Background(), hostInfo(o)); err == nil {
				t.Errorf("got nil, want a refused dial")
			}
			if err := connectErr(hq, o); node.KindOf(err) != node.Permission {
				t.Errorf("got %v, want %v", node.KindOf(err), node.Permission)
			}
		})
	}
	t.Run("RevokedWhileConnected", func(t *testing.T) {
		if err := connectErr(hq, member); err != nil {
			t.Fatal(err)
		}
		r, err := f.auth.Revoke(memberID.PeerID().String())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := hq.InstallRoster(context.Background(), r); !ok || err != nil {
			t.Fatalf("got %v, %v, want true, nil", ok, err)
		}
		waitFor(t, 5*time.Second, "the revoked member's connection to close", func() bool {
			return hq.host.Network().Connectedness(member.PeerID()) != network.Connected
		})
		if err := member.host.Connect(context.Background(), hostInfo(hq)); err == nil {
			waitFor(t, 5*time.Second, "the connection to close", func() bool {
				return hq.host.Network().Connectedness(member.PeerID()) != network.Connected
			})
		}
	})
}

func TestRosterExchange(t *testing.T) {
	f := newTestFed(t)
	aID, bID := mustIdentity(t), mustIdentity(t)
	f.admit(t, aID, "Shelter", "THA", node.RoleContributor)
	f.admit(t, bID, "Ministry", "ROU", node.RoleQuerier)
	a := mustOpenNode(t, f, aID, nil)
	b := mustOpenNode(t, f, bID, nil)
	v3, err := f.auth.Renew()
	if err != nil {
		t.Fatal(err)
	}
	v4, err := f.auth.Renew()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ResponderNewer", func(t *testing.T) {
		if _, err := a.InstallRoster(context.Background(), v3); err != nil {
			t.Fatal(err)
		}
		if err := connectErr(b, a); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "b to receive v3", func() bool { return b.CurrentRoster().Version == v3.Version })
	})
	t.Run("InitiatorNewer", func(t *testing.T) {
		if _, err := b.InstallRoster(context.Background(), v4); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.exchangeRoster(ctx, a.PeerID(), false); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "a to receive v4", func() bool { return a.CurrentRoster().Version == v4.Version })
	})
	t.Run("ErrForgedIgnored", func(t *testing.T) {
		other := newTestFed(t)
		other.auth.Roster = &Roster{Version: 99}
		other.admit(t, aID, "Shelter", "THA", node.RoleContributor, node.RoleQuerier)
		if _, err := decodeRosterMsg(mustJSON(t, &rosterMsg{Format: wireFormat, Version: 100, Roster: other.auth.Roster}), f.pub()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
}

func TestNewMemberReceivesFirstRoster(t *testing.T) {
	f := newTestFed(t)
	hqID, authNodeID, newID := mustIdentity(t), mustIdentity(t), mustIdentity(t)
	f.auth.PeerIDs = []string{authNodeID.PeerID().String()}
	f.admit(t, hqID, "HQ", "CHE", node.RoleQuerier)
	authNode := mustOpenNode(t, f, authNodeID, func(n *Node) { n.PushRosters = true })
	hq := mustOpenNode(t, f, hqID, nil)
	introduce(t, hq, authNode)
	// The new member starts with nothing but the authority's address.
	ans := &fakeAnswerer{mode: modeAnswer}
	nm := mustOpenNode(t, f, newID, func(n *Node) {
		n.Roster = nil
		n.AuthorityAddrs = authNode.Addrs()[:1]
		n.Answerer = ans
	})
	if nm.CurrentRoster() != nil {
		t.Fatal("the new member has a roster before admission")
	}
	if err := authNode.AddPeerAddrs(newID.PeerID().String(), nm.Addrs()); err != nil {
		t.Fatal(err)
	}
	_, r, err := f.auth.Admit(mustJoinRequest(t, newID, "New Shelter", "NGA"), []string{node.RoleContributor}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := authNode.InstallRoster(context.Background(), r); !ok || err != nil {
		t.Fatalf("got %v, %v, want true, nil", ok, err)
	}
	waitFor(t, 10*time.Second, "the new member's first roster", func() bool {
		cur := nm.CurrentRoster()
		return cur != nil && cur.Version == r.Version
	})
	waitFor(t, 10*time.Second, "hq's new roster", func() bool { return hq.CurrentRoster().Version == r.Version })
	introduce(t, hq, nm)
	res, err := NewCoordinator(hq).Query(context.Background(), &node.QueryRequest{Query: testQuery(t), Epsilon: 0.5, Purpose: "test"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Coverage) != 1 || res.Coverage[0].Status != CoverageAnswered || res.Coverage[0].Org != "New Shelter" {
		t.Errorf("got coverage %+v, want the new member answered", res.Coverage)
	}
}

func TestPrivateNetwork(t *testing.T) {
	f := newTestFed(t)
	psk, _ := NewPSK()
	wrong, _ := NewPSK()
	f.auth.PSKFingerprint = PSKFingerprint(psk).String()
	hqID, goodID, badID := mustIdentity(t), mustIdentity(t), mustIdentity(t)
	f.admit(t, hqID, "HQ", "CHE", node.RoleQuerier)
	f.admit(t, goodID, "Shelter", "THA", node.RoleContributor)
	f.admit(t, badID, "Agency", "ROU", node.RoleContributor)
	hq := mustOpenNode(t, f, hqID, func(n *Node) { n.PSK = psk; n.DialTimeout = time.Second })
	good := mustOpenNode(t, f, goodID, func(n *Node) { n.PSK = psk; n.Answerer = &fakeAnswerer{mode: modeAnswer} })
	// The wrong key's node is opened without the roster, which would refuse
	// its key at Open.
	bad := mustOpenNode(t, f, badID, func(n *Node) { n.PSK = wrong; n.Roster = nil; n.Answerer = &fakeAnswerer{mode: modeAnswer} })
	introduce(t, hq, good, bad)
	res, err := NewCoordinator(hq).Query(context.Background(), &node.QueryRequest{Query: testQuery(t), Epsilon: 0.5}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range res.Coverage {
		got[c.Org] = c.Status
	}
	if got["Shelter"] != CoverageAnswered || got["Agency"] != CoverageUnreachable {
		t.Errorf("got %v, want Shelter answered and Agency unreachable", got)
	}
	t.Run("ErrRosterNamesAnotherKey", func(t *testing.T) {
		n := NewNode(mustIdentity(t), f.pub())
		n.Roster, n.PSK = f.auth.Roster, wrong
		if err := n.Open(context.Background()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
			_ = n.Close(context.Background())
		}
	})
}

func TestAddressDiscovery(t *testing.T) {
	// Members know only the authority's address; they learn each other's
	// from the signed peer records the roster exchange carries.
	f := newTestFed(t)
	authID, qID, cID := mustIdentity(t), mustIdentity(t), mustIdentity(t)
	f.auth.PeerIDs = []string{authID.PeerID().String()}
	f.admit(t, qID, "HQ", "CHE", node.RoleQuerier)
	f.admit(t, cID, "Shelter", "THA", node.RoleContributor)
	authNode := mustOpenNode(t, f, authID, func(n *Node) { n.PushRosters = true })
	c := mustOpenNode(t, f, cID, func(n *Node) {
		n.AuthorityAddrs = authNode.Addrs()[:1]
		n.Answerer = &fakeAnswerer{mode: modeAnswer}
	})
	waitFor(t, 5*time.Second, "the contributor to reach the authority", func() bool {
		return authNode.host.Network().Connectedness(c.PeerID()) == network.Connected
	})
	q := mustOpenNode(t, f, qID, func(n *Node) { n.AuthorityAddrs = authNode.Addrs()[:1] })
	res, err := NewCoordinator(q).Query(context.Background(), &node.QueryRequest{Query: testQuery(t), Epsilon: 0.5}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Coverage) != 1 || res.Coverage[0].Status != CoverageAnswered {
		t.Errorf("got %+v, want the contributor answered", res.Coverage)
	}
}

func TestAuthorityRenews(t *testing.T) {
	f := newTestFed(t)
	authID, mID := mustIdentity(t), mustIdentity(t)
	f.auth.PeerIDs = []string{authID.PeerID().String()}
	f.auth.RosterValidity = time.Hour
	f.admit(t, mID, "Shelter", "THA", node.RoleContributor)
	issued := f.auth.Roster
	clock := issued.IssuedAt.Add(31 * time.Minute) // past half of the validity
	f.auth.Now = func() time.Time { return clock }
	authNode := mustOpenNode(t, f, authID, func(n *Node) {
		n.Authority, n.PushRosters, n.RenewCheck = f.auth, true, 20*time.Millisecond
		n.Now = func() time.Time { return clock }
	})
	m := mustOpenNode(t, f, mID, func(n *Node) { n.Now = func() time.Time { return clock } })
	introduce(t, authNode, m)
	waitFor(t, 5*time.Second, "the member to receive the renewed roster", func() bool {
		return m.CurrentRoster().Version > issued.Version
	})
	if r := m.CurrentRoster(); !r.NextUpdate.After(issued.NextUpdate) {
		t.Errorf("got next_update %v, want after %v", r.NextUpdate, issued.NextUpdate)
	}
}
