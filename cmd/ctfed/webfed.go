package main

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ctfed/ctfed/federation"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/web"
)

// webFederation shows a serving node's federation to its web application.
type webFederation struct{ fp *fedParts }

var _ web.Federation = webFederation{}

// Roster implements web.Federation.
func (w webFederation) Roster(ctx context.Context) (*web.Roster, error) {
	n := w.fp.node
	r := n.CurrentRoster()
	if r == nil {
		return nil, node.E("roster", node.Unavailable, "this node has no roster yet")
	}
	out := &web.Roster{Version: r.Version, IssuedAt: r.IssuedAt, NextUpdate: r.NextUpdate}
	self := n.PeerID().String()
	for i := range r.Certificates {
		c := &r.Certificates[i]
		status := "unknown"
		if p, err := peer.Decode(c.PeerID); err == nil {
			_, st := n.Member(p)
			status = st.String()
		}
		out.Members = append(out.Members, web.Member{PeerID: c.PeerID, Org: c.Org, Country: c.Country, Roles: c.Roles,
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, Status: status, Self: c.PeerID == self})
	}
	return out, nil
}

// Query implements web.Federation.
func (w webFederation) Query(ctx context.Context, req *node.QueryRequest, timeout time.Duration) (*web.FederatedResult, error) {
	res, err := w.fp.coord.Query(ctx, req, timeout)
	if err != nil {
		return nil, err
	}
	return webResult(res), nil
}

func webResult(res *federation.Result) *web.FederatedResult {
	out := &web.FederatedResult{QueryID: res.QueryID, Query: res.Query, SQL: res.SQL, Epsilon: res.Epsilon, Delta: res.Delta,
		Mechanism: res.Mechanism, Cells: res.Cells, MinCellSize: res.MinCellSize, Answered: res.Answered, Elapsed: res.Elapsed}
	for _, c := range res.Coverage {
		out.Coverage = append(out.Coverage, web.Coverage(c))
	}
	return out
}
