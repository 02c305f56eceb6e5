package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/config"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/privacy"
	"github.com/ctfed/ctfed/storage"
)

// nodeDir is an opened node directory: its configuration, logger, keys and
// store. close closes what was opened, in reverse order.
type nodeDir struct {
	dir    string
	cfg    *config.Config
	log    *zap.Logger
	keys   *storage.Keyring
	db     *storage.DB
	svc    *node.QueryService // set by serve
	fed    *fedParts          // set by serve
	shared bool               // owned by a running serve: close does nothing
	closed bool
}

// openNode opens the node directory of p: configuration, passphrase, keys,
// store. Nothing is written before the passphrase is checked.
func (e *env) openNode(ctx context.Context, p *passFlags) (*nodeDir, error) {
	const op = "open node"
	if e.shared != nil {
		if abs, _ := filepath.Abs(e.path(p.dir)); abs != e.shared.dir {
			return nil, node.E(op, node.Invalid, "this running node serves %s, not %s", e.shared.dir, p.dir)
		}
		return &nodeDir{dir: e.shared.dir, cfg: e.shared.cfg, log: e.shared.log, keys: e.shared.keys, db: e.shared.db, svc: e.shared.svc, fed: e.shared.fed, shared: true}, nil
	}
	cfg, err := loadConfig(p.dir)
	if err != nil {
		return nil, err
	}
	log, err := e.newLogger(cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return nil, err
	}
	insecure, err := storage.KeyringInsecure(p.dir)
	if err != nil {
		return nil, err
	}
	var pass []byte
	if !insecure {
		if pass, err = p.passphrase(false); err != nil {
			return nil, err
		}
	}
	kr, err := storage.OpenKeyring(p.dir, pass)
	if err != nil {
		return nil, err
	}
	if kr.Insecure() {
		log.Warn("this node's keys are NOT protected by a passphrase (--insecure-no-passphrase): use it for throwaway demos only")
	}
	db := storage.NewDB(p.dir, kr)
	db.Logger = log.Named("storage")
	if err := db.Open(ctx); err != nil {
		return nil, node.E(op, node.KindOf(err), "%s: %w", p.dir, err)
	}
	abs, err := filepath.Abs(p.dir)
	if err != nil {
		abs = p.dir
	}
	return &nodeDir{dir: abs, cfg: cfg, log: log, keys: kr, db: db}, nil
}

// close closes the store with a deadline and flushes the log.
func (n *nodeDir) close() error {
	if n.closed || n.shared {
		return nil
	}
	n.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := n.db.Close(ctx)
	_ = n.log.Sync()
	return err
}

// loadConfig reads DIR/ctfed.toml, saying plainly when DIR is not a node.
func loadConfig(dir string) (*config.Config, error) {
	path := filepath.Join(dir, config.FileName)
	cfg, err := config.Load(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, serr := os.Stat(dir); serr != nil {
			return nil, node.E("open node", node.NotFound, "%s does not exist: create a node with ctfed init --dir %s", dir, dir)
		}
		return nil, node.E("open node", node.NotFound, "%s is not a ctfed node directory (no %s): create one with ctfed init", dir, config.FileName)
	case err != nil:
		return nil, node.E("open node", node.Invalid, "%w", err)
	}
	return cfg, nil
}

// queryService builds the node's query service from its configuration.
func (n *nodeDir) queryService(ctx context.Context) (*node.QueryService, error) {
	if n.svc != nil {
		return n.svc, nil
	}
	pol, err := policyOf(n.cfg)
	if err != nil {
		return nil, err
	}
	return &node.QueryService{
		Codebook:   node.DefaultCodebook(),
		Aggregator: n.db,
		Ledger:     n.db,
		Approvals:  n.db,
		Audit:      n.db,
		Policy:     pol,
		Org:        n.cfg.Node.Org,
		Logger:     n.log.Named("query"),
	}, nil
}

// policyOf turns the configuration's privacy section into the node's policy.
func policyOf(cfg *config.Config) (node.Policy, error) {
	p := cfg.Privacy
	pol := node.DefaultPolicy()
	pol.MinCellSize, pol.MaxCells, pol.DefaultEpsilon = p.MinCellSize, p.MaxCells, p.DefaultEpsilon
	pol.GaussianDelta, pol.CountWithoutConsent, pol.Epoch = p.GaussianDelta, p.CountWithoutConsent, p.Epoch.Duration
	m, err := privacy.ParseMechanism(p.Mechanism)
	if err != nil {
		return pol, node.E("policy", node.Invalid, "privacy.mechanism: %v", err)
	}
	pol.Mechanism = m
	var errs []error
	amount := func(key string, eps, delta float64) privacy.Amount {
		a, err := privacy.ToAmount(eps, delta)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		return a
	}
	pol.Caps = privacy.Caps{
		NodePerYear: amount("privacy.node_epsilon_per_year", p.NodeEpsilonPerYear, p.NodeDeltaPerYear),
		OrgPerYear:  amount("privacy.org_epsilon_per_year", p.OrgEpsilonPerYear, p.NodeDeltaPerYear),
		PerQuery:    amount("privacy.max_query_epsilon", p.MaxQueryEpsilon, p.MaxQueryDelta),
	}
	rp := cfg.Policy
	pol.Remote = node.RemotePolicy{AllowPeers: rp.AllowPeers, AllowOrgs: rp.AllowOrgs, RequireApproval: rp.RequireApproval,
		Dimensions: rp.Dimensions, Measures: rp.Measures, Allocations: map[string]privacy.Amount{}}
	for org, eps := range rp.Allocations {
		pol.Remote.Allocations[org] = amount("policy.allocations."+org, eps, p.NodeDeltaPerYear)
	}
	if err := errors.Join(errs...); err != nil {
		return pol, node.E("policy", node.Invalid, "%w", err)
	}
	return pol, nil
}

// inDir resolves a path of the configuration, relative to the node directory.
func (n *nodeDir) inDir(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(n.dir, p)
}
