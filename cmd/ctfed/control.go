package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// The control socket: while "ctfed serve" runs, badger's lock keeps other
// processes out of the store, so the other subcommands send their command
// line over a unix socket in the node directory (mode 0600: only the
// node's own operating-system user can connect) and the serving process
// runs it on the node it has open, then sends back what it printed.
const controlSocket = "control.sock"

// controlRequest is one command line sent to a running node.
type controlRequest struct {
	Args []string `json:"args"`
	Cwd  string   `json:"cwd"`
}

// controlReply is what the command printed, and its exit code.
type controlReply struct {
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	Code   int    `json:"code"`
}

// forwarded lists the subcommands that reach a running node through its
// control socket instead of opening the store.
var forwarded = map[string]bool{
	"import": true, "export": true, "erase": true, "query": true, "budget": true, "info": true,
	"backup": true, "approvals": true, "audit": true, "admit": true, "revoke": true, "join": true, "user": true,
}

// dirArg returns the value of --dir in args.
func dirArg(args []string) string {
	for i, a := range args {
		switch {
		case a == "--dir" && i+1 < len(args):
			return args[i+1]
		case len(a) > 6 && a[:6] == "--dir=":
			return a[6:]
		}
	}
	return ""
}

// tryForward runs args on the node serving dir, if one is: it reports
// whether it did, with the command's exit code.
func tryForward(args []string, stdout, stderr io.Writer) (bool, int) {
	if len(args) == 0 || !forwarded[args[0]] {
		return false, 0
	}
	dir := dirArg(args)
	if dir == "" {
		return false, 0
	}
	conn, err := net.DialTimeout("unix", filepath.Join(dir, controlSocket), time.Second)
	if err != nil {
		return false, 0
	}
	defer conn.Close()
	cwd, _ := os.Getwd()
	if err := json.NewEncoder(conn).Encode(controlRequest{Args: args, Cwd: cwd}); err != nil {
		fmt.Fprintf(stderr, "ctfed: the running node did not take the command: %v\n", err)
		return true, 1
	}
	var r controlReply
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		fmt.Fprintf(stderr, "ctfed: no reply from the running node: %v\n", err)
		return true, 1
	}
	stdout.Write(r.Stdout)
	stderr.Write(r.Stderr)
	return true, r.Code
}

// controlServer runs forwarded command lines on an open node.
type controlServer struct {
	dir    string
	shared *nodeDir
	logger *zap.Logger
	base   *env

	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex // one command at a time, as from one terminal
}

// open listens on DIR/control.sock, replacing a stale socket left by a
// process that died.
func (s *controlServer) open() error {
	path := filepath.Join(s.dir, controlSocket)
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return node.E("serve", node.Unavailable, "another ctfed serve is running on %s", s.dir)
	}
	os.Remove(path)
	old := syscallUmask(0o077)
	ln, err := net.Listen("unix", path)
	syscallUmask(old)
	if err != nil {
		return node.E("serve", node.Internal, "control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return node.E("serve", node.Internal, "control socket: %w", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	return nil
}

func (s *controlServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.serve(conn)
		}()
	}
}

func (s *controlServer) serve(conn net.Conn) {
	var req controlRequest
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&req); err != nil || len(req.Args) == 0 || !forwarded[req.Args[0]] {
		json.NewEncoder(conn).Encode(controlReply{Stderr: []byte("ctfed: not a command a running node takes\n"), Code: 2})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: bytes.NewReader(nil), stdout: &stdout, stderr: &stderr, shared: s.shared, cwd: req.Cwd,
		logFormat: s.base.logFormat, logLevel: s.base.logLevel}
	root := newRoot(e)
	root.SetArgs(req.Args)
	code := 0
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(&stderr, "ctfed:", userMessage(err))
		code = exitCode(err)
	}
	s.logger.Info("control command", zap.String("command", req.Args[0]), zap.Int("exit", code))
	json.NewEncoder(conn).Encode(controlReply{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Code: code})
}

// close stops accepting, waits for running commands and removes the socket.
func (s *controlServer) close() error {
	if s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	s.wg.Wait()
	os.Remove(filepath.Join(s.dir, controlSocket))
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
