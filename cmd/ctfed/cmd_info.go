package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ctfed/ctfed/node"
)

func newInfoCmd(e *env) *cobra.Command {
	var (
		p      passFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "info --dir DIR",
		Short: "Show a node's organisation, codebook, case count and audit head",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			n, err := e.openNode(ctx, &p)
			if err != nil {
				return err
			}
			defer n.close()
			count, err := n.db.CaseCount(ctx)
			if err != nil {
				return err
			}
			head, err := n.db.AuditHead(ctx)
			if err != nil {
				return err
			}
			info := struct {
				Org           string `json:"org"`
				Country       string `json:"country"`
				Codebook      string `json:"codebook"`
				Cases         int    `json:"cases"`
				KeysProtected bool   `json:"keys_protected"`
				AuditSeq      uint64 `json:"audit_seq"`
			}{n.cfg.Node.Org, n.cfg.Node.Country, node.CodebookVersion, count, !n.keys.Insecure(), head.Seq}
			if format == "json" {
				return writeJSON(e.stdout, info)
			}
			fmt.Fprintf(e.stdout, "Organisation:  %s (%s)\nCodebook:      %s\nCases:         %d\nKeys:          %s\nAudit entries: %d\n",
				info.Org, info.Country, info.Codebook, info.Cases,
				map[bool]string{true: "sealed under the passphrase", false: "NOT protected (--insecure-no-passphrase)"}[info.KeysProtected], info.AuditSeq)
			return n.close()
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}
