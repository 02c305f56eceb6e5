package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// demoPassphrase protects the demo's throwaway nodes.
const demoPassphrase = "demo-only passphrase, not for real cases"

// demo runs ctfed end to end on synthetic cases, as separate processes of
// this binary, exactly as an operator would type the commands.
type demo struct {
	e    *env
	bin  string
	dir  string
	keep bool
	env  []string
}

func newDemoCmd(e *env) *cobra.Command {
	var (
		keep   bool
		dir    string
		cases  int
		single bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run ctfed end to end on synthetic cases",
		Long: `demo builds a small federation in a temporary directory: a federation
authority (HQ) and four member organisations in different countries (an NGO
in Thailand, a government agency in Romania, an international
organisation's mission in Ukraine, an NGO in Nigeria), each with its own
synthetic caseload from "ctfed gen" (nobody real). HQ admits them, each
starts its node as a separate process on loopback, and HQ asks federated
questions; each answer is printed beside the exact truth, which the demo
knows because it made the data. Then a query past the members' budget is
refused, and one node is stopped to show a partial answer on time.

Every step runs this binary as an operator would, printing the command, so
the demo doubles as a tutorial. --single runs one node on its own instead.
--keep leaves the federation running and prints how to query it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			if dir == "" {
				if dir, err = os.MkdirTemp("", "ctfed-demo-"); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			d := &demo{e: e, bin: bin, dir: dir, keep: keep,
				env: append(os.Environ(), passphraseEnv+"="+demoPassphrase)}
			start := time.Now()
			if single {
				err = d.runSingle(cmd.Context(), cases)
			} else {
				err = d.runFederation(cmd.Context(), cases)
			}
			if !keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return fmt.Errorf("demo failed: %w", err)
			}
			fmt.Fprintf(e.stdout, "\nThe demo finished in %s.\n", time.Since(start).Round(100*time.Millisecond))
			if keep && single {
				fmt.Fprintf(e.stdout, "The node is in %s. Try:\n  export %s='%s'\n  %s query --dir %s --local \"SELECT COUNT(*) FROM cases GROUP BY citizenship\"\n",
					dir, passphraseEnv, demoPassphrase, bin, filepath.Join(dir, "ngo"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo's directory and print how to use it")
	cmd.Flags().StringVar(&dir, "dir", "", "where to put the demo (default: a new temporary directory)")
	cmd.Flags().IntVar(&cases, "cases", 10000, "synthetic cases per node")
	cmd.Flags().BoolVar(&single, "single", false, "one node on its own: import, exact figures, private answers, budget")
	return cmd
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.e.stdout, "\n== "+format+"\n", args...)
}

// run runs this binary with args, echoing the command; its output goes to
// the demo's output unless quiet, and is returned.
func (d *demo) run(ctx context.Context, quiet bool, args ...string) (string, error) {
	shown := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '*(") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		shown[i] = a
	}
	fmt.Fprintf(d.e.stdout, "$ ctfed %s\n", strings.Join(shown, " "))
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = d.env
	cmd.Dir = d.dir
	w := io.Writer(&out)
	if !quiet {
		w = io.MultiWriter(&out, d.e.stdout)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	err := cmd.Run()
	if err != nil {
		if quiet {
			d.e.stdout.Write(out.Bytes())
		}
		return out.String(), fmt.Errorf("ctfed %s: %w", args[0], err)
	}
	return out.String(), nil
}

// runSingle is the one-node part of the demo.
func (d *demo) runSingle(ctx context.Context, cases int) error {
	ngo := filepath.Join(d.dir, "ngo")
	d.say("A node for an NGO in Thailand")
	if _, err := d.run(ctx, true, "init", "--dir", ngo, "--org", "Mekong Shelter (demo)", "--country", "THA", "--web-listen", "127.0.0.1:0"); err != nil {
		return err
	}
	fmt.Fprintln(d.e.stdout, "(the recovery key it printed is not shown here)")
	d.say("%d synthetic cases, shaped like a South-East Asian caseload; nobody real", cases)
	csv := filepath.Join(d.dir, "sea-ngo.csv")
	if _, err := d.run(ctx, false, "gen", "--cases", fmt.Sprint(cases), "--seed", "7", "--profile", "sea-ngo", "--out", csv); err != nil {
		return err
	}
	if _, err := d.run(ctx, false, "import", "--dir", ngo, csv); err != nil {
		return err
	}
	d.say("Importing the same file again changes nothing")
	if _, err := d.run(ctx, false, "import", "--dir", ngo, csv); err != nil {
		return err
	}
	d.say("The node's own exact figures (its analysts only; never shared)")
	if _, err := d.run(ctx, false, "query", "--dir", ngo, "--exact", "SELECT COUNT(*) FROM cases GROUP BY exploitation_type"); err != nil {
		return err
	}
	d.say("The same question answered with differential privacy, as a querier would get it")
	if _, err := d.run(ctx, false, "query", "--dir", ngo, "--local", "SELECT COUNT(*) FROM cases GROUP BY exploitation_type"); err != nil {
		return err
	}
	d.say("Victims by citizenship and type of exploitation, 2020-2024")
	if _, err := d.run(ctx, false, "query", "--dir", ngo, "--local", "--epsilon", "1",
		"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY citizenship, exploitation_type"); err != nil {
		return err
	}
	d.say("Mean months in exploitation by type of exploitation")
	if _, err := d.run(ctx, false, "query", "--dir", ngo, "--local", "--epsilon", "1",
		"SELECT AVG(months_in_exploitation) FROM cases GROUP BY exploitation_type"); err != nil {
		return err
	}
	d.say("The privacy budget spent so far")
	if _, err := d.run(ctx, false, "budget", "--dir", ngo); err != nil {
		return err
	}
	d.say("A query past the organisation's yearly budget is refused, and charges nothing")
	out, err := d.run(ctx, true, "query", "--dir", ngo, "--local", "--epsilon", "1", "SELECT COUNT(*) FROM cases GROUP BY gender, majority")
	if err != nil {
		return err
	}
	fmt.Fprint(d.e.stdout, firstLines(out, 3))
	out, err = d.run(ctx, true, "query", "--dir", ngo, "--local", "--epsilon", "1", "SELECT COUNT(*) FROM cases GROUP BY means_of_control")
	if err == nil {
		return fmt.Errorf("the query past the budget was answered:\n%s", out)
	}
	if !strings.Contains(out, "cap") {
		return fmt.Errorf("the refusal does not name the cap:\n%s", out)
	}
	return nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfterN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}
