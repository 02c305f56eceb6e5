package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ctfed/ctfed/config"
	"github.com/ctfed/ctfed/federation"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage"
)

// Files and keyring entries of the federation in a node directory.
const (
	rosterFile      = "roster.json"
	joinRequestFile = "join-request.json"
	keyIdentity     = "p2p-identity"
	keyAuthority    = "federation-authority"
	keyPSK          = "federation-psk"
)

// fedParts is the federation side of a serving node.
type fedParts struct {
	node  *federation.Node
	coord *federation.Coordinator
	auth  *federation.Authority
}

// identity returns the node's libp2p identity from its keyring.
func (n *nodeDir) identity() (*federation.Identity, error) {
	b, ok := n.keys.Extra(keyIdentity)
	if !ok {
		return nil, node.E("federation", node.NotFound, "%s has no network identity", n.dir)
	}
	return federation.UnmarshalIdentity(b)
}

// authorityKey returns the pinned authority public key, which join (or init
// --authority) stored after checking it against the pinned fingerprint.
func (n *nodeDir) authorityKey() (ed25519.PublicKey, error) {
	f := n.cfg.Federation
	if f.AuthorityKey == "" {
		if f.Authority == "" {
			return nil, node.E("federation", node.NotFound, "this node belongs to no federation: create it with ctfed init --authority-key FINGERPRINT, then ctfed join")
		}
		return nil, node.E("federation", node.NotFound, "this node has not joined its federation yet: run ctfed join --dir %s BUNDLE with the bundle from the authority", n.dir)
	}
	b, err := base64.StdEncoding.DecodeString(f.AuthorityKey)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, node.E("federation", node.Invalid, "federation.authority_key is not an Ed25519 public key")
	}
	key := ed25519.PublicKey(b)
	pin, err := federation.ParseFingerprint(f.Authority)
	if err != nil || !pin.Equal(federation.AuthorityFingerprint(key)) {
		return nil, node.E("federation", node.Invalid, "federation.authority_key does not match the pinned fingerprint federation.authority")
	}
	return key, nil
}

// authority returns the federation authority this node holds the key of,
// with its current roster.
func (n *nodeDir) authority() (*federation.Authority, error) {
	if n.fed != nil && n.fed.auth != nil {
		return n.fed.auth, nil
	}
	b, ok := n.keys.Extra(keyAuthority)
	if !ok {
		return nil, node.E("federation", node.Permission, "%s is not the federation authority's node (made with ctfed init --authority)", n.dir)
	}
	key := ed25519.PrivateKey(b)
	r, err := n.loadRoster(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	a := federation.NewAuthority(key, r)
	id, err := n.identity()
	if err != nil {
		return nil, err
	}
	a.PeerIDs = []string{id.PeerID().String()}
	if psk, ok := n.keys.Extra(keyPSK); ok {
		a.PSKFingerprint = federation.PSKFingerprint(psk).String()
	}
	return a, nil
}

// loadRoster reads DIR/roster.json, verified against key; nil if absent.
func (n *nodeDir) loadRoster(key ed25519.PublicKey) (*federation.Roster, error) {
	r, err := federation.LoadRosterFile(filepath.Join(n.dir, rosterFile), key)
	if errors.Is(err, fs.ErrNotExist) || (err != nil && node.KindOf(err) == node.NotFound) {
		return nil, nil
	}
	return r, err
}

// saveRoster writes r to DIR/roster.json atomically.
func (n *nodeDir) saveRoster(r *federation.Roster) error {
	return writeAtomic(filepath.Join(n.dir, rosterFile), r.Encode())
}

// installRoster saves r and, on a serving node, puts it in force (the
// authority's node pushes it to every member).
func (n *nodeDir) installRoster(ctx context.Context, r *federation.Roster) error {
	if err := n.saveRoster(r); err != nil {
		return err
	}
	if n.fed != nil && n.fed.node != nil {
		if _, err := n.fed.node.InstallRoster(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// saveConfig rewrites the node's configuration file.
func (n *nodeDir) saveConfig() error {
	return config.Write(filepath.Join(n.dir, config.FileName), n.cfg)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return node.E("write", node.Internal, "%w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return node.E("write", node.Internal, "%w", err)
	}
	if err := closeSynced(f); err != nil {
		return node.E("write", node.Internal, "%w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return node.E("write", node.Internal, "%w", err)
	}
	return nil
}

// dialable turns listen addresses into addresses another process on this
// machine can dial: 0.0.0.0 becomes 127.0.0.1. With a port of 0 nothing is
// known until the node runs.
func dialable(listen []string, peerID string) []string {
	var out []string
	for _, a := range listen {
		a = strings.Replace(a, "/ip4/0.0.0.0/", "/ip4/127.0.0.1/", 1)
		a = strings.Replace(a, "/ip6/::/", "/ip6/::1/", 1)
		if strings.HasSuffix(a, "/tcp/0") {
			continue
		}
		out = append(out, a+"/p2p/"+peerID)
	}
	return out
}

// setupFederation gives a new node its network identity and join request
// and, with authority, makes it the federation authority; with pin, it pins
// the authority's fingerprint.
func setupFederation(dir string, kr *storage.Keyring, cfg *config.Config, authority bool, pin string, pnet bool) (string, error) {
	const op = "init"
	id, err := federation.NewIdentity()
	if err != nil {
		return "", err
	}
	kr.SetExtra(keyIdentity, id.Marshal())
	var note string
	if authority {
		key, err := federation.NewAuthorityKey()
		if err != nil {
			return "", err
		}
		kr.SetExtra(keyAuthority, key)
		pub := key.Public().(ed25519.PublicKey)
		cfg.Federation.Authority = federation.AuthorityFingerprint(pub).String()
		cfg.Federation.AuthorityKey = base64.StdEncoding.EncodeToString(pub)
		cfg.Federation.AuthorityAddrs = dialable(cfg.Federation.Listen, id.PeerID().String())
		note = fmt.Sprintf("This node is the federation authority. Its fingerprint, which every member pins at init:\n  %s\n", cfg.Federation.Authority)
		if pnet {
			psk, err := federation.NewPSK()
			if err != nil {
				return "", err
			}
			kr.SetExtra(keyPSK, psk)
			note += fmt.Sprintf("Private network key %s: every connection needs it; join bundles carry it, so hand them over as secrets.\n", federation.PSKFingerprint(psk))
		}
	} else if pin != "" {
		fp, err := federation.ParseFingerprint(pin)
		if err != nil {
			return "", node.E(op, node.Invalid, "--authority-key: %v", err)
		}
		cfg.Federation.Authority = fp.String()
	}
	if err := kr.Save(); err != nil {
		return "", err
	}
	req, err := federation.NewJoinRequest(id, cfg.Node.Org, cfg.Node.Country, dialable(cfg.Federation.Listen, id.PeerID().String()))
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, joinRequestFile)
	if err := writeAtomic(path, req.Encode()); err != nil {
		return "", err
	}
	note += fmt.Sprintf("Peer ID: %s\nJoin request: %s (send it to the federation authority)\n", id.PeerID(), path)
	return note, nil
}
