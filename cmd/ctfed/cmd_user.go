package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ctfed/ctfed/node"
)

// userPasswordEnv passes a web user's password to non-interactive runs.
const userPasswordEnv = "CTFED_USER_PASSWORD"

// readUserPassword returns a web user's new password: from
// CTFED_USER_PASSWORD, or asked twice on a terminal.
func readUserPassword(who string) (string, error) {
	const op = "password"
	if v := os.Getenv(userPasswordEnv); v != "" {
		return v, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", node.E(op, node.Invalid, "no password for %s: set %s or run on a terminal", who, userPasswordEnv)
	}
	fmt.Fprintf(os.Stderr, "Password for %s: ", who)
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", node.E(op, node.Invalid, "%v", err)
	}
	fmt.Fprint(os.Stderr, "Repeat it: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", node.E(op, node.Invalid, "%v", err)
	}
	if !bytes.Equal(a, b) {
		return "", node.E(op, node.Invalid, "the passwords differ")
	}
	return string(a), nil
}

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the people who sign in to the node's web application",
		Long: `user adds, lists, disables and re-enables web users and changes their
passwords. Roles: admin (users, policy, backups), caseworker (cases), analyst
(the node's own statistics and federated queries), auditor (the audit log,
read only). Passwords are asked on a terminal or read from
CTFED_USER_PASSWORD; they are kept only as argon2id hashes. Every change is
written to the audit log.`,
	}
	var pa, pl, pd, pe, pp passFlags
	var role string
	add := &cobra.Command{
		Use:   "add --dir DIR --role ROLE NAME",
		Short: "Add a web user",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := node.ParseRole(role)
			if err != nil {
				return err
			}
			pw, err := readUserPassword(args[0])
			if err != nil {
				return err
			}
			n, err := e.openNode(c.Context(), &pa)
			if err != nil {
				return err
			}
			defer n.close()
			u, err := n.db.CreateUser(c.Context(), args[0], r, pw, operator())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Added %s (%s).\n", u.Name, u.Role)
			return n.close()
		},
	}
	pa.register(add)
	add.Flags().StringVar(&role, "role", "caseworker", "admin, caseworker, analyst or auditor")
	list := &cobra.Command{
		Use:   "list --dir DIR",
		Short: "List web users",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := e.openNode(c.Context(), &pl)
			if err != nil {
				return err
			}
			defer n.close()
			us, err := n.db.Users(c.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "name\trole\tstate\tcreated\t")
			for _, u := range us {
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", u.Name, u.Role, state, u.Created.Format("2006-01-02"))
			}
			tw.Flush()
			return n.close()
		},
	}
	pl.register(list)
	setDisabled := func(p *passFlags, disabled bool) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			n, err := e.openNode(c.Context(), p)
			if err != nil {
				return err
			}
			defer n.close()
			if err := n.db.SetUserDisabled(c.Context(), args[0], disabled, operator()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s is %s.\n", args[0], map[bool]string{true: "disabled", false: "enabled"}[disabled])
			return n.close()
		}
	}
	disable := &cobra.Command{Use: "disable --dir DIR NAME", Short: "Disable a web user (their sessions end)", Args: cobra.ExactArgs(1), RunE: setDisabled(&pd, true)}
	pd.register(disable)
	enable := &cobra.Command{Use: "enable --dir DIR NAME", Short: "Enable a disabled web user", Args: cobra.ExactArgs(1), RunE: setDisabled(&pe, false)}
	pe.register(enable)
	passwd := &cobra.Command{
		Use:   "passwd --dir DIR NAME",
		Short: "Set a web user's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pw, err := readUserPassword(args[0])
			if err != nil {
				return err
			}
			n, err := e.openNode(c.Context(), &pp)
			if err != nil {
				return err
			}
			defer n.close()
			if err := n.db.SetPassword(c.Context(), args[0], pw, operator()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Changed the password of %s.\n", args[0])
			return n.close()
		},
	}
	pp.register(passwd)
	cmd.AddCommand(add, list, disable, enable, passwd)
	return cmd
}

// createFirstAdmin adds the node's first web admin at init.
func createFirstAdmin(ctx context.Context, db interface {
	CreateUser(context.Context, string, node.Role, string, string) (*node.User, error)
}, name string) error {
	pw, err := readUserPassword(name)
	if err != nil {
		return err
	}
	_, err = db.CreateUser(ctx, name, node.RoleAdmin, pw, operator())
	return err
}

// makeSelfSigned writes a self-signed TLS certificate and key for the web
// listener into dir and returns the certificate's SHA-256 fingerprint,
// which users compare when their browser first connects.
func makeSelfSigned(dir, host string) (cert, key, fingerprint string, err error) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ctfed node"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(3, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else if host != "" {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &pk.PublicKey, pk)
	if err != nil {
		return "", "", "", err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(pk)
	if err != nil {
		return "", "", "", err
	}
	cert, key = "web-cert.pem", "web-key.pem"
	if err := writeAtomic(filepath.Join(dir, cert), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return "", "", "", err
	}
	if err := writeAtomic(filepath.Join(dir, key), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})); err != nil {
		return "", "", "", err
	}
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return cert, key, strings.Join(parts, ":"), nil
}
