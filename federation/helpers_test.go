package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// testLogger logs to the test when CTFED_TEST_LOG is set.
func testLogger(tb testing.TB) *zap.Logger {
	if os.Getenv("CTFED_TEST_LOG") != "" {
		return zaptest.NewLogger(tb)
	}
	return zap.NewNop()
}

// memAudit is an in-memory, hash-chained node.AuditLog.
type memAudit struct {
	mu      sync.Mutex
	entries []node.AuditEntry
}

var _ node.AuditLog = (*memAudit)(nil)

func (a *memAudit) Append(_ context.Context, e *node.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.Seq = uint64(len(a.entries)) + 1
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if n := len(a.entries); n > 0 {
		e.Prev = a.entries[n-1].Hash
	}
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], e.Seq)
	h.Write(b[:])
	h.Write(e.Prev)
	h.Write([]byte(e.Actor + "\x00" + e.Action + "\x00" + e.Subject + "\x00" + e.Detail))
	e.Hash = h.Sum(nil)
	a.entries = append(a.entries, *e)
	return nil
}

func (a *memAudit) AuditEntries(_ context.Context, from uint64, fn func(*node.AuditEntry) error) error {
	a.mu.Lock()
	es := append([]node.AuditEntry(nil), a.entries...)
	a.mu.Unlock()
	for i := range es {
		if es[i].Seq >= from {
			if err := fn(&es[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *memAudit) AuditHead(context.Context) (node.AuditHead, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.entries) == 0 {
		return node.AuditHead{}, nil
	}
	e := a.entries[len(a.entries)-1]
	return node.AuditHead{Seq: e.Seq, Hash: e.Hash}, nil
}

// actions returns the entries with action.
func (a *memAudit) actions(action string) []node.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []node.AuditEntry
	for _, e := range a.entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// Fake answerer modes.
const (
	modeAnswer  = "answer"
	modePending = "pending"
	modeBudget  = "budget"
	modeBlock   = "block"
)

// fakeAnswerer answers with a noisy table built with the privacy package
// from a fixed exact table (exactCount), or as its mode says.
type fakeAnswerer struct {
	mu      sync.Mutex
	mode    string
	minCell int
	release chan struct{} // modeBlock waits for it, ignoring the deadline
	calls   atomic.Int64
	lastCtx atomic.Pointer[context.Context]
}

func (a *fakeAnswerer) AnswerQuery(ctx context.Context, from node.Peer, req *node.QueryRequest) (*node.RemoteAnswer, error) {
	a.calls.Add(1)
	a.lastCtx.Store(&ctx)
	a.mu.Lock()
	mode := a.mode
	a.mu.Unlock()
	switch mode {
	case modeBlock:
		<-a.release
		return nil, node.E("answer", node.Unavailable, "released")
	case modePending:
		return &node.RemoteAnswer{Status: node.StatusPending}, nil
	case modeBudget:
		return nil, &node.Error{Op: "answer", Kind: node.BudgetExhausted, Err: &privacy.CapError{Cap: privacy.CapOrg, Param: "ε", Year: 2024}}
	}
	t, err := noisyTable(node.DefaultCodebook(), req.Query, req.Epsilon, max(a.minCell, 1))
	if err != nil {
		return nil, err
	}
	return &node.RemoteAnswer{Status: node.StatusAnswered, Table: t, ChargedEpsilon: req.Epsilon}, nil
}

// setMode changes the answerer's mode.
func (a *fakeAnswerer) setMode(mode string) {
	a.mu.Lock()
	a.mode = mode
	a.mu.Unlock()
}

// exactCount is the fake nodes' exact count in cell i.
func exactCount(i int) int64 { return 20 + int64(i*13%40) }

// noisyTable releases exactCount over q's cells with Laplace noise at eps.
func noisyTable(cb *node.Codebook, q *node.Query, eps float64, minCell int) (*node.NoisyTable, error) {
	domains := q.Domains(cb)
	n := q.CellCount(cb)
	t := &node.NoisyTable{Query: q, Domains: domains, Cells: make([]node.NoisyCell, n), Mechanism: privacy.Laplace, Epsilon: eps, MinCellSize: minCell}
	spec := privacy.Spec{Mechanism: privacy.Laplace, Epsilon: eps, L0: 1, LInf: 1}
	for i := range t.Cells {
		c, err := privacy.NoisyCount(exactCount(i), spec)
		if err != nil {
			return nil, err
		}
		t.Cells[i].Count = c
	}
	return t, nil
}

// testQuery is count by gender × exploitation type.
func testQuery(tb testing.TB) *node.Query {
	tb.Helper()
	q, err := node.ParseSQL(node.DefaultCodebook(), "SELECT COUNT(*) FROM cases GROUP BY gender, exploitation_type")
	if err != nil {
		tb.Fatal(err)
	}
	return q
}

// testFed is a federation authority for tests.
type testFed struct {
	auth *Authority
}

func newTestFed(tb testing.TB) *testFed {
	tb.Helper()
	key, err := NewAuthorityKey()
	if err != nil {
		tb.Fatal(err)
	}
	return &testFed{auth: NewAuthority(key, nil)}
}

func (f *testFed) pub() ed25519.PublicKey { return f.auth.PublicKey() }

func mustIdentity(tb testing.TB) *Identity {
	tb.Helper()
	id, err := NewIdentity()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustJoinRequest(tb testing.TB, id *Identity, org, country string) *JoinRequest {
	tb.Helper()
	r, err := NewJoinRequest(id, org, country, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// admit admits id with roles for a year.
func (f *testFed) admit(tb testing.TB, id *Identity, org, country string, roles ...string) *Certificate {
	tb.Helper()
	c, _, err := f.auth.Admit(mustJoinRequest(tb, id, org, country), roles, 365*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// mustOpenNode opens a node for id on 127.0.0.1 with the authority's current
// roster, after configure (if any) adjusted it.
func mustOpenNode(tb testing.TB, f *testFed, id *Identity, configure func(*Node)) *Node {
	tb.Helper()
	n := NewNode(id, f.pub())
	n.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	n.Roster = f.auth.Current()
	n.Logger = testLogger(tb).With(zap.String("node", id.PeerID().ShortString()))
	n.DialTimeout = 2 * time.Second
	n.PushBackoff = 50 * time.Millisecond
	if configure != nil {
		configure(n)
	}
	if err := n.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return n
}

// introduce tells every node the addresses of every other.
func introduce(tb testing.TB, nodes ...*Node) {
	tb.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.AddPeerAddrs(b.PeerID().String(), b.Addrs()); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
