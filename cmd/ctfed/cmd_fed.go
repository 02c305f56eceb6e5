package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/federation"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/web"
)

func newAdmitCmd(e *env) *cobra.Command {
	var (
		p        passFlags
		roles    string
		out      string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:   "admit --dir AUTHDIR --roles contributor,querier REQUEST",
		Short: "Admit an organisation's node into the federation (authority only)",
		Long: `admit checks a join request (written by "ctfed init" on the new member's
node), signs the member's certificate with the federation authority's key,
issues a new roster and writes a join bundle for the new member: its
certificate, the roster, the authority's key and addresses. Hand the bundle
to the member, who installs it with "ctfed join". A running authority node
pushes the new roster to every member at once.

Roles: contributor (answers queries with its cases) and querier (may ask).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "admit"
			ctx := cmd.Context()
			rs, err := federation.NormaliseRoles(strings.Split(roles, ","))
			if err != nil {
				return node.E(op, node.Invalid, "--roles: %v", err)
			}
			data, err := os.ReadFile(e.path(args[0]))
			if err != nil {
				return node.E(op, node.NotFound, "%v", err)
			}
			req, err := federation.DecodeJoinRequest(data)
			if err != nil {
				return err
			}
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			a, err := n.authority()
			if err != nil {
				return err
			}
			cert, r, err := a.Admit(req, rs, validity)
			if err != nil {
				return err
			}
			if err := n.installRoster(ctx, r); err != nil {
				return err
			}
			addrs := n.cfg.Federation.AuthorityAddrs
			if n.fed != nil && n.fed.node != nil {
				addrs = n.fed.node.Addrs()
			}
			psk, _ := n.keys.Extra(keyPSK)
			b, err := a.Bundle(cert, addrs, psk)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(filepath.Dir(args[0]), "join-bundle.json")
			}
			out = e.path(out)
			if err := writeAtomic(out, b.Encode()); err != nil {
				return err
			}
			if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "federation.admit", Subject: req.PeerID,
				Detail: fmt.Sprintf("%s (%s) as %s; roster version %d", req.Org, req.Country, strings.Join(rs, ","), r.Version)}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Admitted %s (%s), peer %s, as %s until %s.\nRoster version %d. Join bundle: %s\n",
				req.Org, req.Country, req.PeerID, strings.Join(rs, " and "), cert.NotAfter.Format("2006-01-02"), r.Version, out)
			if len(psk) > 0 {
				fmt.Fprintln(e.stdout, "The bundle carries the federation's private network key: hand it over as a secret.")
			}
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&roles, "roles", "contributor", "the member's roles: contributor, querier or both, comma-separated")
	cmd.Flags().StringVar(&out, "out", "", "where to write the join bundle (default: join-bundle.json beside REQUEST)")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "how long the membership certificate is valid")
	return cmd
}

func newRevokeCmd(e *env) *cobra.Command {
	var p passFlags
	cmd := &cobra.Command{
		Use:   "revoke --dir AUTHDIR PEERID",
		Short: "Revoke a member (authority only)",
		Long: `revoke issues a new roster in which the member's certificate is revoked. A
running authority node pushes it to every member; each closes its
connections to the revoked peer and refuses it from then on.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			a, err := n.authority()
			if err != nil {
				return err
			}
			r, err := a.Revoke(args[0])
			if err != nil {
				return err
			}
			if err := n.installRoster(ctx, r); err != nil {
				return err
			}
			if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "federation.revoke", Subject: args[0], Detail: fmt.Sprintf("roster version %d", r.Version)}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Revoked %s. Roster version %d.\n", args[0], r.Version)
			return n.close()
		},
	}
	p.register(cmd)
	return cmd
}

func newJoinCmd(e *env) *cobra.Command {
	var p passFlags
	cmd := &cobra.Command{
		Use:   "join --dir DIR BUNDLE",
		Short: "Install the join bundle the federation authority sent",
		Long: `join checks the bundle against the authority fingerprint this node pinned
at init (--authority-key), then installs the authority's key and addresses,
the roster and, if the federation uses one, its private network key. Start
the node with "ctfed serve" afterwards.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "join"
			ctx := cmd.Context()
			data, err := os.ReadFile(e.path(args[0]))
			if err != nil {
				return node.E(op, node.NotFound, "%v", err)
			}
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			if n.cfg.Federation.Authority == "" {
				return node.E(op, node.Invalid, "this node pinned no authority: it was made without --authority-key")
			}
			pin, err := federation.ParseFingerprint(n.cfg.Federation.Authority)
			if err != nil {
				return node.E(op, node.Invalid, "federation.authority: %v", err)
			}
			b, err := federation.DecodeJoinBundle(data, pin)
			if err != nil {
				return err
			}
			id, err := n.identity()
			if err != nil {
				return err
			}
			if b.Certificate.PeerID != id.PeerID().String() {
				return node.E(op, node.Invalid, "the bundle is for peer %s, not this node (%s)", b.Certificate.PeerID, id.PeerID())
			}
			if len(b.PSK) > 0 {
				n.keys.SetExtra(keyPSK, b.PSK)
				if err := n.keys.Save(); err != nil {
					return err
				}
			}
			n.cfg.Federation.AuthorityKey = base64.StdEncoding.EncodeToString(b.AuthorityKey)
			n.cfg.Federation.AuthorityAddrs = b.AuthorityAddrs
			if err := n.saveConfig(); err != nil {
				return err
			}
			if err := n.installRoster(ctx, b.Roster); err != nil {
				return err
			}
			if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "federation.join", Detail: fmt.Sprintf("roster version %d", b.Roster.Version)}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Joined the federation of %s as %s (roster version %d). Start the node with: ctfed serve --dir %s\n",
				pin, strings.Join(b.Certificate.Roles, " and "), b.Roster.Version, p.dir)
			return n.close()
		},
	}
	p.register(cmd)
	return cmd
}

func newServeCmd(e *env) *cobra.Command {
	var p passFlags
	cmd := &cobra.Command{
		Use:   "serve --dir DIR",
		Short: "Run the node: its web application, the federation's network and the control socket",
		Long: `serve runs the node until SIGINT or SIGTERM: its web application and JSON
API (web.listen, default 127.0.0.1:8080; TLS only on any other address), its
libp2p host (only current members of the federation may connect) with the
query and roster protocols, and the control socket through which the other
subcommands (query, budget, approvals, import, ...) reach it while it holds
the store. It logs its addresses and closes everything cleanly on a signal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			log := n.log
			svc, err := n.queryService(ctx)
			if err != nil {
				return err
			}
			n.svc = svc
			fp, err := n.openFederation(ctx, svc)
			if err != nil {
				return err
			}
			n.fed = fp
			ctl := &controlServer{dir: n.dir, shared: n, logger: log.Named("control"), base: e}
			if err := ctl.open(); err != nil {
				fp.node.Close(context.Background())
				return err
			}
			var ws *web.Server
			if !n.cfg.Web.Disabled {
				ws = web.NewServer(n.db, n.db, n.db)
				ws.Addr, ws.Logger, ws.Query = n.cfg.Web.Listen, log.Named("web"), svc
				ws.Federation, ws.Approvals, ws.ImportKey = webFederation{fp}, n.db, n.keys.HMACKey()
				if n.cfg.Web.CertFile != "" {
					ws.CertFile, ws.KeyFile = n.inDir(n.cfg.Web.CertFile), n.inDir(n.cfg.Web.KeyFile)
				}
				if err := ws.Open(ctx); err != nil {
					ctl.close()
					fp.node.Close(context.Background())
					return err
				}
				log.Info("web application", zap.String("url", ws.URL()), zap.Bool("tls", ws.TLS()))
			}
			log.Info("node serving", zap.String("org", n.cfg.Node.Org), zap.String("peer_id", fp.node.PeerID().String()),
				zap.Strings("addrs", fp.node.Addrs()), zap.String("control", filepath.Join(n.dir, controlSocket)))
			<-ctx.Done()
			log.Info("shutting down")
			cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			defer cancel()
			var errw error
			if ws != nil {
				errw = ws.Close(cctx)
			}
			errc := ctl.close()
			errf := fp.node.Close(cctx)
			n.svc, n.fed = nil, nil
			errd := n.close()
			if err := joinErrs(errw, errc, errf, errd); err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		},
	}
	p.register(cmd)
	return cmd
}

func joinErrs(errs ...error) error {
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("%v", out)
}

// openFederation starts the node's federation side.
func (n *nodeDir) openFederation(ctx context.Context, svc *node.QueryService) (*fedParts, error) {
	id, err := n.identity()
	if err != nil {
		return nil, err
	}
	key, err := n.authorityKey()
	if err != nil {
		return nil, err
	}
	r, err := n.loadRoster(key)
	if err != nil {
		return nil, err
	}
	f := n.cfg.Federation
	fn := federation.NewNode(id, key)
	fn.AuthorityAddrs = f.AuthorityAddrs
	fn.ListenAddrs = f.Listen
	fn.Roster = r
	fn.Answerer = svc
	fn.Audit = n.db
	fn.Logger = n.log.Named("federation")
	fn.DialTimeout, fn.ClockSkew, fn.StaleGrace = f.DialTimeout.Duration, f.ClockSkew.Duration, f.StaleGrace.Duration
	fn.MaxConcurrentPerPeer = f.MaxConcurrentPerPeer
	if psk, ok := n.keys.Extra(keyPSK); ok {
		fn.PSK = psk
	}
	fn.OnRoster = n.saveRoster
	fn.OnAuditHead = func(from node.Peer, head node.AuditHead) {
		if err := n.db.KeepHead(context.Background(), from.PeerID, head); err != nil {
			n.log.Warn("audit head not kept", zap.Error(err))
		}
	}
	fp := &fedParts{node: fn}
	if _, ok := n.keys.Extra(keyAuthority); ok {
		a, err := n.authority()
		if err != nil {
			return nil, err
		}
		fp.auth = a
		fn.Authority = a
		fn.PushRosters = true
		if fn.Roster == nil {
			fn.Roster = a.Current()
		}
	}
	if err := fn.Open(ctx); err != nil {
		return nil, err
	}
	fp.coord = federation.NewCoordinator(fn)
	fp.coord.MinCellSize = f.MinCellSize
	fp.coord.MaxCells = n.cfg.Privacy.MaxCells
	fp.coord.Logger = n.log.Named("coordinator")
	return fp, nil
}

func newQueryID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// federatedQuery runs q across the federation from a serving node.
func (e *env) federatedQuery(ctx context.Context, n *nodeDir, req *node.QueryRequest, timeout time.Duration, format string, all bool) error {
	if n.fed == nil || n.fed.coord == nil {
		return node.E("query", node.Unavailable, "federated queries run on a running node: start it with ctfed serve --dir %s (or ask this node alone with --local)", n.dir)
	}
	if timeout <= 0 {
		timeout = n.cfg.Federation.QueryTimeout.Duration
	}
	res, err := n.fed.coord.Query(ctx, req, timeout)
	if err != nil {
		return err
	}
	q := res.Query
	r := &released{Query: q.Canonical(), QueryJSON: q, Codebook: q.Codebook, Dimensions: q.GroupBy, Measure: measureName(q.Measure),
		Mechanism: res.Mechanism, Epsilon: res.Epsilon, Delta: res.Delta, MinCellSize: res.MinCellSize, Cells: res.Cells, Coverage: res.Coverage}
	if r.Mechanism == "" {
		r.Mechanism = "laplace"
	}
	if format != "table" {
		return writeReleased(e.stdout, r, format, all)
	}
	r.Federated = true
	if err := writeReleased(e.stdout, r, format, all); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nCoverage: %d of %d contributors answered (in %s)\n", res.Answered, len(res.Coverage), res.Elapsed.Round(time.Millisecond))
	writeCoverage(e.stdout, res.Coverage)
	return nil
}

// writeCoverage lists what became of a federated query at each contributor.
func writeCoverage(w io.Writer, cov []federation.Coverage) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range cov {
		why := c.Status
		if c.Reason != "" {
			why += ": " + c.Reason
		}
		if c.Detail != "" && c.Detail != c.Reason {
			why += " (" + c.Detail + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", c.Org, c.Country, why)
	}
	tw.Flush()
}

func newApprovalsCmd(e *env) *cobra.Command {
	var (
		p      passFlags
		all    bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "approvals --dir DIR [approve|reject ID]",
		Short: "List queries awaiting approval; approve or reject one",
		Long: `With policy.require_approval set, every new query from another member waits
until a person here approves it. approvals lists the waiting queries with
who asks, what (in words and SQL), the ε asked and the stated purpose;
"approve ID" or "reject ID" decides one. The querier collects an approved
answer by asking again with the same query ID.`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "approvals"
			ctx := cmd.Context()
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			if len(args) > 0 {
				if len(args) != 2 || (args[0] != "approve" && args[0] != "reject") {
					return node.E(op, node.Invalid, "use: approvals --dir DIR approve ID, or reject ID")
				}
				status := node.ApprovalApproved
				if args[0] == "reject" {
					status = node.ApprovalRejected
				}
				a, err := n.db.DecideApproval(ctx, args[1], status, operator())
				if err != nil {
					return err
				}
				if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "query." + args[0], Subject: a.ID,
					Detail: fmt.Sprintf("from %s: %s", a.Peer.Org, a.Request.Query.Canonical())}); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Query %s from %s is %s.\n", a.ID, a.Peer.Org, a.Status)
				return n.close()
			}
			status := node.ApprovalPending
			if all {
				status = ""
			}
			list, err := n.db.Approvals(ctx, status)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(e.stdout, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(e.stdout, "No query awaits approval.")
				return n.close()
			}
			for _, a := range list {
				fmt.Fprintf(e.stdout, "%s  [%s]  from %s (%s), received %s\n", a.ID, a.Status, a.Peer.Org, a.Peer.Country, a.Received.Format(time.RFC3339))
				fmt.Fprintf(e.stdout, "    asks:    %s\n", describeQuery(a.Request.Query))
				fmt.Fprintf(e.stdout, "    SQL:     %s\n", a.Request.Query.Canonical())
				fmt.Fprintf(e.stdout, "    ε:       %g\n    purpose: %s\n", a.Request.Epsilon, a.Request.Purpose)
			}
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "list decided queries too")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

// describeQuery says what a query asks, in words.
func describeQuery(q *node.Query) string {
	var b strings.Builder
	switch q.Measure.Func {
	case node.FuncCount:
		b.WriteString("the number of cases")
	case node.FuncSum:
		fmt.Fprintf(&b, "the total %s", strings.ReplaceAll(q.Measure.Field, "_", " "))
	case node.FuncAvg:
		fmt.Fprintf(&b, "the average %s", strings.ReplaceAll(q.Measure.Field, "_", " "))
	case node.FuncQuantile:
		fmt.Fprintf(&b, "the %g quantile of %s", q.Measure.Q, strings.ReplaceAll(q.Measure.Field, "_", " "))
	}
	if len(q.GroupBy) > 0 {
		b.WriteString(" by " + strings.ReplaceAll(strings.Join(q.GroupBy, ", "), "_", " "))
	}
	for i, f := range q.Filters {
		if i == 0 {
			b.WriteString(", where ")
		} else {
			b.WriteString(" and ")
		}
		fmt.Fprintf(&b, "%s is %s", strings.ReplaceAll(f.Dim, "_", " "), strings.Join(f.Codes, " or "))
	}
	return b.String()
}

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify the node's audit log, or list the audit heads it received",
	}
	var (
		p     passFlags
		heads string
	)
	verify := &cobra.Command{
		Use:   "verify --dir DIR [--heads FILE]",
		Short: "Check the audit log's hash chain",
		Long: `verify recomputes the hash chain of the node's append-only audit log and
reports any altered, removed or reordered entry and a truncated tail. Every
answer this node signed carried its audit head (sequence number and hash),
which the querier kept: give those heads with --heads (the JSON that
"ctfed audit heads" prints on the querier's node) to detect truncation
below any of them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var signed []node.AuditHead
			if heads != "" {
				b, err := os.ReadFile(e.path(heads))
				if err != nil {
					return node.E("audit", node.NotFound, "%v", err)
				}
				var byPeer map[string][]node.AuditHead
				if err := json.Unmarshal(b, &byPeer); err != nil {
					return node.E("audit", node.Invalid, "--heads: not the JSON of ctfed audit heads: %v", err)
				}
				n, err := e.openNode(ctx, &p)
				if err != nil {
					return err
				}
				defer n.close()
				id, err := n.identity()
				if err == nil {
					signed = byPeer[id.PeerID().String()]
				}
				return e.verifyAudit(ctx, n, signed)
			}
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			return e.verifyAudit(ctx, n, nil)
		},
	}
	p.register(verify)
	verify.Flags().StringVar(&heads, "heads", "", "a file of audit heads kept by queriers (ctfed audit heads --format json)")
	var hp passFlags
	list := &cobra.Command{
		Use:   "heads --dir DIR",
		Short: "Print the audit heads this node received with signed answers, by peer (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := e.openNode(cmd.Context(), &hp)
			if err != nil {
				return err
			}
			defer n.close()
			h, err := n.db.Heads(cmd.Context())
			if err != nil {
				return err
			}
			return writeJSON(e.stdout, h)
		},
	}
	hp.register(list)
	cmd.AddCommand(verify, list)
	return cmd
}

func (e *env) verifyAudit(ctx context.Context, n *nodeDir, signed []node.AuditHead) error {
	count, problems, err := n.db.VerifyAudit(ctx, signed)
	if err != nil {
		return err
	}
	if len(problems) == 0 {
		fmt.Fprintf(e.stdout, "The audit log is intact: %d entries, hash chain verified", count)
		if len(signed) > 0 {
			fmt.Fprintf(e.stdout, ", %d signed heads present", len(signed))
		}
		fmt.Fprintln(e.stdout, ".")
		return n.close()
	}
	for _, pr := range problems {
		fmt.Fprintf(e.stdout, "  %s\n", pr.Error())
	}
	return node.E("audit verify", node.Conflict, "the audit log has %d problems: it was altered", len(problems))
}
