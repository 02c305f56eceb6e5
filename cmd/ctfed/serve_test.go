package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestControlSocket: while "ctfed serve" holds the store, the other
// subcommands reach it through the control socket; SIGTERM stops it
// cleanly.
func TestControlSocket(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "hq")
	mustCtfed(t, work, "init", "--dir", dir, "--org", "HQ", "--country", "CHE", "--authority", "--listen", "/ip4/127.0.0.1/tcp/0", "--web-listen", "127.0.0.1:0")
	mustCtfed(t, work, "admit", "--dir", dir, "--roles", "querier,contributor", filepath.Join(dir, joinRequestFile), "--out", filepath.Join(work, "bundle.json"))
	csv := filepath.Join(work, "cases.csv")
	mustCtfed(t, work, "gen", "--cases", "500", "--seed", "9", "--out", csv)

	serve := exec.Command(ctfedBin, "serve", "--dir", dir)
	serve.Env = append(os.Environ(), "CTFED_PASSPHRASE="+testPassphrase)
	var logBuf strings.Builder
	serve.Stdout, serve.Stderr = &logBuf, &logBuf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	t.Cleanup(func() {
		serve.Process.Kill()
	})
	sock := filepath.Join(dir, controlSocket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not open its control socket:\n%s", logBuf.String())
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logBuf.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode: %v %v", fi.Mode(), err)
	}
	// The store is locked by serve: these only work through the socket.
	out := mustCtfed(t, work, "import", "--dir", dir, csv)
	if !strings.Contains(out, "500 new") {
		t.Fatalf("import through the socket: %s", out)
	}
	if got := caseCount(t, work, dir); got != 500 {
		t.Fatalf("info through the socket: %d cases, want 500", got)
	}
	out = mustCtfed(t, work, "query", "--dir", dir, "--local", "SELECT COUNT(*) FROM cases GROUP BY gender")
	if !strings.Contains(out, "Charged:  ε 0.5") {
		t.Fatalf("local query through the socket: %s", out)
	}
	if out := mustCtfed(t, work, "budget", "--dir", dir); !strings.Contains(out, "HQ") {
		t.Fatalf("budget through the socket: %s", out)
	}
	_, errOut, err := ctfed(t, work, "query", "--dir", dir, "--local", "SELECT COUNT(*) FROM cases GROUP BY nonsense")
	if err == nil || !strings.Contains(errOut, "nonsense") {
		t.Fatalf("an error through the socket: %v %s", err, errOut)
	}
	if out := mustCtfed(t, work, "audit", "verify", "--dir", dir); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}

	serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, logBuf.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("control socket left behind: %v", err)
	}
	// With serve stopped, the same commands open the store themselves.
	if got := caseCount(t, work, dir); got != 500 {
		t.Fatalf("after serve: %d cases", got)
	}
}

// TestAuditVerifyDetectsTampering runs the audit verification on a node
// whose log was written by real commands; the storage tests alter entries.
func TestAuditVerifyIntact(t *testing.T) {
	work, nodeDir, csv := mustInitNode(t, 100, "default")
	mustCtfed(t, work, "import", "--dir", nodeDir, csv)
	mustCtfed(t, work, "query", "--dir", nodeDir, "--local", "SELECT COUNT(*) FROM cases")
	out := mustCtfed(t, work, "audit", "verify", "--dir", nodeDir)
	if !strings.Contains(out, "intact: 2 entries") {
		t.Fatalf("audit verify: %s", out)
	}
}

// TestDemo runs the federation demo end to end, as `make demo` does, with
// smaller caseloads: an authority and four members as separate processes,
// federated answers beside the truth, a partial answer and a refusal. The
// demo exits non-zero if any step fails.
func TestDemo(t *testing.T) {
	work := t.TempDir()
	out, errOut, err := ctfed(t, work, "demo", "--cases", "3000", "--dir", filepath.Join(work, "demo"))
	if err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"coverage: 4 of 4 answered", "coverage: 3 of 4 answered", "unreachable", "refused: budget", "The demo finished"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the demo's output lacks %q:\n%s", want, out)
		}
	}
}
