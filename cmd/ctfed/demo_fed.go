package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ctfed/ctfed/config"
	"github.com/ctfed/ctfed/federation"
	"github.com/ctfed/ctfed/node"
)

// member is one organisation of the demo federation.
type member struct {
	name, org, country, profile string
	seed                        uint64
	dir                         string
	port                        int
	proc                        *exec.Cmd
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runFederation is the demo: an authority/HQ and four member organisations
// as separate processes on loopback, federated queries beside the exact
// truth, a refusal, and a partial answer with one member stopped.
func (d *demo) runFederation(ctx context.Context, cases int) (err error) {
	hq := &member{name: "hq", org: "Federation HQ (demo)", country: "CHE"}
	members := []*member{
		{name: "th-ngo", org: "Mekong Shelter (demo NGO)", country: "THA", profile: "sea-ngo", seed: 11},
		{name: "ro-gov", org: "Romanian anti-trafficking agency (demo)", country: "ROU", profile: "ee-gov", seed: 12},
		{name: "ua-mission", org: "IO country mission Ukraine (demo)", country: "UKR", profile: "gulf-mission", seed: 13},
		{name: "ng-ngo", org: "Lagos Survivors Network (demo NGO)", country: "NGA", profile: "wa-ngo", seed: 14},
	}
	all := append([]*member{hq}, members...)
	for _, m := range all {
		m.dir = filepath.Join(d.dir, m.name)
		if m.port, err = freePort(); err != nil {
			return err
		}
	}
	defer func() {
		if !d.keep || err != nil {
			d.stopAll(all)
		}
	}()

	d.say("The federation authority (HQ) creates the federation's key")
	if _, err := d.run(ctx, true, "init", "--dir", hq.dir, "--org", hq.org, "--country", hq.country, "--authority",
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", hq.port), "--web-listen", "127.0.0.1:0"); err != nil {
		return err
	}
	hcfg, err := config.Load(filepath.Join(hq.dir, config.FileName))
	if err != nil {
		return err
	}
	fpr := hcfg.Federation.Authority
	fmt.Fprintf(d.e.stdout, "Authority fingerprint (members pin it): %s\n", fpr)
	if _, err := d.run(ctx, false, "admit", "--dir", hq.dir, "--roles", "querier", filepath.Join(hq.dir, joinRequestFile), "--out", filepath.Join(d.dir, "hq-bundle.json")); err != nil {
		return err
	}
	hqID, err := peerOf(filepath.Join(hq.dir, joinRequestFile))
	if err != nil {
		return err
	}

	for _, m := range members {
		d.say("%s (%s) sets up its node, with %d synthetic %s cases", m.org, m.country, cases, m.profile)
		if _, err := d.run(ctx, true, "init", "--dir", m.dir, "--org", m.org, "--country", m.country, "--authority-key", fpr,
			"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", m.port), "--web-listen", "127.0.0.1:0"); err != nil {
			return err
		}
		csv := filepath.Join(d.dir, m.name+".csv")
		if _, err := d.run(ctx, true, "gen", "--cases", fmt.Sprint(cases), "--seed", fmt.Sprint(m.seed), "--profile", m.profile, "--out", csv); err != nil {
			return err
		}
		if _, err := d.run(ctx, false, "import", "--dir", m.dir, csv); err != nil {
			return err
		}
		bundle := filepath.Join(d.dir, m.name+"-bundle.json")
		if _, err := d.run(ctx, false, "admit", "--dir", hq.dir, "--roles", "contributor", filepath.Join(m.dir, joinRequestFile), "--out", bundle); err != nil {
			return err
		}
		if _, err := d.run(ctx, false, "join", "--dir", m.dir, bundle); err != nil {
			return err
		}
		// The operator lets HQ ask, in the [policy] section of ctfed.toml.
		path := filepath.Join(m.dir, config.FileName)
		cfg, err := config.Load(path)
		if err != nil {
			return err
		}
		cfg.Policy.AllowPeers = []string{hqID}
		if err := config.Write(path, cfg); err != nil {
			return err
		}
		fmt.Fprintf(d.e.stdout, "(the operator allows HQ's peer %s… in [policy] allow_peers)\n", hqID[:16])
	}

	d.say("Every organisation starts its node (separate processes on loopback)")
	for _, m := range all {
		if err := d.start(ctx, m); err != nil {
			return err
		}
	}

	queries := []struct{ title, sql string }{
		{"Victims by citizenship and type of exploitation, 2020–2024",
			"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2020 AND 2024 GROUP BY citizenship, exploitation_type"},
		{"Victims by country of exploitation and year of registration, 2021–2024",
			"SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2021 AND 2024 GROUP BY country_of_exploitation, registration_year"},
		{"Mean months in exploitation by type of exploitation",
			"SELECT AVG(months_in_exploitation) FROM cases GROUP BY exploitation_type"},
		{"Means of control used on minors",
			"SELECT COUNT(*) FROM cases WHERE majority = 'minor' GROUP BY means_of_control"},
	}
	for _, q := range queries {
		d.say("%s", q.title)
		if err := d.compare(ctx, hq, members, q.sql, 12); err != nil {
			return err
		}
	}

	d.say("One member's node is stopped: the query returns on time with a partial answer and says who is missing")
	stopped := members[3]
	d.stop(stopped)
	start := time.Now()
	res, err := d.fedQuery(ctx, hq, "SELECT COUNT(*) FROM cases WHERE registration_year = 2024 GROUP BY gender", "0.3")
	if err != nil {
		return err
	}
	printCoverage(d, res)
	fmt.Fprintf(d.e.stdout, "returned in %s\n", time.Since(start).Round(time.Millisecond))
	if res.Answered != len(members)-1 {
		return fmt.Errorf("want %d answers with one node stopped, got %d", len(members)-1, res.Answered)
	}
	if err := d.start(ctx, stopped); err != nil {
		return err
	}
	d.say("A query past the members' budget for HQ is refused by each of them, and charges nothing")
	for _, dims := range []string{"gender, majority", "data_source, retrafficked"} {
		if _, err := d.run(ctx, true, "query", "--dir", hq.dir, "--epsilon", "1", "--timeout", "10s", "--purpose", "demo: spend the budget",
			"--format", "json", "SELECT COUNT(*) FROM cases GROUP BY "+dims); err != nil {
			return err
		}
	}
	res, err = d.fedQuery(ctx, hq, "SELECT COUNT(*) FROM cases GROUP BY recruitment_type", "1")
	if err != nil {
		return err
	}
	printCoverage(d, res)
	for _, c := range res.Coverage {
		if c.Status != "refused" || !strings.Contains(c.Reason+c.Detail, "budget") {
			return fmt.Errorf("%s was not refused for its budget: %+v", c.Org, c)
		}
	}

	if d.keep {
		fmt.Fprintf(d.e.stdout, "\nThe federation keeps running (--keep). Ask it yourself:\n  export %s='%s'\n  %s query --dir %s --purpose 'trying ctfed' \"SELECT COUNT(*) FROM cases GROUP BY citizenship\"\nStop it with: pkill -f '%s serve'\n",
			passphraseEnv, demoPassphrase, d.bin, hq.dir, d.bin)
	}
	return nil
}

// peerOf reads the peer ID of a join request.
func peerOf(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	req, err := federation.DecodeJoinRequest(b)
	if err != nil {
		return "", err
	}
	return req.PeerID, nil
}

// start runs "ctfed serve" for m in the background and waits until its
// control socket answers.
func (d *demo) start(ctx context.Context, m *member) error {
	fmt.Fprintf(d.e.stdout, "$ ctfed serve --dir %s &\n", m.dir)
	logf, err := os.Create(filepath.Join(d.dir, m.name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, "serve", "--dir", m.dir)
	cmd.Env, cmd.Dir = d.env, d.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	m.proc = cmd
	go func() { cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("unix", filepath.Join(m.dir, controlSocket), 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, m.name+".log"))
	return fmt.Errorf("the node of %s did not start:\n%s", m.org, b)
}

// stop ends m's node with SIGTERM and waits for it to close.
func (d *demo) stop(m *member) {
	if m.proc == nil || m.proc.Process == nil {
		return
	}
	fmt.Fprintf(d.e.stdout, "$ kill -TERM %d   # %s\n", m.proc.Process.Pid, m.org)
	m.proc.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := m.proc.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.proc.Process.Kill()
	m.proc = nil
}

func (d *demo) stopAll(ms []*member) {
	for _, m := range ms {
		if m.proc != nil {
			m.proc.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, m := range ms {
		d.stop(m)
	}
}

// fedResult is the JSON a federated query prints.
type fedResult struct {
	Cells    []node.ResultCell     `json:"cells"`
	Coverage []federation.Coverage `json:"coverage"`
	Answered int
}

func (d *demo) fedQuery(ctx context.Context, hq *member, sql, eps string) (*fedResult, error) {
	out, err := d.run(ctx, true, "query", "--dir", hq.dir, "--epsilon", eps, "--timeout", "5s", "--purpose", "demo: trafficking patterns across the federation", "--format", "json", sql)
	if err != nil {
		return nil, err
	}
	var r fedResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("the federated answer is not JSON: %v", err)
	}
	for _, c := range r.Coverage {
		if c.Status == "answered" {
			r.Answered++
		}
	}
	return &r, nil
}

func printCoverage(d *demo, r *fedResult) {
	fmt.Fprintf(d.e.stdout, "coverage: %d of %d answered\n", r.Answered, len(r.Coverage))
	writeCoverage(d.e.stdout, r.Coverage)
}

// compare runs sql across the federation and prints the released cells
// beside the exact truth, which the demo knows: it summed the members' own
// exact figures.
func (d *demo) compare(ctx context.Context, hq *member, members []*member, sql string, top int) error {
	res, err := d.fedQuery(ctx, hq, sql, "0.5")
	if err != nil {
		return err
	}
	type truth struct{ count, sum float64 }
	exact := map[string]*truth{}
	for _, m := range members {
		out, err := d.run(ctx, true, "query", "--dir", m.dir, "--exact", "--format", "json", sql)
		if err != nil {
			return err
		}
		var t struct {
			Cells []struct {
				Key   []string `json:"key"`
				Count int64    `json:"count"`
				Value string   `json:"value"`
			} `json:"cells"`
		}
		if err := json.Unmarshal([]byte(out), &t); err != nil {
			return err
		}
		for _, c := range t.Cells {
			k := strings.Join(c.Key, " · ")
			if exact[k] == nil {
				exact[k] = &truth{}
			}
			exact[k].count += float64(c.Count)
			if v, err := strconv.ParseFloat(c.Value, 64); err == nil && c.Count > 0 {
				exact[k].sum += v * float64(c.Count)
			}
		}
	}
	avg := strings.HasPrefix(sql, "SELECT AVG")
	shown := []node.ResultCell{}
	suppressed := 0
	for _, c := range res.Cells {
		if c.Value == nil {
			suppressed++
			continue
		}
		shown = append(shown, c)
	}
	sort.SliceStable(shown, func(i, j int) bool { return *shown[i].Value > *shown[j].Value })
	tw := tabwriter.NewWriter(d.e.stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cell\tfederated (private)\t95% interval\texact truth\tinside?\t")
	covered := 0
	for i, c := range shown {
		t := exact[strings.Join(c.Key, " · ")]
		want := 0.0
		if t != nil {
			want = t.count
			if avg && t.count > 0 {
				want = t.sum / t.count
			}
		}
		in := *c.Lo <= want && want <= *c.Hi
		if in {
			covered++
		}
		if i < top {
			f := "%.0f"
			if avg {
				f = "%.1f"
			}
			fmt.Fprintf(tw, "%s\t"+f+"\t"+f+" – "+f+"\t"+f+"\t%s\t\n", strings.Join(c.Key, " · "), *c.Value, *c.Lo, *c.Hi, want, map[bool]string{true: "yes", false: "no"}[in])
		}
	}
	tw.Flush()
	fmt.Fprintf(d.e.stdout, "%d cells shown (%d listed), %d suppressed; the exact truth is inside the 95%% interval for %d of %d shown cells.\n",
		len(shown), min(top, len(shown)), suppressed, covered, len(shown))
	if strings.Contains(sql, "means_of_control") || strings.Contains(sql, "exploitation_type") {
		fmt.Fprintln(d.e.stdout, "Multi-valued dimensions: to bound what one victim can reveal, each case counts in at most L0 of its codes\n"+
			"(a random subset; L0 is 3 for means of control, 2 for exploitation type), so a private count estimates the\n"+
			"bounded count and sits below the raw truth where many cases carry more codes than that.")
	}
	printCoverage(d, res)
	if res.Answered != len(members) {
		return fmt.Errorf("only %d of %d members answered", res.Answered, len(members))
	}
	return nil
}
