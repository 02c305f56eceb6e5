package federation

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/node"
)

func TestFederatedQuery(t *testing.T) {
	f := newTestFed(t)
	type member struct {
		org, country string
		roles        []string
		ans          *fakeAnswerer
		configure    func(*Node)
		id           *Identity
		n            *Node
		audit        *memAudit
	}
	release := make(chan struct{})
	otherCodebook := *node.DefaultCodebook()
	otherCodebook.Version = "2025.9"
	members := []*member{
		{org: "HQ", country: "CHE", roles: []string{node.RoleQuerier, node.RoleContributor}, ans: &fakeAnswerer{mode: modeAnswer}},
		{org: "Answering A", country: "THA", ans: &fakeAnswerer{mode: modeAnswer}},
		{org: "Answering B", country: "ROU", ans: &fakeAnswerer{mode: modeAnswer, minCell: 10}},
		{org: "Budget C", country: "UKR", ans: &fakeAnswerer{mode: modeBudget}},
		{org: "Pending D", country: "NGA", ans: &fakeAnswerer{mode: modePending}},
		{org: "Stopped E", country: "KEN", ans: &fakeAnswerer{mode: modeAnswer}},
		{org: "Silent F", country: "VNM", ans: &fakeAnswerer{mode: modeBlock, release: release}},
		{org: "Codebook G", country: "PHL", ans: &fakeAnswerer{mode: modeAnswer}, configure: func(n *Node) { n.Codebook = &otherCodebook }},
	}
	for _, m := range members {
		m.id = mustIdentity(t)
		if m.roles == nil {
			m.roles = []string{node.RoleContributor}
		}
		f.admit(t, m.id, m.org, m.country, m.roles...)
	}
	heads := map[string]node.AuditHead{}
	var headsMu sync.Mutex
	var nodes []*Node
	for _, m := range members {
		m.audit = &memAudit{}
		m.n = mustOpenNode(t, f, m.id, func(n *Node) {
			n.Answerer, n.Audit = m.ans, m.audit
			n.OnAuditHead = func(from node.Peer, h node.AuditHead) {
				headsMu.Lock()
				heads[from.Org] = h
				headsMu.Unlock()
			}
			if m.configure != nil {
				m.configure(n)
			}
		})
		nodes = append(nodes, m.n)
	}
	// The silent node's handler blocks until the test ends.
	t.Cleanup(func() { close(release) })
	introduce(t, nodes...)
	hq := members[0].n
	if err := members[5].n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	const timeout = 1500 * time.Millisecond
	start := time.Now()
	res, err := NewCoordinator(hq).Query(context.Background(), &node.QueryRequest{Query: testQuery(t), Epsilon: 0.5, Purpose: "monitoring"}, timeout)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ReturnsByTheDeadline", func(t *testing.T) {
		if elapsed > timeout+time.Second {
			t.Errorf("got %v, want at most %v", elapsed, timeout+time.Second)
		}
	})
	t.Run("Coverage", func(t *testing.T) {
		want := map[string][3]string{
			"HQ":          {CoverageAnswered, "", ""},
			"Answering A": {CoverageAnswered, "", ""},
			"Answering B": {CoverageAnswered, "", ""},
			"Budget C":    {CoverageRefused, RefusedBudget, ReasonBudgetOrgCap},
			"Pending D":   {CoveragePending, "", ""},
			"Stopped E":   {CoverageUnreachable, "", ""},
			"Silent F":    {CoverageTimedOut, "", ""},
			"Codebook G":  {CoverageRefused, RefusedCodebook, ReasonCodebook},
		}
		if len(res.Coverage) != len(want) {
			t.Fatalf("got %d coverage entries, want %d", len(res.Coverage), len(want))
		}
		for _, c := range res.Coverage {
			if got := [3]string{c.Status, c.Reason, c.Detail}; got != want[c.Org] {
				t.Errorf("%s: got %v, want %v", c.Org, got, want[c.Org])
			}
			if c.Status == CoverageRefused && c.Message != node.ParseKind(map[string]string{RefusedBudget: "budget_exhausted", RefusedCodebook: "invalid"}[c.Reason]).Message() {
				t.Errorf("%s: got message %q, want the kind's fixed message", c.Org, c.Message)
			}
		}
		if res.Answered != 3 || res.Count(CoverageAnswered) != 3 {
			t.Errorf("got %d answered, want 3", res.Answered)
		}
	})
	t.Run("Cells", func(t *testing.T) {
		if len(res.Cells) != 40 {
			t.Fatalf("got %d cells, want 40 (4 genders × 10 exploitation types)", len(res.Cells))
		}
		if res.MinCellSize != 10 {
			t.Errorf("got minimum cell size %d, want 10 (the largest node minimum)", res.MinCellSize)
		}
		covered, released := 0, 0
		for i, c := range res.Cells {
			if c.Nodes != 3 {
				t.Errorf("cell %d: got %d nodes, want 3", i, c.Nodes)
			}
			if c.Value == nil {
				continue
			}
			released++
			if truth := float64(3 * exactCount(i)); *c.Lo <= truth && truth <= *c.Hi {
				covered++
			}
		}
		if released < 30 || covered < released*3/4 {
			t.Errorf("got %d of %d released cells covering the truth, want most of at least 30", covered, released)
		}
	})
	t.Run("AuditHeads", func(t *testing.T) {
		headsMu.Lock()
		defer headsMu.Unlock()
		for _, m := range members[1:] {
			h, ok := heads[m.org]
			switch m.org {
			case "Stopped E", "Silent F":
				if ok {
					t.Errorf("%s: got a head, want none", m.org)
				}
				continue
			}
			want, _ := m.audit.AuditHead(context.Background())
			if !ok || h.Seq != want.Seq || string(h.Hash) != string(want.Hash) {
				t.Errorf("%s: got head %v, want %v", m.org, h, want)
			}
		}
	})
	t.Run("AuditEntries", func(t *testing.T) {
		for _, m := range members[1:5] {
			es := m.audit.actions(ActionQueryAnswer)
			if len(es) != 1 || es[0].Actor != hq.PeerID().String() || es[0].Subject != res.QueryID || !strings.Contains(es[0].Detail, `purpose="monitoring"`) {
				t.Errorf("%s: got %+v, want one entry for the query", m.org, es)
			}
		}
		if es := members[3].audit.actions(ActionQueryAnswer); len(es) == 1 && !strings.Contains(es[0].Detail, "kind=budget_exhausted") {
			t.Errorf("got %q, want the refusal's kind", es[0].Detail)
		}
		es := members[0].audit.actions(ActionQueryAsk)
		if len(es) != 1 || !strings.Contains(es[0].Detail, "answered=3") || !strings.Contains(es[0].Detail, "timed_out=1") {
			t.Errorf("got %+v, want the querier's entry with its coverage", es)
		}
	})
}

// askDirect sends one request from a to b through the query protocol.
func askDirect(t *testing.T, a, b *Node, deadline time.Time) askOutcome {
	t.Helper()
	end := deadline
	if time.Until(end) <= 0 {
		// Let a request already past its deadline reach the node.
		end = time.Now().Add(5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	req := &node.QueryRequest{ID: "q-" + t.Name(), Query: testQuery(t), Epsilon: 0.5, Purpose: "test"}
	return a.ask(ctx, b.PeerID(), &queryRequestMsg{Format: wireFormat, Request: req, Deadline: deadline})
}

func TestQueryHandler(t *testing.T) {
	f := newTestFed(t)
	qID, cID, aID := mustIdentity(t), mustIdentity(t), mustIdentity(t)
	f.admit(t, qID, "HQ", "CHE", node.RoleQuerier)
	f.admit(t, cID, "Contributor Only", "THA", node.RoleContributor)
	f.admit(t, aID, "Answering", "ROU", node.RoleContributor)
	release := make(chan struct{})
	ans := &fakeAnswerer{mode: modeAnswer}
	audit := &memAudit{}
	a := mustOpenNode(t, f, aID, func(n *Node) { n.Answerer, n.Audit, n.MaxConcurrentPerPeer = ans, audit, 1 })
	t.Cleanup(func() { close(release) })
	q := mustOpenNode(t, f, qID, nil)
	c := mustOpenNode(t, f, cID, nil)
	introduce(t, a, q, c)

	refused := func(t *testing.T, o askOutcome, kind node.Kind, reason string) {
		t.Helper()
		if o.msg == nil {
			t.Fatalf("got %s, want a reply", o.stage)
		}
		b := o.msg.Body
		if b.Status != wireRefused || b.Kind != kind.String() || b.Reason != reason || b.Message != kind.Message() {
			t.Errorf("got %s %s %s %q, want refused %s %s", b.Status, b.Kind, b.Reason, b.Message, kind, reason)
		}
	}
	t.Run("OK", func(t *testing.T) {
		deadline := time.Now().Add(3 * time.Second)
		o := askDirect(t, q, a, deadline)
		if o.msg == nil || o.msg.Body.Status != wireAnswered {
			t.Fatalf("got %+v, want answered", o)
		}
		if d, ok := (*ans.lastCtx.Load()).Deadline(); !ok || !d.Equal(deadline) {
			t.Errorf("the answerer's deadline: got %v, want %v", d, deadline)
		}
		if o.msg.Body.AuditHead == nil || o.msg.Body.AuditHead.Seq == 0 {
			t.Errorf("got audit head %v, want one", o.msg.Body.AuditHead)
		}
	})
	t.Run("ErrNotQuerier", func(t *testing.T) {
		before := ans.calls.Load()
		refused(t, askDirect(t, c, a, time.Now().Add(3*time.Second)), node.Permission, ReasonNotQuerier)
		if ans.calls.Load() != before {
			t.Error("the answerer was called")
		}
		if _, err := NewCoordinator(c).Query(context.Background(), &node.QueryRequest{Query: testQuery(t), Epsilon: 0.5}, time.Second); node.KindOf(err) != node.Permission {
			t.Errorf("the coordinator: got %v, want %v", node.KindOf(err), node.Permission)
		}
	})
	t.Run("ErrDeadlinePassed", func(t *testing.T) {
		before := ans.calls.Load()
		refused(t, askDirect(t, q, a, time.Now().Add(-time.Second)), node.Unavailable, ReasonDeadline)
		if ans.calls.Load() != before {
			t.Error("the answerer was called past the deadline")
		}
	})
	t.Run("ErrNotMember", func(t *testing.T) {
		stranger := mustIdentity(t).PeerID()
		body, _ := a.answer(stranger, &queryRequestMsg{Format: wireFormat, Request: &node.QueryRequest{ID: "x", Query: testQuery(t), Epsilon: 0.5}, Deadline: time.Now().Add(time.Second)})
		if body.Status != wireRefused || body.Reason != ReasonNotMember || body.Kind != node.Permission.String() {
			t.Errorf("got %s %s %s, want refused permission %s", body.Status, body.Kind, body.Reason, ReasonNotMember)
		}
	})
	t.Run("ErrRevokedAtQuery", func(t *testing.T) {
		// Membership is checked for every request, not only at connect.
		f2 := newTestFed(t)
		f2.auth = NewAuthority(f.auth.Key, f.auth.Roster)
		r, err := f2.auth.Revoke(qID.PeerID().String())
		if err != nil {
			t.Fatal(err)
		}
		n := NewNode(aID, f.pub())
		n.Roster = r
		if err := n.Roster.Verify(f.pub()); err != nil {
			t.Fatal(err)
		}
		n.roster.Store(r)
		n.Now = time.Now
		body, _ := n.answer(qID.PeerID(), &queryRequestMsg{Format: wireFormat, Request: &node.QueryRequest{ID: "x", Query: testQuery(t), Epsilon: 0.5}, Deadline: time.Now().Add(time.Second)})
		if body.Status != wireRefused || body.Reason != ReasonNotMember {
			t.Errorf("got %s %s, want refused %s", body.Status, body.Reason, ReasonNotMember)
		}
	})
	t.Run("ErrStaleRoster", func(t *testing.T) {
		n := NewNode(aID, f.pub())
		n.roster.Store(f.auth.Roster)
		n.Now = func() time.Time { return f.auth.Roster.NextUpdate.Add(n.StaleGrace + time.Hour) }
		body, _ := n.answer(qID.PeerID(), &queryRequestMsg{Format: wireFormat, Request: &node.QueryRequest{ID: "x", Query: testQuery(t), Epsilon: 0.5}, Deadline: time.Now().Add(time.Second)})
		if body.Status != wireRefused || body.Reason != ReasonStaleRoster || body.Kind != node.Unavailable.String() {
			t.Errorf("got %s %s %s, want refused unavailable %s", body.Status, body.Kind, body.Reason, ReasonStaleRoster)
		}
	})
	t.Run("ErrBusy", func(t *testing.T) {
		ans.release = release
		ans.setMode(modeBlock)
		defer ans.setMode(modeAnswer)
		before := ans.calls.Load()
		done := make(chan askOutcome, 1)
		go func() { done <- askDirect(t, q, a, time.Now().Add(700*time.Millisecond)) }()
		waitFor(t, 5*time.Second, "the first query to reach the answerer", func() bool { return ans.calls.Load() > before })
		refused(t, askDirect(t, q, a, time.Now().Add(2*time.Second)), node.Unavailable, ReasonBusy)
		if o := <-done; o.stage != CoverageTimedOut {
			t.Errorf("the blocked query: got %s, want %s", o.stage, CoverageTimedOut)
		}
	})
	t.Run("AuditedBothWays", func(t *testing.T) {
		es := audit.actions(ActionQueryAnswer)
		var refusals int
		for _, e := range es {
			if e.Actor != q.PeerID().String() && e.Actor != c.PeerID().String() {
				t.Errorf("got actor %s, want a querier", e.Actor)
			}
			if strings.Contains(e.Detail, "status=refused") {
				refusals++
			}
		}
		if refusals < 3 {
			t.Errorf("got %d audited refusals, want at least 3", refusals)
		}
	})
}

func TestAnswerSignature(t *testing.T) {
	f := newTestFed(t)
	qID, aID := mustIdentity(t), mustIdentity(t)
	f.admit(t, qID, "HQ", "CHE", node.RoleQuerier)
	f.admit(t, aID, "Answering", "ROU", node.RoleContributor)
	a := NewNode(aID, f.pub())
	a.Answerer = &fakeAnswerer{mode: modeAnswer}
	a.roster.Store(f.auth.Roster)
	a.ctx = context.Background()
	a.inflight = map[peer.ID]int{}
	msg := &queryRequestMsg{Format: wireFormat, Request: &node.QueryRequest{ID: "q1", Query: testQuery(t), Epsilon: 0.5}, Deadline: time.Now().Add(time.Second)}
	body, _ := a.answer(qID.PeerID(), msg)
	sig, err := aID.sign(tagAnswer, body)
	if err != nil {
		t.Fatal(err)
	}
	m := &answerMsg{Body: *body, Signature: sig}
	decoded, err := decodeAnswer(mustJSON(t, m), DefaultMaxAnswerSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		if err := verifyAnswer(decoded, aID.PeerID(), qID.PeerID(), "q1"); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("ErrAlteredValue", func(t *testing.T) {
		alt, _ := decodeAnswer(mustJSON(t, m), DefaultMaxAnswerSize)
		alt.Body.Answer.Table.Cells[0].Count.Value += 1
		if err := verifyAnswer(alt, aID.PeerID(), qID.PeerID(), "q1"); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrOtherQuery", func(t *testing.T) {
		if err := verifyAnswer(decoded, aID.PeerID(), qID.PeerID(), "q2"); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrOtherResponder", func(t *testing.T) {
		if err := verifyAnswer(decoded, qID.PeerID(), qID.PeerID(), "q1"); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
	t.Run("ErrSignedByAnother", func(t *testing.T) {
		alt := *m
		alt.Signature, _ = qID.sign(tagAnswer, body)
		d, _ := decodeAnswer(mustJSON(t, &alt), DefaultMaxAnswerSize)
		if err := verifyAnswer(d, aID.PeerID(), qID.PeerID(), "q1"); node.KindOf(err) != node.Invalid {
			t.Errorf("got %v, want %v", node.KindOf(err), node.Invalid)
		}
	})
}
