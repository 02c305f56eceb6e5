package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

func newQueryCmd(e *env) *cobra.Command {
	var (
		p         passFlags
		local     bool
		exact     bool
		epsilon   float64
		delta     float64
		mechanism string
		dryRun    bool
		format    string
		all       bool
		jsonIn    bool
		timeout   time.Duration
		purpose   string
		queryID   string
	)
	cmd := &cobra.Command{
		Use:   "query --dir DIR [--local | --exact] [flags] SQL",
		Short: "Ask a statistical question of the node's cases",
		Long: `query answers one statistical question, written in ctfed's SQL subset:

  SELECT COUNT(*) | SUM(f) | AVG(f) | QUANTILE(f, q) FROM cases
  [WHERE dim = 'code' AND dim IN ('a','b') AND dim BETWEEN a AND b]
  [GROUP BY dim1[, dim2[, dim3]]]

Measure fields: age, age_at_exploitation, months_in_exploitation,
services_count. Dimensions: run "ctfed query --help-dims".

--local answers with differential privacy on this node's own cases, as any
querier would get it: every cell of the grouped domain carries noise, cells
below the minimum cell size or not distinguishable from zero are suppressed,
and the query's ε is charged to this node's own organisation on every
registration year it covers (all the codebook's years when it has no
registration_year filter). The same question in the same epoch is answered
from the cache at no cost. --dry-run shows what it would charge.

Without --local or --exact the query is federated: the running node (ctfed
serve) asks every contributing member, waits up to --timeout, and prints one
combined table with 95% intervals and the coverage: who answered, refused
(and why), awaits approval, or could not be reached. --purpose is required.

--exact prints this node's exact figures, for its own staff. They are never
cached and never leave the node.

With --json the argument is the query's JSON form instead of SQL.`,
		Example: `  ctfed query --dir ./node --local "SELECT COUNT(*) FROM cases GROUP BY gender"
  ctfed query --dir ./node --local --epsilon 0.2 --format csv \
    "SELECT AVG(months_in_exploitation) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY exploitation_type"
  ctfed query --dir ./node --exact "SELECT COUNT(*) FROM cases GROUP BY citizenship"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "query"
			ctx := cmd.Context()
			switch format {
			case "table", "csv", "json":
			default:
				return node.E(op, node.Invalid, "--format must be table, csv or json (got %q)", format)
			}
			if local && exact {
				return node.E(op, node.Invalid, "choose --local (a private answer on this node's cases) or --exact (its exact figures), not both")
			}
			federated := !local && !exact
			if federated && dryRun {
				return node.E(op, node.Invalid, "--dry-run applies to --local queries: each member decides its own charges")
			}
			if exact && (dryRun || cmd.Flags().Changed("epsilon")) {
				return node.E(op, node.Invalid, "--exact spends no privacy budget: --epsilon and --dry-run do not apply")
			}
			cb := node.DefaultCodebook()
			var q *node.Query
			var err error
			if jsonIn {
				q, err = node.ParseJSON(cb, []byte(args[0]))
			} else {
				q, err = node.ParseSQL(cb, args[0])
			}
			if err != nil {
				return err
			}
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			svc, err := n.queryService(ctx)
			if err != nil {
				return err
			}
			if federated {
				if strings.TrimSpace(purpose) == "" {
					return node.E(op, node.Invalid, "a federated query needs a --purpose: each member's operator sees it")
				}
				if queryID == "" {
					queryID = newQueryID()
				}
				req := &node.QueryRequest{ID: queryID, Query: q, Epsilon: epsilon, Delta: delta, Mechanism: mechanism, Purpose: purpose}
				if req.Epsilon == 0 {
					req.Epsilon = svc.Policy.DefaultEpsilon
				}
				if err := e.federatedQuery(ctx, n, req, timeout, format, all); err != nil {
					return err
				}
				return n.close()
			}
			if exact {
				t, err := svc.Exact(ctx, q)
				if err != nil {
					return err
				}
				if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "query.exact", Detail: q.Canonical()}); err != nil {
					return err
				}
				if err := writeExact(e.stdout, cb, t, format, all); err != nil {
					return err
				}
				return n.close()
			}
			ans, err := svc.Answer(ctx, &node.AnswerRequest{Query: q, Epsilon: epsilon, Delta: delta, Mechanism: mechanism, DryRun: dryRun})
			if err != nil {
				var ce *privacy.CapError
				if errors.As(err, &ce) {
					return node.E(op, node.BudgetExhausted, "refused, nothing charged: it would exceed the %v", ce)
				}
				return err
			}
			r := &released{Query: q.Canonical(), QueryJSON: q, Codebook: q.Codebook, Dimensions: q.GroupBy, Measure: measureName(q.Measure),
				Charged: ans.Charged, Years: ans.Years, Cached: ans.Cached, DryRun: ans.DryRun, MinCellSize: svc.Policy.MinCellSize}
			r.Mechanism, r.Epsilon, r.Delta = svc.Policy.Mechanism.String(), epsilon, delta
			if r.Epsilon == 0 {
				r.Epsilon = svc.Policy.DefaultEpsilon
			}
			if mechanism != "" {
				r.Mechanism = mechanism
			}
			if ans.Table != nil {
				r.Mechanism, r.Epsilon, r.Delta = ans.Table.Mechanism.String(), ans.Table.Epsilon, ans.Table.Delta
				cells, minSize, err := node.Combine(cb, q, []*node.NoisyTable{ans.Table}, svc.Policy.MinCellSize, svc.Combiner())
				if err != nil {
					return err
				}
				r.Cells, r.MinCellSize = cells, minSize
				r.PhantomRate = phantomRate(ans.Table, minSize)
			}
			if !dryRun {
				detail := fmt.Sprintf("local answer, ε %g charged %s on %s: %s", r.Epsilon, ans.Charged.Epsilon, yearsText(ans.Years), q.Canonical())
				if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "query.local", Detail: detail}); err != nil {
					return err
				}
			}
			lines, err := svc.Budget(ctx, svc.Org)
			if err != nil {
				return err
			}
			var mine []node.BudgetLine
			for _, l := range lines {
				for _, y := range ans.Years {
					if l.Year == y {
						mine = append(mine, l)
					}
				}
			}
			r.Remaining = budgetLinesJSON(mine)
			if err := writeReleased(e.stdout, r, format, all); err != nil {
				return err
			}
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().BoolVar(&local, "local", false, "a differentially private answer on this node's own cases, charged to its own organisation")
	cmd.Flags().BoolVar(&exact, "exact", false, "this node's exact figures, for its own staff (never cached or sent)")
	cmd.Flags().Float64Var(&epsilon, "epsilon", 0, "ε to spend (default: the node's privacy.default_epsilon, 0.5)")
	cmd.Flags().Float64Var(&delta, "delta", 0, "δ to spend, Gaussian mechanism only (default: privacy.gaussian_delta)")
	cmd.Flags().StringVar(&mechanism, "mechanism", "", "laplace or gaussian (default: the node's privacy.mechanism)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what the query would charge; charge nothing")
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	cmd.Flags().BoolVar(&all, "all", false, "list suppressed (or, with --exact, empty) cells in the table too")
	cmd.Flags().BoolVar(&jsonIn, "json", false, "the argument is the query's JSON form")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long a federated query waits for answers (default federation.query_timeout)")
	cmd.Flags().StringVar(&queryID, "id", "", "the federated query's ID (default: a new one); ask again with the same ID to collect answers that were pending approval, never charged twice")
	cmd.Flags().StringVar(&purpose, "purpose", "", "why you ask: shown to each member's operator (required for federated queries)")
	return cmd
}

func newBudgetCmd(e *env) *cobra.Command {
	var (
		p      passFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "budget --dir DIR",
		Short: "Show the privacy budget spent and remaining, per organisation and year",
		Long: `budget lists, for every registration year on which anything was spent, the
ε and δ spent node-wide and by each querier organisation, against their caps
(privacy.node_epsilon_per_year and privacy.org_epsilon_per_year).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := e.openNode(cmd.Context(), &p)
			if err != nil {
				return err
			}
			defer n.close()
			svc, err := n.queryService(cmd.Context())
			if err != nil {
				return err
			}
			lines, err := svc.Budget(cmd.Context(), "")
			if err != nil {
				return err
			}
			switch format {
			case "json":
				return writeJSON(e.stdout, budgetLinesJSON(lines))
			case "table":
			default:
				return node.E("budget", node.Invalid, "--format must be table or json")
			}
			if len(lines) == 0 {
				fmt.Fprintln(e.stdout, "No privacy budget has been spent yet.")
				return n.close()
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "who\tyears\tε spent\tε cap\tε remaining\tδ spent\t")
			for _, run := range budgetRuns(budgetLinesJSON(lines)) {
				l := run.line
				who := l.Org
				if who == "" {
					who = "(node-wide)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", who, run.years, fmtUnits(l.SpentEpsilon), fmtUnits(l.CapEpsilon), fmtUnits(l.RemainingEps), strconv.FormatFloat(l.SpentDelta, 'g', -1, 64))
			}
			tw.Flush()
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func fmtUnits(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// phantomRate is the probability that a cell of t with no case passes the
// release rule: the rate of phantom cells, from the count's noise.
func phantomRate(t *node.NoisyTable, minSize int) float64 {
	if len(t.Cells) == 0 {
		return 0
	}
	c := t.Cells[0].Count
	n := c.Noise()
	thr := math.Max(float64(minSize), n.HalfWidth()+1)
	return n.CDF(-thr)
}
