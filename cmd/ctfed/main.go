package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ctfed/ctfed/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is what every subcommand shares: its streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logFormat      string
	logLevel       string
	// shared is the node a running "ctfed serve" has open, when the command
	// arrived over its control socket; nil otherwise.
	shared *nodeDir
	// cwd is the directory relative paths are resolved in ("" is the
	// process's own).
	cwd string
}

// path resolves a path given on the command line.
func (e *env) path(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || e.cwd == "" {
		return p
	}
	return filepath.Join(e.cwd, p)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if ok, code := tryForward(os.Args[1:], os.Stdout, os.Stderr); ok {
		stop()
		os.Exit(code)
	}
	err := newRoot(e).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctfed:", userMessage(err))
		os.Exit(exitCode(err))
	}
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ctfed",
		Short: "ctfed: a federated, victim-centred counter-trafficking data network",
		Long: `ctfed runs an organisation's node: its victims' case records, kept encrypted
and never leaving it, and private statistical answers for authorised queriers.

Every subcommand that opens a node directory needs its passphrase: it is asked
on a terminal, or read from the CTFED_PASSPHRASE environment variable or the
file named by --passphrase-file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().StringVar(&e.logFormat, "log-format", "", `log format: "console" or "json" (default: the node's config, else console)`)
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "", "log level: debug, info, warn or error (default: the node's config, else info)")
	root.AddCommand(
		newInitCmd(e),
		newImportCmd(e),
		newExportCmd(e),
		newEraseCmd(e),
		newGenCmd(e),
		newBackupCmd(e),
		newRestoreCmd(e),
		newInfoCmd(e),
		newQueryCmd(e),
		newBudgetCmd(e),
		newAdmitCmd(e),
		newRevokeCmd(e),
		newJoinCmd(e),
		newServeCmd(e),
		newApprovalsCmd(e),
		newUserCmd(e),
		newAuditCmd(e),
		newDemoCmd(e),
		newVersionCmd(e),
	)
	return root
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ctfed's version and codebook version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(e.stdout, "ctfed %s (codebook %s)\n", v, node.CodebookVersion)
			return nil
		},
	}
}

// newLogger builds the zap logger: readable lines on a terminal, JSON when
// asked. Logs go to stderr; stdout carries results.
func (e *env) newLogger(format, level string) (*zap.Logger, error) {
	if e.logFormat != "" {
		format = e.logFormat
	}
	if e.logLevel != "" {
		level = e.logLevel
	}
	if format == "" {
		format = "console"
	}
	if level == "" {
		level = "info"
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return nil, fmt.Errorf("--log-format: %q is not console or json", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(e.stderr), lvl)), nil
}

// userMessage is what the CLI prints for an error: its text, which never
// carries an identity field (node errors withhold them).
func userMessage(err error) string {
	return err.Error()
}

// exitCode maps an error's kind to the process's exit status: 2 for bad
// input, 3 for permission (a wrong passphrase), 4 for an exhausted budget, 1
// otherwise.
func exitCode(err error) int {
	if errors.Is(err, context.Canceled) {
		return 130
	}
	switch node.KindOf(err) {
	case node.Invalid, node.NotFound, node.Conflict:
		return 2
	case node.Permission:
		return 3
	case node.BudgetExhausted:
		return 4
	}
	return 1
}
