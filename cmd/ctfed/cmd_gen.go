package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
)

func newGenCmd(e *env) *cobra.Command {
	var (
		n       int
		seed    uint64
		profile string
		out     string
		list    bool
	)
	cmd := &cobra.Command{
		Use:   "gen --cases N --seed S [--profile NAME] [--out FILE]",
		Short: "Write realistic synthetic cases as ctfed CSV",
		Long: `gen writes N synthetic cases in ctfed's own CSV format (the one import
reads), the same bytes for the same seed and profile. The cases are shaped
like real caseloads of a kind of organisation (corridors, exploitation types,
ages, means of control) but describe nobody: their identity fields are
clearly fake ("Fakename ...", documents "FAKE-...", phones "+000 ...").
Use them for demos, tests and benchmarks; never put real cases in a
repository. --list shows the profiles.`,
		Example: `  ctfed gen --cases 10000 --seed 1 --profile sea-ngo > cases.csv`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if list {
				tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
				for _, p := range synth.Profiles() {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Country, p.Description)
				}
				return tw.Flush()
			}
			if n < 0 {
				return node.E("gen", node.Invalid, "--cases must be at least 0 (got %d)", n)
			}
			if _, err := synth.Lookup(profile); err != nil {
				return err
			}
			w := e.stdout
			var f *os.File
			if out != "" && out != "-" {
				var err error
				if f, err = createExclusive(out); err != nil {
					return err
				}
				w = f
			}
			bw := bufio.NewWriterSize(w, 1<<20)
			err := synth.WriteCSV(bw, n, seed, profile)
			if err == nil {
				err = bw.Flush()
			}
			if f != nil {
				if err == nil {
					err = closeSynced(f)
				} else {
					f.Close()
					os.Remove(out)
				}
			}
			if err != nil {
				return err
			}
			if f != nil {
				fmt.Fprintf(e.stderr, "Wrote %d synthetic cases (profile %s, seed %d) to %s.\n", n, orDefault(profile), seed, out)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "cases", 1000, "how many cases")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "the random seed: the same seed gives the same file")
	cmd.Flags().StringVar(&profile, "profile", synth.DefaultProfile, "the kind of organisation: "+profileNames())
	cmd.Flags().StringVar(&out, "out", "", "write to FILE (must not exist) instead of standard output")
	cmd.Flags().BoolVar(&list, "list", false, "list the profiles")
	return cmd
}

func profileNames() string {
	var names []string
	for _, p := range synth.Profiles() {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

func orDefault(p string) string {
	if p == "" {
		return synth.DefaultProfile
	}
	return p
}
