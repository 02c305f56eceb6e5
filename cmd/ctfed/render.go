package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
)

// released is a private answer as the CLI prints it: the cells after the
// release rule, and what it cost.
type released struct {
	Query       string            `json:"query"`
	QueryJSON   *node.Query       `json:"query_json"`
	Codebook    string            `json:"codebook"`
	Dimensions  []string          `json:"dimensions"`
	Measure     string            `json:"measure"`
	Mechanism   string            `json:"mechanism"`
	Epsilon     float64           `json:"epsilon"`
	Delta       float64           `json:"delta,omitempty"`
	Charged     privacy.Amount    `json:"charged"`
	Years       []int             `json:"years_charged"`
	MinCellSize int               `json:"min_cell_size"`
	Cached      bool              `json:"cached,omitempty"`
	DryRun      bool              `json:"dry_run,omitempty"`
	Cells       []node.ResultCell `json:"cells,omitempty"`
	Remaining   []budgetJSON      `json:"remaining_budget,omitempty"`
	Coverage    any               `json:"coverage,omitempty"`
	// PhantomRate is the probability that a cell with no case is shown as
	// a number under this answer's noise and release rule.
	PhantomRate float64 `json:"phantom_rate,omitempty"`
	// Federated marks a result combined from several nodes.
	Federated bool `json:"-"`
}

type budgetJSON struct {
	Org            string  `json:"org,omitempty"`
	Year           int     `json:"year"`
	SpentEpsilon   float64 `json:"spent_epsilon"`
	CapEpsilon     float64 `json:"cap_epsilon"`
	RemainingEps   float64 `json:"remaining_epsilon"`
	SpentDelta     float64 `json:"spent_delta,omitempty"`
	RemainingDelta float64 `json:"remaining_delta,omitempty"`
}

func budgetLinesJSON(lines []node.BudgetLine) []budgetJSON {
	out := make([]budgetJSON, len(lines))
	for i, l := range lines {
		r := l.Remaining()
		out[i] = budgetJSON{Org: l.Org, Year: l.Year, SpentEpsilon: l.Spent.Epsilon.Float64(), CapEpsilon: l.Cap.Epsilon.Float64(),
			RemainingEps: r.Epsilon.Float64(), SpentDelta: l.Spent.Delta.Float64(), RemainingDelta: r.Delta.Float64()}
	}
	return out
}

func measureName(m node.Measure) string {
	switch m.Func {
	case node.FuncCount:
		return "count"
	case node.FuncQuantile:
		return fmt.Sprintf("quantile(%s, %g)", m.Field, m.Q)
	}
	return strings.ToLower(m.Func) + "(" + m.Field + ")"
}

var reasonText = map[string]string{
	privacy.ReasonBelowMinimum:      "suppressed: below the minimum cell size",
	privacy.ReasonIndistinguishable: "suppressed: not distinguishable from zero",
}

func fmtNum(v float64, whole bool) string {
	if whole {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// writeReleased prints r as a table, CSV or JSON. The table hides
// suppressed cells unless all is set, and says how many there were.
func writeReleased(w io.Writer, r *released, format string, all bool) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		cw := csv.NewWriter(w)
		head := append(append([]string(nil), r.Dimensions...), "value", "lo", "hi", "count", "suppressed", "mechanism", "scale", "l0", "linf")
		cw.Write(head)
		for _, c := range r.Cells {
			row := append([]string(nil), c.Key...)
			row = append(row, optNum(c.Value), optNum(c.Lo), optNum(c.Hi), optNum(c.Count), c.Suppressed, c.Mechanism,
				strconv.FormatFloat(c.Scale, 'g', 6, 64), strconv.FormatInt(c.L0, 10), strconv.FormatInt(c.LInf, 10))
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	}
	fmt.Fprintf(w, "Query:    %s\n", r.Query)
	how := fmt.Sprintf("%s noise, ε %g", r.Mechanism, r.Epsilon)
	if r.Delta > 0 {
		how += fmt.Sprintf(", δ %g", r.Delta)
	}
	fmt.Fprintf(w, "Answer:   %s, minimum cell size %d, codebook %s\n", how, r.MinCellSize, r.Codebook)
	switch {
	case r.Federated:
	case r.DryRun && r.Cached:
		fmt.Fprintln(w, "Dry run:  this answer is cached for the current epoch; asking would charge nothing.")
	case r.DryRun:
		fmt.Fprintf(w, "Dry run:  asking would charge ε %v (δ %v) on each of %s. Nothing was charged.\n", r.Charged.Epsilon, r.Charged.Delta, yearsText(r.Years))
	case r.Cached:
		fmt.Fprintln(w, "Charged:  nothing (the same question was answered earlier in this epoch: the stored answer is returned).")
	default:
		fmt.Fprintf(w, "Charged:  ε %v (δ %v) on each of %s\n", r.Charged.Epsilon, r.Charged.Delta, yearsText(r.Years))
	}
	if r.Federated {
		fmt.Fprintln(w, "Combined: the members' noisy answers summed; intervals from the exact distribution of the summed noise.")
	}
	if !r.DryRun {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		head := append(append([]string(nil), r.Dimensions...), r.Measure, "95% interval")
		if r.Measure != "count" {
			head = append(head, "cases (noisy)")
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		whole := r.Measure == "count" || strings.HasPrefix(r.Measure, "sum(") || strings.HasPrefix(r.Measure, "quantile(")
		suppressed := map[string]int{}
		for _, c := range r.Cells {
			if c.Suppressed != "" {
				suppressed[c.Suppressed]++
				if !all {
					continue
				}
			}
			row := append([]string(nil), c.Key...)
			if c.Value == nil {
				row = append(row, "—", reasonText[c.Suppressed])
			} else {
				row = append(row, fmtNum(*c.Value, whole), fmtNum(*c.Lo, whole)+" – "+fmtNum(*c.Hi, whole))
				if c.Count != nil {
					row = append(row, fmtNum(*c.Count, true))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		if n := suppressed[privacy.ReasonBelowMinimum] + suppressed[privacy.ReasonIndistinguishable]; n > 0 {
			fmt.Fprintf(w, "\n%d of %d cells suppressed (%d below the minimum cell size, %d not distinguishable from zero)",
				n, len(r.Cells), suppressed[privacy.ReasonBelowMinimum], suppressed[privacy.ReasonIndistinguishable])
			if !all {
				fmt.Fprint(w, "; --all lists them")
			}
			fmt.Fprintln(w, ".")
		}
		if r.PhantomRate > 0 && len(r.Cells) > 1 {
			fmt.Fprintf(w, "A cell with no cases at all still shows as a number %.1f%% of the time at this ε (phantom cells):\n"+
				"with %d cells, expect up to %.0f of those shown to hold no case. Read small values with their intervals.\n",
				100*r.PhantomRate, len(r.Cells), r.PhantomRate*float64(len(r.Cells)))
		}
	}
	if len(r.Remaining) > 0 {
		fmt.Fprintln(w)
		fmt.Fprint(w, "Remaining budget:")
		for _, run := range budgetRuns(r.Remaining) {
			b := run.line
			fmt.Fprintf(w, " %s ε %s of %s;", run.years, strconv.FormatFloat(b.RemainingEps, 'f', -1, 64), strconv.FormatFloat(b.CapEpsilon, 'f', -1, 64))
		}
		fmt.Fprintln(w)
	}
	return nil
}

func optNum(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

// yearsText shortens a list of consecutive years: "2020–2024".
func yearsText(ys []int) string {
	if len(ys) == 0 {
		return "no year"
	}
	var parts []string
	for i := 0; i < len(ys); {
		j := i
		for j+1 < len(ys) && ys[j+1] == ys[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ys[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d–%d", ys[i], ys[j]))
		}
		i = j + 1
	}
	word := "year "
	if len(ys) > 1 {
		word = "the years "
	}
	return word + strings.Join(parts, ", ")
}

// writeExact prints an exact table: the node's own figures, for its staff.
func writeExact(w io.Writer, cb *node.Codebook, t *node.ExactTable, format string, all bool) error {
	q := t.Query
	name := measureName(q.Measure)
	m, _ := cb.Measure(q.Measure.Field)
	value := func(c node.Tally) string {
		switch q.Measure.Func {
		case node.FuncCount:
			return strconv.FormatInt(c.Count, 10)
		case node.FuncSum:
			return strconv.FormatInt(c.Sum, 10)
		case node.FuncAvg:
			if c.Count == 0 {
				return ""
			}
			return strconv.FormatFloat(float64(c.Sum)/float64(c.Count), 'f', 2, 64)
		case node.FuncQuantile:
			if c.Count == 0 {
				return ""
			}
			need := int64(math.Ceil(q.Measure.Q * float64(c.Count)))
			var acc int64
			for i, h := range c.Hist {
				if acc += h; acc >= max(need, 1) {
					return strconv.FormatInt(m.Lo+int64(i), 10)
				}
			}
		}
		return ""
	}
	switch format {
	case "json":
		type cell struct {
			Key   []string `json:"key"`
			Count int64    `json:"count"`
			Value string   `json:"value"`
		}
		out := struct {
			Query string `json:"query"`
			Exact bool   `json:"exact"`
			Cells []cell `json:"cells"`
		}{Query: q.Canonical(), Exact: true}
		for i, c := range t.Cells {
			out.Cells = append(out.Cells, cell{t.CellKey(i), c.Count, value(c)})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(append(append([]string(nil), q.GroupBy...), "cases", name))
		for i, c := range t.Cells {
			cw.Write(append(t.CellKey(i), strconv.FormatInt(c.Count, 10), value(c)))
		}
		cw.Flush()
		return cw.Error()
	}
	fmt.Fprintf(w, "Query:  %s\nExact figures of this node's own cases: for its staff only; never share them.\n\n", q.Canonical())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := append(append([]string(nil), q.GroupBy...), "cases")
	if q.Measure.Func != node.FuncCount {
		head = append(head, name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	empty := 0
	for i, c := range t.Cells {
		if c.Count == 0 && !all {
			empty++
			continue
		}
		row := append(t.CellKey(i), strconv.FormatInt(c.Count, 10))
		if q.Measure.Func != node.FuncCount {
			row = append(row, value(c))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if empty > 0 {
		fmt.Fprintf(w, "\n%d empty cells not shown (--all lists them).\n", empty)
	}
	return nil
}

// budgetRun is a run of consecutive years of one organisation with the same
// spending, printed as one line.
type budgetRun struct {
	years string
	line  budgetJSON
}

func budgetRuns(lines []budgetJSON) []budgetRun {
	var out []budgetRun
	for i := 0; i < len(lines); {
		j := i
		for j+1 < len(lines) && lines[j+1].Org == lines[i].Org && lines[j+1].Year == lines[j].Year+1 &&
			lines[j+1].SpentEpsilon == lines[i].SpentEpsilon && lines[j+1].SpentDelta == lines[i].SpentDelta && lines[j+1].CapEpsilon == lines[i].CapEpsilon {
			j++
		}
		ys := strconv.Itoa(lines[i].Year)
		if j > i {
			ys += "–" + strconv.Itoa(lines[j].Year)
		}
		out = append(out, budgetRun{years: ys, line: lines[i]})
		i = j + 1
	}
	return out
}
