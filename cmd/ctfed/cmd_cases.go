package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/casefile"
)

func newImportCmd(e *env) *cobra.Command {
	var (
		p           passFlags
		format      string
		skipInvalid bool
		rejects     string
		update      bool
		consent     string
		batch       int
	)
	cmd := &cobra.Command{
		Use:   "import --dir DIR FILE",
		Short: "Import cases from a CSV or XLSX file",
		Long: `import reads cases from a CSV or XLSX file in one of three shapes, detected
from the header (or named with --format):

  ctfed        ctfed's own format: one column per field ("ctfed export" writes it)
  ctdc         the CTDC 2024 global dataset's 27 variables
  ctdc-legacy  the legacy 63-column CTDC names

Every row is validated first. If any row is bad, each problem is listed with
its line, column and value, and nothing is imported; --skip-invalid imports
the good rows instead and writes the problems to --rejects.

Cases are written in atomic batches. Importing the same file again changes
nothing: cases identical to the stored ones are left as they are, so a
re-import also completes an interrupted one. A case whose code is stored with
different content is refused unless --update is given (which keeps the old
version in the case's history). CTDC rows carry no case code; theirs is
derived from the row under a key of this node, so it reveals nothing.`,
		Example: `  ctfed import --dir ./node cases.csv
  ctfed import --dir ./node --format ctdc --consent yes ctdc_2024.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "import"
			ctx := cmd.Context()
			path := e.path(args[0])
			var f casefile.Format
			if format != "" {
				var err error
				if f, err = casefile.ParseFormat(format); err != nil {
					return node.E(op, node.Invalid, "--format: %v", err)
				}
			}
			switch consent {
			case "", "yes", "no", "unknown":
			default:
				return node.E(op, node.Invalid, "--consent must be yes, no or unknown (got %q)", consent)
			}
			if skipInvalid && rejects == "" {
				rejects = path + ".rejects.csv"
			}
			rejects = e.path(rejects)
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			ropt := casefile.ReadOptions{Format: f, Codebook: node.DefaultCodebook(), HMACKey: n.keys.HMACKey(), DefaultConsent: consent}

			// Every row is checked before anything is written; the cases
			// are kept for writing when they fit in memory, else the file is
			// read again.
			start := time.Now()
			open := func() (io.ReadCloser, error) {
				f, err := os.Open(path)
				if err != nil {
					return nil, node.E(op, node.NotFound, "%v", err)
				}
				return f, nil
			}
			bar := &bar{}
			check := func(checked *casefile.Result) error {
				if len(checked.Rejected) > 0 {
					printRowErrors(e.stderr, checked, 20)
					if !skipInvalid {
						fmt.Fprintf(e.stdout, "%s\nNothing was imported. Fix the rows above, or use --skip-invalid to import the %d good rows.\n", checked.Summary(), checked.Valid)
						return checked.Err()
					}
					if err := writeRejects(rejects, checked); err != nil {
						return err
					}
					fmt.Fprintf(e.stderr, "The problems of %d rejected rows are in %s.\n", len(checked.Rejected), rejects)
				}
				bar = e.progress(checked.Valid, "importing")
				return nil
			}
			mode := node.CreateOnly
			if update {
				mode = node.Upsert
			}
			iopt := casefile.ImportOptions{BatchSize: batch, Mode: mode, By: operator(),
				Progress: func(done, _ int) { bar.set(done) }}
			res, put, err := casefile.ImportFile(ctx, n.db, open, path, ropt, iopt, check)
			bar.finish()
			if err != nil {
				if put.Created+put.Updated > 0 {
					fmt.Fprintf(e.stderr, "Stopped after %d new and %d updated cases (whole batches); importing the file again completes it.\n", put.Created, put.Updated)
				}
				return err
			}
			elapsed := time.Since(start)
			if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "case.import",
				Detail: fmt.Sprintf("%s shape, %d rows: %d created, %d updated, %d unchanged, %d rejected", res.Format, res.RowCount, put.Created, put.Updated, put.Unchanged, len(res.Rejected))}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Imported %s: %d rows, %d new, %d updated, %d unchanged, %d rejected, in %s (%.0f cases/s).\n",
				path, res.RowCount, put.Created, put.Updated, put.Unchanged, len(res.Rejected), elapsed.Round(time.Millisecond), float64(res.RowCount)/elapsed.Seconds())
			for _, note := range res.Notes {
				fmt.Fprintf(e.stdout, "  note: %s\n", note)
			}
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&format, "format", "", "the file's shape: ctfed, ctdc or ctdc-legacy (default: detected from the header)")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "import the valid rows even if some are bad, and write the bad rows' problems to --rejects")
	cmd.Flags().StringVar(&rejects, "rejects", "", "where --skip-invalid writes the rejected rows' problems (default FILE.rejects.csv)")
	cmd.Flags().BoolVar(&update, "update", false, "store a new version of a case whose code exists with different content (default: refuse it)")
	cmd.Flags().StringVar(&consent, "consent", "", "consent to statistical use for rows that carry none (every CTDC row): yes, no or unknown (default unknown)")
	cmd.Flags().IntVar(&batch, "batch", casefile.DefaultBatchSize, "cases per atomic batch")
	return cmd
}

// printRowErrors lists the first max row problems.
func printRowErrors(w io.Writer, r *casefile.Result, max int) {
	for i, re := range r.Errors {
		if i == max {
			fmt.Fprintf(w, "  ... and %d more problems\n", len(r.Errors)-max+r.MoreErrors)
			return
		}
		fmt.Fprintf(w, "  %s\n", re.Error())
	}
	if r.MoreErrors > 0 {
		fmt.Fprintf(w, "  ... and %d more problems\n", r.MoreErrors)
	}
}

// writeRejects writes every listed row problem as CSV: line, column, value
// (never an identity field's), problem.
func writeRejects(path string, r *casefile.Result) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return node.E("import", node.Invalid, "--rejects: %v", err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"line", "column", "value", "problem"})
	for _, re := range r.Errors {
		w.Write([]string{strconv.Itoa(re.Line), re.Column, re.Value, re.Msg})
	}
	if r.MoreErrors > 0 {
		w.Write([]string{"", "", "", fmt.Sprintf("%d more problems not listed", r.MoreErrors)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return node.E("import", node.Internal, "%w", err)
	}
	return closeSynced(f)
}

func newExportCmd(e *env) *cobra.Command {
	var (
		p               passFlags
		out             string
		format          string
		includeIdentity bool
		consentedOnly   bool
	)
	cmd := &cobra.Command{
		Use:   "export --dir DIR --out FILE",
		Short: "Export the node's cases as CSV",
		Long: `export writes every case as CSV, in ctfed's own format (the default; import
reads it back) or, with --format ctdc, in the CTDC 27-variable shape, so that
the node can also contribute to a central dataset the classic way.

Identity fields (names, aliases, date of birth, contact details, documents,
narrative) are left out unless --include-identity is given; the export is
written to the audit log either way.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			const op = "export"
			ctx := cmd.Context()
			f := casefile.FormatCtfed
			if format != "" {
				var err error
				if f, err = casefile.ParseFormat(format); err != nil {
					return node.E(op, node.Invalid, "--format: %v", err)
				}
			}
			if includeIdentity && f != casefile.FormatCtfed {
				return node.E(op, node.Invalid, "--include-identity applies to the ctfed format only")
			}
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			out = e.path(out)
			file, err := createExclusive(out)
			if err != nil {
				return err
			}
			w, err := casefile.NewWriter(file, casefile.WriteOptions{Format: f, IncludeIdentity: includeIdentity, ConsentedOnly: consentedOnly})
			if err != nil {
				file.Close()
				os.Remove(out)
				return err
			}
			err = n.db.ForEachCase(ctx, includeIdentity, w.Write)
			if err == nil {
				err = w.Close()
			}
			if err == nil {
				err = closeSynced(file)
			} else {
				file.Close()
			}
			if err != nil {
				os.Remove(out)
				return node.E(op, node.KindOf(err), "%s: %w", out, err)
			}
			detail := fmt.Sprintf("%s shape, %d cases", f, w.Written())
			if includeIdentity {
				detail += ", WITH identity fields"
			}
			if err := n.db.Append(ctx, &node.AuditEntry{Actor: operator(), Action: "case.export", Detail: detail}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Exported %d cases to %s (%s shape%s).\n", w.Written(), out, f,
				map[bool]string{true: ", with identity fields", false: ", without identity fields"}[includeIdentity])
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "the CSV file to write; it must not exist (required)")
	cmd.Flags().StringVar(&format, "format", "", "ctfed (default) or ctdc")
	cmd.Flags().BoolVar(&includeIdentity, "include-identity", false, "include the identity fields (ctfed format only; audited)")
	cmd.Flags().BoolVar(&consentedOnly, "consented-only", false, "export only cases whose victim consented to statistical use")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// bar is a progress bar on a terminal and nothing elsewhere.
type bar struct{ pb *progressbar.ProgressBar }

func (e *env) progress(total int, what string) *bar {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || total <= 0 {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("cases"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())}
}

func (b *bar) set(n int) {
	if b.pb != nil {
		_ = b.pb.Set(n)
	}
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}
