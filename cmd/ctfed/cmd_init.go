package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctfed/ctfed/config"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage"
)

const closeTimeout = 30 * time.Second

func newInitCmd(e *env) *cobra.Command {
	var (
		p         passFlags
		org       string
		country   string
		insecure  bool
		authority bool
		pin       string
		listen    []string
		pnet      bool
		webListen string
		admin     string
	)
	cmd := &cobra.Command{
		Use:   "init --dir DIR --org NAME --country ISO3",
		Short: "Create a node: its directory, configuration, keys and empty store",
		Long: `init creates a new node directory: a commented configuration file
(ctfed.toml), the node's keys (keys.json, sealed under the passphrase) and an
empty encrypted case store.

The passphrase is asked twice on a terminal, or read from CTFED_PASSPHRASE or
--passphrase-file. A recovery key is printed once: write it down and keep it
apart from the node; it opens the keys if the passphrase is lost.

--insecure-no-passphrase keeps the keys unprotected on disk. Anyone who copies
the directory can read it. Use it only for throwaway demos and tests.`,
		Example: `  CTFED_PASSPHRASE='correct horse battery staple' ctfed init --dir ./node --org "Example Shelter" --country THA \
    --authority-key ctfed-auth:...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			const op = "init"
			country = strings.ToUpper(strings.TrimSpace(country))
			cfg := config.Default(strings.TrimSpace(org), country)
			if authority && pin != "" {
				return node.E(op, node.Invalid, "--authority makes this node the authority: it pins its own key, not --authority-key")
			}
			if len(listen) > 0 {
				cfg.Federation.Listen = listen
			}
			if webListen != "" {
				cfg.Web.Listen = webListen
			}
			if err := cfg.Validate(); err != nil {
				return node.E(op, node.Invalid, "%s", strings.NewReplacer("node.org", "--org", "node.country", "--country").Replace(err.Error()))
			}
			if !node.DefaultCodebook().Countries.Has(country) {
				return node.E(op, node.Invalid, "--country %q is not an ISO 3166-1 alpha-3 code", country)
			}
			if err := checkEmptyDir(p.dir); err != nil {
				return err
			}
			log, err := e.newLogger("", "")
			if err != nil {
				return err
			}
			var pass []byte
			if !insecure {
				if pass, err = p.passphrase(true); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(p.dir, 0o700); err != nil {
				return node.E(op, node.Internal, "%w", err)
			}
			kr, recovery, err := storage.CreateKeyring(p.dir, pass, insecure)
			if err != nil {
				return err
			}
			if pnet && !authority {
				return node.E(op, node.Invalid, "--private-network is chosen by the authority (with --authority); members receive the key in their join bundle")
			}
			note, err := setupFederation(p.dir, kr, &cfg, authority, pin, pnet)
			if err != nil {
				return err
			}
			if err := config.Write(filepath.Join(p.dir, config.FileName), &cfg); err != nil {
				return node.E(op, node.Internal, "%w", err)
			}
			if host, _, err := net.SplitHostPort(cfg.Web.Listen); err == nil && !isLoopbackHost(host) {
				cert, key, fp, err := makeSelfSigned(p.dir, host)
				if err != nil {
					return node.E(op, node.Internal, "web certificate: %w", err)
				}
				cfg.Web.CertFile, cfg.Web.KeyFile = cert, key
				note += fmt.Sprintf("The web application on %s serves TLS only, with a self-signed certificate.\nIts SHA-256 fingerprint (check it when a browser first connects):\n  %s\n", cfg.Web.Listen, fp)
				if err := config.Write(filepath.Join(p.dir, config.FileName), &cfg); err != nil {
					return node.E(op, node.Internal, "%w", err)
				}
			}
			db := storage.NewDB(p.dir, kr)
			db.Logger = log.Named("storage")
			if err := db.Open(cmd.Context()); err != nil {
				return err
			}
			if admin != "" {
				if err := createFirstAdmin(cmd.Context(), db, admin); err != nil {
					db.Close(cmd.Context())
					return err
				}
				note += fmt.Sprintf("Web admin: %s\n", admin)
			}
			if err := db.Close(cmd.Context()); err != nil {
				return err
			}
			out := e.stdout
			fmt.Fprintf(out, "Created node %q (%s) in %s\n", cfg.Node.Org, cfg.Node.Country, p.dir)
			fmt.Fprintf(out, "  configuration: %s\n", filepath.Join(p.dir, config.FileName))
			fmt.Fprint(out, note)
			if insecure {
				fmt.Fprintln(e.stderr, "WARNING: --insecure-no-passphrase: this node's keys are stored UNPROTECTED.")
				fmt.Fprintln(e.stderr, "WARNING: anyone with a copy of the directory can read every case. Never put real cases in it.")
				return nil
			}
			fmt.Fprintln(out, "")
			fmt.Fprintln(out, "Recovery key (shown once; write it down and keep it apart from the node):")
			fmt.Fprintf(out, "  %s\n", recovery)
			return nil
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&org, "org", "", "the organisation that runs the node (required)")
	cmd.Flags().StringVar(&country, "country", "", "the organisation's country, ISO 3166-1 alpha-3, e.g. THA (required)")
	cmd.Flags().BoolVar(&insecure, "insecure-no-passphrase", false, "store the keys without a passphrase: throwaway demos and tests ONLY")
	cmd.Flags().BoolVar(&authority, "authority", false, "make this node the federation authority (HQ): it holds the key that admits members")
	cmd.Flags().StringVar(&pin, "authority-key", "", "pin the federation authority's fingerprint (from the authority's operator)")
	cmd.Flags().StringSliceVar(&listen, "listen", nil, "libp2p listen addresses (default /ip4/0.0.0.0/tcp/4001)")
	cmd.Flags().StringVar(&webListen, "web-listen", "", "the web application's address (default 127.0.0.1:8080; any other than loopback gets a self-signed TLS certificate)")
	cmd.Flags().StringVar(&admin, "admin", "", "create the first web admin with this name (password asked, or CTFED_USER_PASSWORD)")
	cmd.Flags().BoolVar(&pnet, "private-network", false, "with --authority: give the federation a private network key, which every connection then needs (TCP only; it travels in join bundles, which become secrets)")
	_ = cmd.MarkFlagRequired("org")
	_ = cmd.MarkFlagRequired("country")
	return cmd
}

// checkEmptyDir refuses to init over an existing node or a non-empty
// directory, so that init never overwrites anything.
func checkEmptyDir(dir string) error {
	const op = "init"
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return node.E(op, node.Invalid, "--dir %s: %v", dir, err)
	}
	for _, de := range entries {
		if de.Name() == storage.KeysFile || de.Name() == config.FileName {
			return node.E(op, node.Conflict, "%s already holds a ctfed node", dir)
		}
	}
	if len(entries) > 0 {
		return node.E(op, node.Invalid, "%s is not empty: choose a new directory", dir)
	}
	return nil
}

// isLoopbackHost reports whether host is a loopback name or address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
