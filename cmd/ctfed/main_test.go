package main

import (
	"bytes"
	encsv "encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctfedBin is the binary under test, built once by TestMain.
var ctfedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ctfed-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctfedBin = filepath.Join(dir, "ctfed")
	out, err := exec.Command("go", "build", "-o", ctfedBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building ctfed: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testPassphrase = "test passphrase, synthetic cases only"

// ctfed runs the binary with args in dir and returns its stdout, stderr and
// error.
func ctfed(t testing.TB, dir string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(ctfedBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CTFED_PASSPHRASE="+testPassphrase)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustCtfed is ctfed that fails the test on error.
func mustCtfed(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := ctfed(t, dir, args...)
	if err != nil {
		t.Fatalf("ctfed %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// mustInitNode creates a node with n generated cases of profile; it returns
// the working directory, the node directory and the generated file.
func mustInitNode(t testing.TB, n int, profile string) (work, nodeDir, csv string) {
	t.Helper()
	work = t.TempDir()
	nodeDir = filepath.Join(work, "node")
	csv = filepath.Join(work, "cases.csv")
	mustCtfed(t, work, "init", "--dir", nodeDir, "--org", "Test Org", "--country", "THA")
	mustCtfed(t, work, "gen", "--cases", fmt.Sprint(n), "--seed", "3", "--profile", profile, "--out", csv)
	return work, nodeDir, csv
}

// caseCount returns how many cases the node stores.
func caseCount(t testing.TB, work, nodeDir string) int {
	t.Helper()
	out := mustCtfed(t, work, "info", "--dir", nodeDir, "--format", "json")
	var r struct{ Cases int }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("info: %v\n%s", err, out)
	}
	return r.Cases
}

// fakeMarkers are the prefixes ctfed gen gives identity fields.
var fakeMarkers = []string{"Fakename ", "Fakealias ", "FAKE-P", "FAKE-I", "@example.invalid", "FAKE narrative"}

// grepTree reports the files under dir holding any of needles.
func grepTree(t testing.TB, dir string, needles []string) []string {
	t.Helper()
	var hits []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				hits = append(hits, fmt.Sprintf("%s holds %q", path, n))
			}
		}
		return nil
	})
	return hits
}

func TestInitErrors(t *testing.T) {
	work := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"NoOrg", []string{"init", "--dir", "x", "--country", "THA"}, `"org" not set`},
		{"BadCountry", []string{"init", "--dir", "x", "--org", "A", "--country", "XXX"}, "not an ISO 3166-1 alpha-3 code"},
		{"ShortCountry", []string{"init", "--dir", "x", "--org", "A", "--country", "TH"}, "--country"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, err := ctfed(t, work, tt.args...)
			if err == nil || !strings.Contains(errOut, tt.want) {
				t.Fatalf("got %v %q, want an error containing %q", err, errOut, tt.want)
			}
		})
	}
	t.Run("NoPassphrase", func(t *testing.T) {
		cmd := exec.Command(ctfedBin, "init", "--dir", filepath.Join(work, "np"), "--org", "A", "--country", "THA")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no passphrase") {
			t.Fatalf("got %v %s, want a refusal asking for a passphrase", err, out)
		}
		if _, err := os.Stat(filepath.Join(work, "np")); err == nil {
			t.Fatalf("init without a passphrase created the directory")
		}
	})
	t.Run("Twice", func(t *testing.T) {
		dir := filepath.Join(work, "twice")
		mustCtfed(t, work, "init", "--dir", dir, "--org", "A", "--country", "THA")
		_, errOut, err := ctfed(t, work, "init", "--dir", dir, "--org", "A", "--country", "THA")
		if err == nil || !strings.Contains(errOut, "already holds a ctfed node") {
			t.Fatalf("got %v %q, want a refusal", err, errOut)
		}
	})
}

func TestWrongPassphrase(t *testing.T) {
	work, nodeDir, _ := mustInitNode(t, 10, "default")
	cmd := exec.Command(ctfedBin, "budget", "--dir", nodeDir)
	cmd.Env = append(os.Environ(), "CTFED_PASSPHRASE=not the passphrase")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "wrong passphrase") {
		t.Fatalf("got %v %s, want wrong passphrase", err, out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("got exit code %d, want 3", code)
	}
}

// TestEncryptionAtRest: after importing generated cases no fake name, alias
// or document number is in plain text in any file of the node directory, a
// backup, or an export without --include-identity; erase removes a case's
// identity from every version.
func TestEncryptionAtRest(t *testing.T) {
	work, nodeDir, csv := mustInitNode(t, 2000, "ee-gov")
	if hits := grepTree(t, filepath.Dir(csv), fakeMarkers); len(hits) == 0 {
		t.Fatal("the generated file holds no fake identity: the test would prove nothing")
	}
	mustCtfed(t, work, "import", "--dir", nodeDir, csv)
	if hits := grepTree(t, nodeDir, fakeMarkers); len(hits) > 0 {
		t.Fatalf("identity in plain text in the node directory:\n%s", strings.Join(hits, "\n"))
	}
	backup := filepath.Join(work, "node.backup")
	mustCtfed(t, work, "backup", "--dir", nodeDir, "--out", backup)
	export := filepath.Join(work, "export.csv")
	mustCtfed(t, work, "export", "--dir", nodeDir, "--out", export)
	ctdc := filepath.Join(work, "ctdc.csv")
	mustCtfed(t, work, "export", "--dir", nodeDir, "--format", "ctdc", "--out", ctdc)
	for _, f := range []string{backup, export, ctdc} {
		b, _ := os.ReadFile(f)
		for _, m := range fakeMarkers {
			if bytes.Contains(b, []byte(m)) {
				t.Fatalf("%s holds %q", filepath.Base(f), m)
			}
		}
	}
	withID := filepath.Join(work, "with-identity.csv")
	mustCtfed(t, work, "export", "--dir", nodeDir, "--include-identity", "--out", withID)
	if b, _ := os.ReadFile(withID); !bytes.Contains(b, []byte("Fakename ")) {
		t.Fatal("--include-identity exported no identity")
	}

	// A restored backup answers the same.
	restored := filepath.Join(work, "restored")
	mustCtfed(t, work, "restore", "--dir", restored, backup)
	if got, want := caseCount(t, work, restored), 2000; got != want {
		t.Fatalf("restored node holds %d cases, want %d", got, want)
	}

	// Erase one case's identity: gone from its export row.
	b, _ := os.ReadFile(withID)
	code := strings.SplitN(strings.SplitN(string(b), "\n", 3)[1], ",", 2)[0]
	mustCtfed(t, work, "erase", "--dir", nodeDir, code)
	after := filepath.Join(work, "after-erase.csv")
	mustCtfed(t, work, "export", "--dir", nodeDir, "--include-identity", "--out", after)
	b, _ = os.ReadFile(after)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, code+",") && strings.Contains(line, "Fake") {
			t.Fatalf("case %s still has identity after erase: %s", code, line)
		}
	}
	if got := caseCount(t, work, nodeDir); got != 2000 {
		t.Fatalf("erase changed the case count to %d", got)
	}
}

// TestCrashDuringImport kills imports with SIGKILL at random moments: each
// time the store opens, holds only whole batches, and importing the file
// again completes it without duplicates.
func TestCrashDuringImport(t *testing.T) {
	const n, batch = 20000, 500
	work, probeDir, csv := mustInitNode(t, n, "wa-ngo")
	// How long a whole import takes, to spread the kills over it.
	start := time.Now()
	mustCtfed(t, work, "import", "--dir", probeDir, "--batch", fmt.Sprint(batch), csv)
	full := time.Since(start)

	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for i := 0; i < 12; i++ {
		dir := filepath.Join(work, fmt.Sprintf("node-%d", i))
		mustCtfed(t, work, "init", "--dir", dir, "--org", "Test Org", "--country", "NGA")
		cmd := exec.Command(ctfedBin, "import", "--dir", dir, "--batch", fmt.Sprint(batch), csv)
		cmd.Env = append(os.Environ(), "CTFED_PASSPHRASE="+testPassphrase)
		cmd.Dir = work
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait := full/10 + time.Duration(rng.Int64N(int64(full*8/10)))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
		got := caseCount(t, work, dir)
		if got != n && got%batch != 0 {
			t.Fatalf("after kill %d the store holds %d cases: not whole batches of %d", i, got, batch)
		}
		out := mustCtfed(t, work, "import", "--dir", dir, "--batch", fmt.Sprint(batch), csv)
		if got := caseCount(t, work, dir); got != n {
			t.Fatalf("after kill %d and a re-import the store holds %d cases, want %d\n%s", i, got, n, out)
		}
		if i == 0 {
			out = mustCtfed(t, work, "import", "--dir", dir, csv)
			if !strings.Contains(out, fmt.Sprintf("0 new, 0 updated, %d unchanged", n)) {
				t.Fatalf("a further import changed something: %s", out)
			}
		}
	}
	if kills < 10 {
		t.Fatalf("only %d of 12 imports were killed mid-way (a whole import takes %s)", kills, full)
	}
}

func TestImportErrorsWriteNothing(t *testing.T) {
	work, nodeDir, csv := mustInitNode(t, 50, "default")
	f, _ := os.Open(csv)
	rows, err := encsv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "citizenship" {
			col = i
		}
	}
	if col < 0 {
		t.Fatal("no citizenship column")
	}
	rows[3][col] = "XXX" // a bad country code on line 4
	var buf bytes.Buffer
	w := encsv.NewWriter(&buf)
	w.WriteAll(rows)
	bad := filepath.Join(work, "bad.csv")
	os.WriteFile(bad, buf.Bytes(), 0o600)
	out, errOut, err := ctfed(t, work, "import", "--dir", nodeDir, bad)
	if err == nil || !strings.Contains(errOut, "line 4") || !strings.Contains(errOut, "citizenship") || !strings.Contains(errOut, "XXX") {
		t.Fatalf("got %v\n%s%s, want the bad row named by line, column and value", err, out, errOut)
	}
	if got := caseCount(t, work, nodeDir); got != 0 {
		t.Fatalf("a failed import wrote %d cases", got)
	}
	out = mustCtfed(t, work, "import", "--dir", nodeDir, "--skip-invalid", "--rejects", filepath.Join(work, "rejects.csv"), bad)
	if got := caseCount(t, work, nodeDir); got != 49 {
		t.Fatalf("--skip-invalid imported %d cases, want 49\n%s", got, out)
	}
	rej, _ := os.ReadFile(filepath.Join(work, "rejects.csv"))
	if !strings.Contains(string(rej), "4,citizenship,XXX") {
		t.Fatalf("rejects file: %s", rej)
	}
}

func TestLocalQueryAndBudget(t *testing.T) {
	work, nodeDir, csv := mustInitNode(t, 3000, "sea-ngo")
	mustCtfed(t, work, "import", "--dir", nodeDir, csv)
	out := mustCtfed(t, work, "query", "--dir", nodeDir, "--local", "--dry-run", "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	if !strings.Contains(out, "would charge ε 0.5") || !strings.Contains(out, "year 2020") {
		t.Fatalf("dry run: %s", out)
	}
	if out := mustCtfed(t, work, "budget", "--dir", nodeDir); !strings.Contains(out, "No privacy budget has been spent") {
		t.Fatalf("a dry run charged: %s", out)
	}
	out = mustCtfed(t, work, "query", "--dir", nodeDir, "--local", "--format", "json", "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	var r released
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(r.Cells) != 4 || r.Charged.Epsilon != 500000 || len(r.Years) != 1 || r.Years[0] != 2020 {
		t.Fatalf("got %+v", r)
	}
	for _, c := range r.Cells {
		if c.Mechanism != "laplace" || c.Scale <= 0 || c.L0 != 1 || c.LInf != 1 {
			t.Fatalf("cell %v lacks its noise description: %+v", c.Key, c)
		}
		if (c.Value == nil) == (c.Suppressed == "") {
			t.Fatalf("cell %v: value %v and suppression %q disagree", c.Key, c.Value, c.Suppressed)
		}
	}
	// The same question again in the same epoch is free.
	out = mustCtfed(t, work, "query", "--dir", nodeDir, "--local", "--format", "json", "SELECT COUNT(*) FROM cases WHERE registration_year = 2020 GROUP BY gender")
	var again released
	json.Unmarshal([]byte(out), &again)
	if !again.Cached || again.Charged.Epsilon != 0 {
		t.Fatalf("repeat was charged: %+v", again)
	}
	out = mustCtfed(t, work, "budget", "--dir", nodeDir)
	if !strings.Contains(out, "Test Org") || !strings.Contains(out, "2020") || !strings.Contains(out, "3.5") {
		t.Fatalf("budget: %s", out)
	}
	_, errOut, err := ctfed(t, work, "query", "--dir", nodeDir, "--local", "--epsilon", "2", "SELECT COUNT(*) FROM cases")
	if err == nil || !strings.Contains(errOut, "per-query ε cap") {
		t.Fatalf("got %v %s, want the per-query cap named", err, errOut)
	}
	_, errOut, err = ctfed(t, work, "query", "--dir", nodeDir, "--local", "SELECT COUNT(*) FROM cases GROUP BY full_name")
	if err == nil || !strings.Contains(errOut, "identity field") {
		t.Fatalf("got %v %s, want an identity field refused", err, errOut)
	}
}
