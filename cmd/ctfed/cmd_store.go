package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ctfed/ctfed/config"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage"
)

// operator is the actor the CLI records in history and the audit log.
func operator() string {
	u := os.Getenv("USER")
	if u == "" {
		u = "unknown"
	}
	return "cli:" + u
}

func newEraseCmd(e *env) *cobra.Command {
	var p passFlags
	cmd := &cobra.Command{
		Use:   "erase --dir DIR CASECODE",
		Short: "Erase a case's identity fields from every stored version",
		Long: `erase destroys the identity fields (name, aliases, date of birth, contact
details, documents, narrative) of one case in every stored version of it,
including old copies still inside the store's files: the case's identity key
is destroyed and every other case's key is re-wrapped under a new
key-encryption key (crypto-shredding). The rest of the record stays, so the
case still counts in statistics. The erasure is written to the audit log.
It cannot be undone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := e.openNode(cmd.Context(), &p)
			if err != nil {
				return err
			}
			defer n.close()
			code := args[0]
			if err := n.db.EraseIdentity(cmd.Context(), code, operator()); err != nil {
				return err
			}
			if err := n.db.Append(cmd.Context(), &node.AuditEntry{Actor: operator(), Action: "case.erase_identity", Subject: code}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Erased the identity of case %s from every stored version.\n", code)
			return n.close()
		},
	}
	p.register(cmd)
	return cmd
}

func newBackupCmd(e *env) *cobra.Command {
	var (
		p   passFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "backup --dir DIR --out FILE",
		Short: "Write an encrypted backup of the node",
		Long: `backup writes one file holding the node's keys (still sealed under the
passphrase and the recovery key), its configuration and an encrypted copy of
its store. It can be restored with "ctfed restore" and the node's passphrase
or recovery key; without them it is unreadable. It can run while the node
is in use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := e.openNode(cmd.Context(), &p)
			if err != nil {
				return err
			}
			defer n.close()
			cfgBytes, err := os.ReadFile(filepath.Join(n.dir, config.FileName))
			if err != nil {
				return node.E("backup", node.Internal, "%w", err)
			}
			out = e.path(out)
			f, err := createExclusive(out)
			if err != nil {
				return err
			}
			if err := n.db.BackupNode(cmd.Context(), f, cfgBytes); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			if err := closeSynced(f); err != nil {
				os.Remove(out)
				return node.E("backup", node.Internal, "%w", err)
			}
			if err := n.db.Append(cmd.Context(), &node.AuditEntry{Actor: operator(), Action: "node.backup", Detail: filepath.Base(out)}); err != nil {
				return err
			}
			fi, _ := os.Stat(out)
			fmt.Fprintf(e.stdout, "Wrote encrypted backup %s (%d bytes).\n", out, fi.Size())
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "the backup file to write; it must not exist (required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newRestoreCmd(e *env) *cobra.Command {
	var p passFlags
	cmd := &cobra.Command{
		Use:   "restore --dir DIR FILE",
		Short: "Create a node directory from a backup",
		Long: `restore creates the node directory DIR (which must not exist or be empty)
from a file written by "ctfed backup". It needs the passphrase the node had
when the backup was made.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return node.E("restore", node.NotFound, "%v", err)
			}
			defer f.Close()
			b, err := storage.ReadNodeBackup(f)
			if err != nil {
				return err
			}
			if _, err := config.Parse(b.Config, "the backup's configuration"); err != nil {
				return node.E("restore", node.Invalid, "%w", err)
			}
			var pass []byte
			if !b.Insecure {
				if pass, err = p.passphrase(false); err != nil {
					return err
				}
			}
			if _, err := storage.RestoreNode(cmd.Context(), p.dir, b, pass); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(p.dir, config.FileName), b.Config, 0o600); err != nil {
				return node.E("restore", node.Internal, "%w", err)
			}
			fmt.Fprintf(e.stdout, "Restored the node into %s.\n", p.dir)
			return nil
		},
	}
	p.register(cmd)
	return cmd
}

// createExclusive creates a new file for output, refusing to overwrite one.
func createExclusive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if os.IsExist(err) {
			return nil, node.E("output", node.Conflict, "%s already exists: choose another name", path)
		}
		return nil, node.E("output", node.Invalid, "%v", err)
	}
	return f, nil
}

func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
