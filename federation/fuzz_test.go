package federation

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/ctfed/ctfed/node"
)

// The fuzz targets' seeds are built from fixed keys, so the seed corpus is
// the same on every run.

func fixedSeed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func fixedIdentity(tb testing.TB, b byte) *Identity {
	tb.Helper()
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(fixedSeed(b)))
	if err != nil {
		tb.Fatal(err)
	}
	xk, err := ecdh.X25519().NewPrivateKey(fixedSeed(b + 1))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := newIdentity(sk, xk)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// fuzzFed is a federation with fixed keys and fixed times: an authority,
// a querier and a contributor.
type fuzzFed struct {
	auth             *Authority
	querier, contrib *Identity
	cert             *Certificate
	join             *JoinRequest
}

func newFuzzFed(tb testing.TB) *fuzzFed {
	tb.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAuthority(ed25519.NewKeyFromSeed(fixedSeed(100)), nil)
	a.Now = func() time.Time { return at }
	f := &fuzzFed{auth: a, querier: fixedIdentity(tb, 1), contrib: fixedIdentity(tb, 3)}
	a.PeerIDs = []string{f.querier.PeerID().String()}
	for _, m := range []struct {
		id    *Identity
		org   string
		roles []string
	}{{f.querier, "HQ", []string{node.RoleQuerier}}, {f.contrib, "Shelter", []string{node.RoleContributor}}} {
		r := &JoinRequest{Format: joinRequestFormat, PeerID: m.id.PeerID().String(), X25519: m.id.X25519Public(), Org: m.org, Country: "THA", Created: at}
		sig, err := m.id.sign(tagJoinRequest, r)
		if err != nil {
			tb.Fatal(err)
		}
		r.Signature = sig
		c, _, err := a.Admit(r, m.roles, time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		f.cert, f.join = c, r
	}
	if _, err := a.Revoke(f.querier.PeerID().String()); err != nil {
		tb.Fatal(err)
	}
	return f
}

func FuzzDecodeRoster(f *testing.F) {
	ff := newFuzzFed(f)
	key := ff.auth.PublicKey()
	f.Add(ff.auth.Roster.Encode())
	f.Add([]byte(`{"format":1,"version":1,"certificates":[]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRoster(data, key)
		if err != nil {
			if node.KindOf(err) != node.Invalid {
				t.Fatalf("got %v, want %v", node.KindOf(err), node.Invalid)
			}
			return
		}
		r.Member(ff.contrib.PeerID(), time.Now(), time.Minute)
		r.Members(node.RoleContributor, time.Now(), time.Minute)
		again, err := DecodeRoster(r.Encode(), key)
		if err != nil || again.Version != r.Version {
			t.Fatalf("re-decoding a decoded roster: got %v", err)
		}
	})
}

func FuzzDecodeRosterMessage(f *testing.F) {
	ff := newFuzzFed(f)
	key := ff.auth.PublicKey()
	f.Add(mustJSON(f, &rosterMsg{Format: wireFormat, Version: ff.auth.Roster.Version, Roster: ff.auth.Roster}))
	f.Add(mustJSON(f, &rosterMsg{Format: wireFormat, Version: 7}))
	f.Add([]byte(`{"format":1,"version":3,"roster":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeRosterMsg(data, key)
		if err == nil && m.Roster != nil && m.Roster.Version != m.Version {
			t.Fatalf("got roster version %d in a message for %d", m.Roster.Version, m.Version)
		}
	})
}

func FuzzDecodeJoinRequest(f *testing.F) {
	ff := newFuzzFed(f)
	f.Add(ff.join.Encode())
	f.Add([]byte(`{"format":1,"peer_id":"x","x25519":"","org":"a","country":"THA","created":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeJoinRequest(data)
		if err != nil {
			return
		}
		if err := r.Verify(); err != nil {
			t.Fatalf("a decoded request does not verify: %v", err)
		}
	})
}

func FuzzDecodeCertificate(f *testing.F) {
	ff := newFuzzFed(f)
	key := ff.auth.PublicKey()
	f.Add(ff.cert.Encode())
	f.Add([]byte(`{"format":1,"serial":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCertificate(data, key)
		if err == nil {
			_ = c.Peer()
		}
	})
}

func FuzzDecodeJoinBundle(f *testing.F) {
	ff := newFuzzFed(f)
	b, err := ff.auth.Bundle(ff.cert, []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + ff.querier.PeerID().String()}, fixedSeed(9))
	if err != nil {
		f.Fatal(err)
	}
	pin := ff.auth.Fingerprint()
	f.Add(b.Encode())
	f.Add([]byte(`{"format":1,"authority_key":"","roster":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeJoinBundle(data, pin)
	})
}

func FuzzDecodeQueryRequest(f *testing.F) {
	q, err := node.ParseSQL(node.DefaultCodebook(), "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY gender, exploitation_type")
	if err != nil {
		f.Fatal(err)
	}
	deadline := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Add(mustJSON(f, &queryRequestMsg{Format: wireFormat, Request: &node.QueryRequest{ID: "q1", Query: q, Epsilon: 0.5, Purpose: "monitoring"}, Deadline: deadline}))
	f.Add(mustJSON(f, &queryRequestMsg{Format: wireFormat, Request: &node.QueryRequest{ID: "q2", Query: &node.Query{Codebook: "1999.1"}, Epsilon: 1e308}, Deadline: deadline}))
	f.Add([]byte(`{"format":1,"request":{"id":"","query":null},"deadline":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeQueryRequest(data)
		if err != nil {
			if node.KindOf(err) != node.Invalid {
				t.Fatalf("got %v, want %v", node.KindOf(err), node.Invalid)
			}
			return
		}
		// What the handler does next with a request must not panic either.
		_ = m.Request.Query.Check(node.DefaultCodebook(), 0)
		_ = queryText(m.Request.Query)
		if _, err := decodeQueryRequest(mustJSON(t, m)); err != nil {
			t.Fatalf("re-decoding a decoded request: %v", err)
		}
	})
}

func FuzzDecodeAnswer(f *testing.F) {
	ff := newFuzzFed(f)
	q, err := node.ParseSQL(node.DefaultCodebook(), "SELECT COUNT(*) FROM cases GROUP BY gender")
	if err != nil {
		f.Fatal(err)
	}
	table, err := noisyTable(node.DefaultCodebook(), q, 0.5, 5)
	if err != nil {
		f.Fatal(err)
	}
	for _, body := range []answerBody{
		{Status: wireAnswered, Answer: &node.RemoteAnswer{Status: node.StatusAnswered, Table: table, ChargedEpsilon: 0.5}, AuditHead: &node.AuditHead{Seq: 3, Hash: fixedSeed(5)}},
		{Status: wirePending, Answer: &node.RemoteAnswer{Status: node.StatusPending}},
		{Status: wireRefused, Kind: node.BudgetExhausted.String(), Message: node.BudgetExhausted.Message(), Reason: ReasonBudgetOrgCap},
	} {
		body.Format, body.QueryID = wireFormat, "q1"
		body.Querier, body.Responder = ff.querier.PeerID().String(), ff.contrib.PeerID().String()
		body.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		sig, err := ff.contrib.sign(tagAnswer, &body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mustJSON(f, &answerMsg{Body: body, Signature: sig}))
	}
	f.Add([]byte(`{"body":{"format":1,"status":"refused","kind":"internal"},"signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeAnswer(data, 1<<20)
		if err != nil {
			return
		}
		if err := verifyAnswer(m, ff.contrib.PeerID(), ff.querier.PeerID(), "q1"); err != nil {
			return
		}
		// A verified answer goes on to the table's check and combination.
		if a := m.Body.Answer; a != nil && a.Table != nil {
			if a.Table.Check(node.DefaultCodebook(), q) == nil {
				_, _, _ = node.Combine(node.DefaultCodebook(), q, []*node.NoisyTable{a.Table}, 5, nil)
			}
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(binary.AppendUvarint(nil, 3), []byte("abc"))
	f.Add(binary.AppendUvarint(nil, 1<<40), []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{})
	f.Fuzz(func(t *testing.T, prefix, body []byte) {
		b, err := readFrame(bufio.NewReader(bytes.NewReader(append(prefix, body...))), 1024)
		if err == nil && len(b) > 1024 {
			t.Fatalf("got %d bytes past the limit", len(b))
		}
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(AuthorityFingerprint(ed25519.NewKeyFromSeed(fixedSeed(100)).Public().(ed25519.PublicKey)).String())
	f.Add(PSKFingerprint(fixedSeed(9)).String())
	f.Add("ctfed-auth:")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		again, err := ParseFingerprint(fp.String())
		if err != nil || !again.Equal(fp) {
			t.Fatalf("a parsed fingerprint does not parse back: %v", err)
		}
	})
}

func FuzzUnmarshalIdentity(f *testing.F) {
	f.Add(fixedIdentity(f, 1).Marshal())
	f.Add([]byte(`{"format":1,"libp2p":"CAESQA==","x25519":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := UnmarshalIdentity(data)
		if err == nil && id.PeerID() == "" {
			t.Fatal("an identity without a peer ID")
		}
	})
}

func FuzzDecodePSK(f *testing.F) {
	f.Add(EncodePSK(fixedSeed(9)))
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base64/\nAAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := DecodePSK(data)
		if err == nil && len(k) != 32 {
			t.Fatalf("got a %d-byte key", len(k))
		}
	})
}
