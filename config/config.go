package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"
)

// FileName is the configuration file's name inside a node directory.
const FileName = "ctfed.toml"

// Config is a node's configuration.
type Config struct {
	Node       Node       `toml:"node"`
	Log        Log        `toml:"log"`
	Privacy    Privacy    `toml:"privacy"`
	Web        Web        `toml:"web"`
	Federation Federation `toml:"federation"`
	Policy     Policy     `toml:"policy"`
}

// Federation is the node's place in the federation's network.
type Federation struct {
	// Authority is the pinned fingerprint of the federation authority's
	// key; rosters and bundles not signed by it are rejected.
	Authority string `toml:"authority"`
	// AuthorityKey is that key (base64), set when the join bundle, checked
	// against Authority, is installed.
	AuthorityKey string `toml:"authority_key"`
	// AuthorityAddrs are the authority's node addresses, from the bundle.
	AuthorityAddrs []string `toml:"authority_addrs"`
	// Listen are the libp2p multiaddrs to listen on (TCP).
	Listen []string `toml:"listen"`
	// MinCellSize is the minimum cell size this node applies to federated
	// results it asks for (each answering node's own applies too).
	MinCellSize int `toml:"min_cell_size"`
	// QueryTimeout is how long a federated query waits for answers.
	QueryTimeout Duration `toml:"query_timeout"`
	DialTimeout  Duration `toml:"dial_timeout"`
	ClockSkew    Duration `toml:"clock_skew"`
	StaleGrace   Duration `toml:"stale_grace"`
	// MaxConcurrentPerPeer caps the queries one querier may run at once.
	MaxConcurrentPerPeer int `toml:"max_concurrent_per_peer"`
}

// Policy says which other members may query this node, and what.
type Policy struct {
	AllowPeers      []string           `toml:"allow_peers"`
	AllowOrgs       []string           `toml:"allow_orgs"`
	RequireApproval bool               `toml:"require_approval"`
	Dimensions      []string           `toml:"dimensions"`
	Measures        []string           `toml:"measures"`
	Allocations     map[string]float64 `toml:"allocations"`
}

// Node names the organisation that runs the node.
type Node struct {
	Org     string `toml:"org"`
	Country string `toml:"country"`
}

// Log sets the node's logging.
type Log struct {
	Format string `toml:"format"` // console or json
	Level  string `toml:"level"`  // debug, info, warn, error
}

// Privacy is the node's privacy policy for statistical answers.
type Privacy struct {
	MinCellSize         int      `toml:"min_cell_size"`
	MaxCells            int      `toml:"max_cells"`
	DefaultEpsilon      float64  `toml:"default_epsilon"`
	MaxQueryEpsilon     float64  `toml:"max_query_epsilon"`
	NodeEpsilonPerYear  float64  `toml:"node_epsilon_per_year"`
	OrgEpsilonPerYear   float64  `toml:"org_epsilon_per_year"`
	GaussianDelta       float64  `toml:"gaussian_delta"`
	MaxQueryDelta       float64  `toml:"max_query_delta"`
	NodeDeltaPerYear    float64  `toml:"node_delta_per_year"`
	Mechanism           string   `toml:"mechanism"`
	CountWithoutConsent bool     `toml:"count_without_consent"`
	Epoch               Duration `toml:"epoch"`
}

// Web is the node's HTTP listener.
type Web struct {
	Listen string `toml:"listen"`
	// CertFile and KeyFile are the TLS certificate and key (PEM); relative
	// paths are in the node directory. Required on a non-loopback address.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// Disabled turns the web application off.
	Disabled bool `toml:"disabled"`
}

// Duration is a time.Duration written as "24h" in the file.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"24h\" or \"30m\"")
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the defaults of every setting, for an organisation.
func Default(org, country string) Config {
	return Config{
		Node: Node{Org: org, Country: country},
		Log:  Log{Format: "console", Level: "info"},
		Privacy: Privacy{
			MinCellSize:        5,
			MaxCells:           20000,
			DefaultEpsilon:     0.5,
			MaxQueryEpsilon:    1,
			NodeEpsilonPerYear: 8,
			OrgEpsilonPerYear:  4,
			GaussianDelta:      1e-6,
			MaxQueryDelta:      1e-5,
			NodeDeltaPerYear:   1e-4,
			Mechanism:          "laplace",
			Epoch:              Duration{24 * time.Hour},
		},
		Web: Web{Listen: "127.0.0.1:8080"},
		Federation: Federation{
			AuthorityAddrs:       []string{},
			Listen:               []string{"/ip4/0.0.0.0/tcp/4001"},
			MinCellSize:          5,
			QueryTimeout:         Duration{30 * time.Second},
			DialTimeout:          Duration{5 * time.Second},
			ClockSkew:            Duration{5 * time.Minute},
			StaleGrace:           Duration{24 * time.Hour},
			MaxConcurrentPerPeer: 4,
		},
		Policy: Policy{AllowPeers: []string{}, AllowOrgs: []string{}, Dimensions: []string{}, Measures: []string{}, Allocations: map[string]float64{}},
	}
}

// FieldError is one invalid setting, named by its key in the file.
type FieldError struct {
	Key string
	Msg string
}

func (e FieldError) Error() string { return e.Key + ": " + e.Msg }

var iso3 = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate checks every setting and returns every problem at once, each as a
// FieldError naming the setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.Node.Org) == "" {
		bad("node.org", "is required (the organisation's name)")
	}
	if !iso3.MatchString(c.Node.Country) {
		bad("node.country", "must be an ISO 3166-1 alpha-3 code like \"THA\" (got %q)", c.Node.Country)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		bad("log.format", "must be \"console\" or \"json\" (got %q)", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	p := &c.Privacy
	if p.MinCellSize < 1 {
		bad("privacy.min_cell_size", "must be at least 1 (got %d)", p.MinCellSize)
	}
	if p.MaxCells < 1 || p.MaxCells > 1_000_000 {
		bad("privacy.max_cells", "must be between 1 and 1000000 (got %d)", p.MaxCells)
	}
	pos := func(key string, v float64) bool {
		if !(v > 0) || math.IsInf(v, 0) {
			bad(key, "must be a positive number (got %v)", v)
			return false
		}
		return true
	}
	okQ := pos("privacy.max_query_epsilon", p.MaxQueryEpsilon)
	okD := pos("privacy.default_epsilon", p.DefaultEpsilon)
	okN := pos("privacy.node_epsilon_per_year", p.NodeEpsilonPerYear)
	okO := pos("privacy.org_epsilon_per_year", p.OrgEpsilonPerYear)
	if okQ && okD && p.DefaultEpsilon > p.MaxQueryEpsilon {
		bad("privacy.default_epsilon", "is larger than privacy.max_query_epsilon (%v > %v)", p.DefaultEpsilon, p.MaxQueryEpsilon)
	}
	if okO && okN && p.OrgEpsilonPerYear > p.NodeEpsilonPerYear {
		bad("privacy.org_epsilon_per_year", "is larger than privacy.node_epsilon_per_year (%v > %v)", p.OrgEpsilonPerYear, p.NodeEpsilonPerYear)
	}
	for key, v := range map[string]float64{"privacy.gaussian_delta": p.GaussianDelta, "privacy.max_query_delta": p.MaxQueryDelta, "privacy.node_delta_per_year": p.NodeDeltaPerYear} {
		if !(v >= 0 && v < 1) {
			bad(key, "must be at least 0 and below 1 (got %v)", v)
		}
	}
	switch p.Mechanism {
	case "laplace", "gaussian":
	default:
		bad("privacy.mechanism", "must be \"laplace\" or \"gaussian\" (got %q)", p.Mechanism)
	}
	if p.Epoch.Duration < time.Minute {
		bad("privacy.epoch", "must be at least 1m (got %s)", p.Epoch.Duration)
	}
	f := &c.Federation
	for _, a := range f.Listen {
		if !strings.HasPrefix(a, "/ip4/") && !strings.HasPrefix(a, "/ip6/") && !strings.HasPrefix(a, "/dns") {
			bad("federation.listen", "%q is not a multiaddr like \"/ip4/0.0.0.0/tcp/4001\"", a)
		}
	}
	if f.MinCellSize < 1 {
		bad("federation.min_cell_size", "must be at least 1 (got %d)", f.MinCellSize)
	}
	for key, d := range map[string]time.Duration{"federation.query_timeout": f.QueryTimeout.Duration, "federation.dial_timeout": f.DialTimeout.Duration} {
		if d < 100*time.Millisecond || d > time.Hour {
			bad(key, "must be between 100ms and 1h (got %s)", d)
		}
	}
	if f.ClockSkew.Duration < 0 || f.StaleGrace.Duration < 0 {
		bad("federation.clock_skew", "and federation.stale_grace must not be negative")
	}
	if f.MaxConcurrentPerPeer < 1 {
		bad("federation.max_concurrent_per_peer", "must be at least 1 (got %d)", f.MaxConcurrentPerPeer)
	}
	for org, eps := range c.Policy.Allocations {
		if !(eps > 0) || math.IsInf(eps, 0) || (okN && eps > p.NodeEpsilonPerYear) {
			bad("policy.allocations", "%q: must be a positive ε no larger than privacy.node_epsilon_per_year (got %v)", org, eps)
		}
	}
	if _, _, err := net.SplitHostPort(c.Web.Listen); err != nil {
		bad("web.listen", "must be host:port like \"127.0.0.1:8080\" (got %q)", c.Web.Listen)
	}
	return errors.Join(errs...)
}

// Load reads and validates the configuration file at path. Settings missing
// from the file keep their defaults; unknown settings are errors.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// Parse parses and validates a configuration file's bytes; name is used in
// error messages.
func Parse(b []byte, name string) (*Config, error) {
	c := Default("", "")
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := ""
			if ls := strings.Split(string(b), "\n"); pe.Position.Line >= 1 && pe.Position.Line <= len(ls) {
				line = strings.TrimSpace(ls[pe.Position.Line-1])
				if len(line) > 80 {
					line = line[:80] + "…"
				}
			}
			return nil, fmt.Errorf("%s: line %d (%s): %s", name, pe.Position.Line, line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown setting %s", name, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

var fileTemplate = template.Must(template.New("config").Parse(`# ctfed node configuration.
# Every setting shows its default; edit and restart "ctfed serve" to apply.

[node]
# The organisation that runs this node, and its country (ISO 3166-1 alpha-3).
org = {{printf "%q" .Node.Org}}
country = {{printf "%q" .Node.Country}}

[log]
# "console" for people, "json" for log collectors.
format = {{printf "%q" .Log.Format}}
# debug, info, warn or error.
level = {{printf "%q" .Log.Level}}

[privacy]
# A cell's number is shown only if its noisy count is at least this large
# and the lower end of its 95% interval is above zero.
min_cell_size = {{.Privacy.MinCellSize}}
# The most cells one query may ask for (the product of its GROUP BY domains).
max_cells = {{.Privacy.MaxCells}}
# ε spent by a query that does not say (the "--epsilon" default).
default_epsilon = {{.Privacy.DefaultEpsilon}}
# The largest ε one query may spend.
max_query_epsilon = {{.Privacy.MaxQueryEpsilon}}
# The total ε every query together may spend on one registration year.
node_epsilon_per_year = {{.Privacy.NodeEpsilonPerYear}}
# The total ε one querier organisation may spend on one registration year.
org_epsilon_per_year = {{.Privacy.OrgEpsilonPerYear}}
# δ of a query answered with Gaussian noise, its cap, and the yearly δ cap.
gaussian_delta = {{.Privacy.GaussianDelta}}
max_query_delta = {{.Privacy.MaxQueryDelta}}
node_delta_per_year = {{.Privacy.NodeDeltaPerYear}}
# "laplace" (the default, pure ε-DP) or "gaussian" (spends δ as well).
mechanism = {{printf "%q" .Privacy.Mechanism}}
# Whether cases whose victim did not consent to statistical use count in
# answers. The default is that they do not.
count_without_consent = {{.Privacy.CountWithoutConsent}}
# How long a stored answer is returned again for the same question at no
# cost. Epochs are fixed windows of this length from the Unix epoch.
epoch = {{printf "%q" .Privacy.Epoch.String}}

[web]
# The web application's address. On any address other than loopback the
# node serves TLS only, with this certificate and key (PEM; relative to the
# node directory). "ctfed init --web-listen" on such an address makes a
# self-signed pair and prints its fingerprint.
listen = {{printf "%q" .Web.Listen}}
cert_file = {{printf "%q" .Web.CertFile}}
key_file = {{printf "%q" .Web.KeyFile}}
# Turn the web application off (the CLI and the federation keep working).
disabled = {{.Web.Disabled}}

[federation]
# The fingerprint of the federation authority's key, pinned at init. Every
# roster must be signed by it.
authority = {{printf "%q" .Federation.Authority}}
# The authority's public key and node addresses, from the join bundle
# ("ctfed join"); checked against the fingerprint above.
authority_key = {{printf "%q" .Federation.AuthorityKey}}
authority_addrs = [{{range $i, $a := .Federation.AuthorityAddrs}}{{if $i}}, {{end}}{{printf "%q" $a}}{{end}}]
# libp2p addresses this node listens on for other members (TCP).
listen = [{{range $i, $a := .Federation.Listen}}{{if $i}}, {{end}}{{printf "%q" $a}}{{end}}]
# The minimum cell size of federated results this node asks for; each
# answering node's own minimum applies too (the largest wins).
min_cell_size = {{.Federation.MinCellSize}}
# How long a federated query waits for the members' answers.
query_timeout = {{printf "%q" .Federation.QueryTimeout.String}}
# How long one dial to a member may take before it counts as unreachable.
dial_timeout = {{printf "%q" .Federation.DialTimeout.String}}
# How far members' clocks may disagree when checking certificates.
clock_skew = {{printf "%q" .Federation.ClockSkew.String}}
# How long past its next_update a roster is still trusted; after that the
# node stops answering until it receives a newer one.
stale_grace = {{printf "%q" .Federation.StaleGrace.String}}
# The most queries one querier may run at this node at once.
max_concurrent_per_peer = {{.Federation.MaxConcurrentPerPeer}}

[policy]
# Who may query this node. Deny by default: list querier peer IDs (from
# the roster), or whole organisations only if you trust every node of theirs.
allow_peers = [{{range $i, $a := .Policy.AllowPeers}}{{if $i}}, {{end}}{{printf "%q" $a}}{{end}}]
allow_orgs = [{{range $i, $a := .Policy.AllowOrgs}}{{if $i}}, {{end}}{{printf "%q" $a}}{{end}}]
# Hold every new query until a person approves it ("ctfed approvals").
require_approval = {{.Policy.RequireApproval}}
# When set, the only dimensions and measures ("count", "age",
# "months_in_exploitation", ...) remote queries may use.
dimensions = [{{range $i, $a := .Policy.Dimensions}}{{if $i}}, {{end}}{{printf "%q" $a}}{{end}}]
measures = [{{range $i, $a := .Policy.Measures}}{{if $i}}, {{end}}{{printf "%q" $a}}{{end}}]

# ε per registration year for named querier organisations, instead of
# privacy.org_epsilon_per_year, e.g. "Federation HQ" = 2.0
[policy.allocations]
{{range $org, $eps := .Policy.Allocations}}{{printf "%q" $org}} = {{$eps}}
{{end}}`))

// Render returns c as a commented configuration file.
func Render(c *Config) ([]byte, error) {
	var b bytes.Buffer
	if err := fileTemplate.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes c as a commented configuration file at path, atomically, with
// mode 0600.
func Write(path string, c *Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := Render(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ctfed-*.toml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
