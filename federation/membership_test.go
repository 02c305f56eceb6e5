package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/node"
)

func TestIdentityMarshal(t *testing.T) {
	id := mustIdentity(t)
	got, err := UnmarshalIdentity(id.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.PeerID() != id.PeerID() {
		t.Errorf("peer ID: got %v, want %v", got.PeerID(), id.PeerID())
	}
	if !bytes.Equal(got.X25519Public(), id.X25519Public()) {
		t.Errorf("X25519 public key differs after a round trip")
	}
	for name, data := range map[string][]byte{
		"Empty":         nil,
		"NotJSON":       []byte("nope"),
		"UnknownFormat": []byte(`{"format":2,"libp2p":"","x25519":""}`),
		"BadKeys":       []byte(`{"format":1,"libp2p":"AAAA","x25519":"AAAA"}`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := UnmarshalIdentity(data); node.KindOf(err) != node.Invalid {
				t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	key, err := NewAuthorityKey()
	if err != nil {
		t.Fatal(err)
	}
	fp := AuthorityFingerprint(key.Public().(ed25519.PublicKey))
	s := fp.String()
	if !strings.HasPrefix(s, AuthorityFingerprintPrefix) {
		t.Fatalf("got %q, want the prefix %q", s, AuthorityFingerprintPrefix)
	}
	for name, text := range map[string]string{
		"AsWritten":   s,
		"LowerCase":   strings.ToLower(s),
		"NoDashes":    AuthorityFingerprintPrefix + strings.ReplaceAll(s[len(AuthorityFingerprintPrefix):], "-", ""),
		"WithSpaces":  AuthorityFingerprintPrefix + strings.ReplaceAll(s[len(AuthorityFingerprintPrefix):], "-", " "),
		"UpperPrefix": strings.ToUpper(s[:len(AuthorityFingerprintPrefix)]) + s[len(AuthorityFingerprintPrefix):],
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseFingerprint(text)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(fp) {
				t.Errorf("got %v, want %v", got, fp)
			}
		})
	}
	for name, text := range map[string]string{
		"Empty":      "",
		"NoPrefix":   s[len(AuthorityFingerprintPrefix):],
		"Truncated":  s[:len(s)-4],
		"BadBase32":  AuthorityFingerprintPrefix + strings.Repeat("1", 52),
		"OtherKey":   PSKFingerprintPrefix + "x",
		"VeryLong":   AuthorityFingerprintPrefix + strings.Repeat("A", 500),
		"Whitespace": "   ",
	} {
		t.Run("Err"+name, func(t *testing.T) {
			if _, err := ParseFingerprint(text); node.KindOf(err) != node.Invalid {
				t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
			}
		})
	}
	t.Run("PSKDiffersFromAuthority", func(t *testing.T) {
		psk, _ := NewPSK()
		if PSKFingerprint(psk).Equal(fp) {
			t.Error("a PSK fingerprint equals an authority fingerprint")
		}
		got, err := DecodePSK(EncodePSK(psk))
		if err != nil || !bytes.Equal(got, psk) {
			t.Errorf("got %x, %v, want %x", got, err, psk)
		}
	})
}

func TestJoinRequest(t *testing.T) {
	id := mustIdentity(t)
	r, err := NewJoinRequest(id, "Freedom Shelter", "THA", []string{"/ip4/127.0.0.1/tcp/4001"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		got, err := DecodeJoinRequest(r.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if got.PeerID != id.PeerID().String() || got.Org != "Freedom Shelter" {
			t.Errorf("got %v %q, want %v %q", got.PeerID, got.Org, id.PeerID(), "Freedom Shelter")
		}
	})
	t.Run("ErrAltered", func(t *testing.T) {
		alt := *r
		alt.Org = "Another Org"
		if _, err := DecodeJoinRequest(alt.Encode()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrOtherPeer", func(t *testing.T) {
		alt := *r
		alt.PeerID = mustIdentity(t).PeerID().String()
		if _, err := DecodeJoinRequest(alt.Encode()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	for name, mod := range map[string]func(*JoinRequest){
		"ErrCountry": func(r *JoinRequest) { r.Country = "XX" },
		"ErrOrg":     func(r *JoinRequest) { r.Org = "" },
		"ErrOrgCtl":  func(r *JoinRequest) { r.Org = "a\nb" },
		"ErrX25519":  func(r *JoinRequest) { r.X25519 = r.X25519[:5] },
		"ErrAddr":    func(r *JoinRequest) { r.Addrs = []string{"not an addr"} },
	} {
		t.Run(name, func(t *testing.T) {
			bad := *r
			mod(&bad)
			if _, err := DecodeJoinRequest(bad.Encode()); node.KindOf(err) != node.Invalid {
				t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
			}
		})
	}
}

func TestAdmitAndRoster(t *testing.T) {
	f := newTestFed(t)
	a, b := mustIdentity(t), mustIdentity(t)
	ca := f.admit(t, a, "Shelter A", "THA", node.RoleContributor)
	cb := f.admit(t, b, "Ministry B", "ROU", node.RoleQuerier, node.RoleContributor)
	r := f.auth.Roster
	if r.Version != 2 || len(r.Certificates) != 2 {
		t.Fatalf("got version %d with %d certificates, want 2 with 2", r.Version, len(r.Certificates))
	}
	if ca.Serial == cb.Serial {
		t.Errorf("two certificates share serial %d", ca.Serial)
	}
	if got := cb.Roles; len(got) != 2 || got[0] != node.RoleContributor {
		t.Errorf("roles: got %v, want sorted [contributor querier]", got)
	}
	t.Run("DecodeOK", func(t *testing.T) {
		got, err := DecodeRoster(r.Encode(), f.pub())
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != r.Version {
			t.Errorf("got version %d, want %d", got.Version, r.Version)
		}
	})
	t.Run("ErrSignedByAnotherKey", func(t *testing.T) {
		other := newTestFed(t)
		other.admit(t, a, "Shelter A", "THA", node.RoleContributor)
		if _, err := DecodeRoster(other.auth.Roster.Encode(), f.pub()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrAltered", func(t *testing.T) {
		var m map[string]any
		if err := json.Unmarshal(r.Encode(), &m); err != nil {
			t.Fatal(err)
		}
		m["version"] = 99
		data, _ := json.Marshal(m)
		if _, err := DecodeRoster(data, f.pub()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrUnknownFormat", func(t *testing.T) {
		bad := *r
		bad.Format = 2
		if _, err := DecodeRoster(bad.Encode(), f.pub()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		if _, err := DecodeRoster(make([]byte, MaxRosterSize+1), f.pub()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ReformattedStillVerifies", func(t *testing.T) {
		var compact bytes.Buffer
		if err := json.Compact(&compact, r.Encode()); err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRoster(compact.Bytes(), f.pub()); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("File", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "roster.json")
		if err := os.WriteFile(path, r.Encode(), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := LoadRosterFile(path, f.pub())
		if err != nil || got.Version != r.Version {
			t.Errorf("got %v, %v, want version %d", got, err, r.Version)
		}
		if _, err := LoadRosterFile(filepath.Join(t.TempDir(), "none"), f.pub()); node.KindOf(err) != node.NotFound {
			t.Errorf("got %v, want %v", node.KindOf(err), node.NotFound)
		}
	})
	t.Run("Readmit", func(t *testing.T) {
		c := f.admit(t, a, "Shelter A", "THA", node.RoleContributor, node.RoleQuerier)
		r2 := f.auth.Roster
		if len(r2.Certificates) != 2 || r2.Certificate(a.PeerID()).Serial != c.Serial {
			t.Errorf("got %d certificates with serial %d, want 2 with %d", len(r2.Certificates), r2.Certificate(a.PeerID()).Serial, c.Serial)
		}
	})
	t.Run("ErrRevokedCannotRejoin", func(t *testing.T) {
		if _, err := f.auth.Revoke(b.PeerID().String()); err != nil {
			t.Fatal(err)
		}
		_, _, err := f.auth.Admit(mustJoinRequest(t, b, "Ministry B", "ROU"), []string{node.RoleQuerier}, time.Hour)
		if node.KindOf(err) != node.Conflict {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Conflict)
		}
	})
	t.Run("ErrRoles", func(t *testing.T) {
		_, _, err := f.auth.Admit(mustJoinRequest(t, mustIdentity(t), "X", "UKR"), []string{"admin"}, time.Hour)
		if node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
}

func TestRosterMember(t *testing.T) {
	f := newTestFed(t)
	now := time.Now().UTC().Truncate(time.Second)
	ids := map[string]*Identity{}
	issue := func(name string, from, to time.Time) {
		ids[name] = mustIdentity(t)
		if _, _, err := f.auth.Issue(mustJoinRequest(t, ids[name], name, "NGA"), []string{node.RoleContributor}, from, to); err != nil {
			t.Fatal(err)
		}
	}
	issue("current", now.Add(-time.Hour), now.Add(time.Hour))
	issue("future", now.Add(time.Hour), now.Add(2*time.Hour))
	issue("past", now.Add(-2*time.Hour), now.Add(-time.Hour))
	issue("revoked", now.Add(-time.Hour), now.Add(time.Hour))
	issue("revokedSerial", now.Add(-time.Hour), now.Add(time.Hour))
	issue("justStarting", now.Add(time.Minute), now.Add(time.Hour))
	issue("justEnded", now.Add(-time.Hour), now.Add(-time.Minute))
	if _, err := f.auth.Revoke(ids["revoked"].PeerID().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.RevokeSerial(f.auth.Roster.Certificate(ids["revokedSerial"].PeerID()).Serial); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRoster(f.auth.Roster.Encode(), f.pub())
	if err != nil {
		t.Fatal(err)
	}
	skew := 5 * time.Minute
	for _, tc := range []struct {
		name string
		p    peer.ID
		want MemberStatus
	}{
		{"OK", ids["current"].PeerID(), MemberOK},
		{"Unknown", mustIdentity(t).PeerID(), MemberUnknown},
		{"NotYetValid", ids["future"].PeerID(), MemberNotYetValid},
		{"Expired", ids["past"].PeerID(), MemberExpired},
		{"RevokedByPeer", ids["revoked"].PeerID(), MemberRevoked},
		{"RevokedBySerial", ids["revokedSerial"].PeerID(), MemberRevoked},
		{"WithinSkewBefore", ids["justStarting"].PeerID(), MemberOK},
		{"WithinSkewAfter", ids["justEnded"].PeerID(), MemberOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := r.Member(tc.p, now, skew); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("NoSkew", func(t *testing.T) {
		if _, got := r.Member(ids["justStarting"].PeerID(), now, 0); got != MemberNotYetValid {
			t.Errorf("got %v, want %v", got, MemberNotYetValid)
		}
	})
	t.Run("Members", func(t *testing.T) {
		if got := r.Members(node.RoleContributor, now, skew); len(got) != 3 {
			t.Errorf("got %d current contributors, want 3", len(got))
		}
		if got := r.Members(node.RoleQuerier, now, skew); len(got) != 0 {
			t.Errorf("got %d current queriers, want 0", len(got))
		}
	})
	t.Run("Stale", func(t *testing.T) {
		if r.Stale(now, time.Hour) {
			t.Error("a fresh roster is stale")
		}
		if !r.Stale(r.NextUpdate.Add(2*time.Hour), time.Hour) {
			t.Error("a roster past next_update plus grace is not stale")
		}
	})
}

func TestJoinBundle(t *testing.T) {
	f := newTestFed(t)
	id := mustIdentity(t)
	c := f.admit(t, id, "IOM Mission", "UKR", node.RoleContributor)
	hq := mustIdentity(t)
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/" + hq.PeerID().String()
	psk, _ := NewPSK()
	b, err := f.auth.Bundle(c, []string{addr}, psk)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		got, err := DecodeJoinBundle(b.Encode(), f.auth.Fingerprint())
		if err != nil {
			t.Fatal(err)
		}
		if got.Certificate.Serial != c.Serial || got.Roster.Version != f.auth.Roster.Version || !bytes.Equal(got.PSK, psk) {
			t.Errorf("got serial %d roster v%d, want %d v%d", got.Certificate.Serial, got.Roster.Version, c.Serial, f.auth.Roster.Version)
		}
	})
	t.Run("NoPin", func(t *testing.T) {
		if _, err := DecodeJoinBundle(b.Encode(), Fingerprint{}); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("ErrWrongPin", func(t *testing.T) {
		other := newTestFed(t)
		if _, err := DecodeJoinBundle(b.Encode(), other.auth.Fingerprint()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrSwappedKey", func(t *testing.T) {
		other := newTestFed(t)
		bad := *b
		bad.AuthorityKey = other.pub()
		bad.AuthorityFingerprint = other.auth.Fingerprint().String()
		if _, err := DecodeJoinBundle(bad.Encode(), f.auth.Fingerprint()); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrAddrWithoutPeer", func(t *testing.T) {
		if _, err := f.auth.Bundle(c, []string{"/ip4/127.0.0.1/tcp/4001"}, nil); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
}

func TestInstallRoster(t *testing.T) {
	f := newTestFed(t)
	id := mustIdentity(t)
	f.admit(t, id, "Shelter", "THA", node.RoleContributor)
	old := f.auth.Roster
	f.admit(t, mustIdentity(t), "Agency", "ROU", node.RoleContributor)
	cur := f.auth.Roster
	var persisted []uint64
	n := mustOpenNode(t, f, id, func(n *Node) {
		n.OnRoster = func(r *Roster) error { persisted = append(persisted, r.Version); return nil }
	})
	ctx := context.Background()
	t.Run("ErrOlder", func(t *testing.T) {
		ok, err := n.InstallRoster(ctx, old)
		if ok || err != nil {
			t.Errorf("got %v, %v, want false, nil", ok, err)
		}
		if n.CurrentRoster().Version != cur.Version {
			t.Errorf("got version %d, want %d", n.CurrentRoster().Version, cur.Version)
		}
	})
	t.Run("ErrEqual", func(t *testing.T) {
		if ok, err := n.InstallRoster(ctx, cur); ok || err != nil {
			t.Errorf("got %v, %v, want false, nil", ok, err)
		}
	})
	t.Run("ErrSignedByAnotherKey", func(t *testing.T) {
		other := newTestFed(t)
		other.auth.Roster = &Roster{Version: 50}
		other.admit(t, id, "Shelter", "THA", node.RoleContributor, node.RoleQuerier)
		ok, err := n.InstallRoster(ctx, other.auth.Roster)
		if ok || node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, %v, want false, %v", ok, node.KindOf(err), node.Invalid)
		}
	})
	t.Run("Newer", func(t *testing.T) {
		r, err := f.auth.Renew()
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := n.InstallRoster(ctx, r); !ok || err != nil {
			t.Fatalf("got %v, %v, want true, nil", ok, err)
		}
		if len(persisted) != 1 || persisted[0] != r.Version {
			t.Errorf("persisted %v, want [%d]", persisted, r.Version)
		}
	})
}
