package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctfed/ctfed/node"
)

// passphraseEnv names the environment variable services use to pass the
// node's passphrase.
const passphraseEnv = "CTFED_PASSPHRASE"

// passFlags are the flags of every subcommand that opens a node directory.
type passFlags struct {
	dir            string
	passphraseFile string
}

func (p *passFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.dir, "dir", "", "the node directory (required)")
	cmd.Flags().StringVar(&p.passphraseFile, "passphrase-file", "", "read the node's passphrase from this file (first line) instead of "+passphraseEnv+" or the terminal")
	_ = cmd.MarkFlagRequired("dir")
}

// passphrase returns the node's passphrase from --passphrase-file, then
// CTFED_PASSPHRASE, then the terminal (asked twice when confirm is set). With
// none of them it fails without touching anything.
func (p *passFlags) passphrase(confirm bool) ([]byte, error) {
	const op = "passphrase"
	if p.passphraseFile != "" {
		b, err := os.ReadFile(p.passphraseFile)
		if err != nil {
			return nil, node.E(op, node.Invalid, "--passphrase-file: %v", err)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = bytes.TrimRight(b, "\r")
		if len(b) == 0 {
			return nil, node.E(op, node.Invalid, "--passphrase-file %s is empty", p.passphraseFile)
		}
		return b, nil
	}
	if v, ok := os.LookupEnv(passphraseEnv); ok {
		if v == "" {
			return nil, node.E(op, node.Invalid, "%s is set but empty", passphraseEnv)
		}
		return []byte(v), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, node.E(op, node.Invalid, "no passphrase: set %s, use --passphrase-file, or run on a terminal", passphraseEnv)
	}
	fmt.Fprint(os.Stderr, "Node passphrase: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, node.E(op, node.Invalid, "reading the passphrase: %v", err)
	}
	if len(pw) == 0 {
		return nil, node.E(op, node.Invalid, "the passphrase is empty")
	}
	if confirm {
		if len(pw) < 12 {
			return nil, node.E(op, node.Invalid, "the passphrase is too short: use at least 12 characters")
		}
		fmt.Fprint(os.Stderr, "Repeat the passphrase: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, node.E(op, node.Invalid, "reading the passphrase: %v", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, node.E(op, node.Invalid, "the passphrases differ")
		}
	}
	return pw, nil
}
