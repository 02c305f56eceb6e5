package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/ctfed/ctfed/bench/caseload"
	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage"
)

func main() {
	fs := flag.NewFlagSet("rss", flag.ExitOnError)
	n := fs.Int("n", caseload.DefaultCases, "cases to load")
	dir := fs.String("dir", "", "node directory (default: a new temporary one, removed at the end)")
	keep := fs.Bool("keep", false, "keep the node directory")
	reopen := fs.Bool("reopen-only", false, "only open -dir, query it and report (the child run)")
	seed := fs.Uint64("seed", 1, "seed of the synthetic cases")
	memprofile := fs.String("memprofile", "", "with -reopen-only: write a heap profile of the open node to this file")
	_ = fs.Parse(os.Args[1:])
	ctx := context.Background()
	var err error
	if *reopen {
		err = openAndReport(ctx, *dir, "child (open + query only)", *memprofile)
	} else {
		err = run(ctx, *n, *seed, *dir, *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, seed uint64, dir string, keep bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "ctfed-rss")
		if err != nil {
			return err
		}
		dir = d
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	fmt.Printf("node directory %s, %d cases\n", dir, n)
	if err := load(ctx, dir, n, seed); err != nil {
		return err
	}
	report("after load (this process)")
	if err := openAndReport(ctx, dir, "reopen in the loading process", ""); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-reopen-only", "-dir", dir)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// load fills a new node in dir with n synthetic cases.
func load(ctx context.Context, dir string, n int, seed uint64) error {
	kr, _, err := storage.CreateKeyring(dir, nil, true)
	if err != nil {
		return err
	}
	db := storage.NewDB(dir, kr)
	db.SyncWrites = false
	if err := db.Open(ctx); err != nil {
		return err
	}
	cases, err := caseload.Cases(n, seed)
	if err != nil {
		return err
	}
	start := time.Now()
	batch := make([]*node.Case, 0, storage.MaxBatch)
	put := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := db.PutCases(ctx, batch, node.CreateOnly, "bench")
		batch = batch[:0]
		return err
	}
	for c := range cases {
		batch = append(batch, c)
		if len(batch) == storage.MaxBatch {
			if err = put(); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = put()
	}
	if err != nil {
		db.Close(ctx)
		return fmt.Errorf("load: %w", err)
	}
	elapsed := time.Since(start)
	if got, err := db.CaseCount(ctx); err != nil || got != n {
		db.Close(ctx)
		return fmt.Errorf("the store holds %d cases (%v), want %d", got, err, n)
	}
	if err := db.Close(ctx); err != nil {
		return err
	}
	fmt.Printf("load: %d cases through PutCases (batches of %d, unsynced, generation included) in %v: %.0f cases/s\n",
		n, storage.MaxBatch, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	return nil
}

// openAndReport opens the node in dir (rebuilding its projection), runs
// the cross-tab and reports the open time, the query time and the memory,
// and writes a heap profile to memprofile if it is not empty.
func openAndReport(ctx context.Context, dir, what, memprofile string) error {
	kr, err := storage.OpenKeyring(dir, nil)
	if err != nil {
		return err
	}
	db := storage.NewDB(dir, kr)
	start := time.Now()
	if err := db.Open(ctx); err != nil {
		return err
	}
	defer db.Close(ctx)
	open := time.Since(start)
	q, err := caseload.CrossTabQuery()
	if err != nil {
		return err
	}
	var times []time.Duration
	for range 5 {
		t := time.Now()
		if _, err := db.Aggregate(q, node.AggregateOptions{}); err != nil {
			return err
		}
		times = append(times, time.Since(t))
	}
	slices.Sort(times)
	n, err := db.CaseCount(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%s: open (projection rebuilt) %v for %d cases, %.0f cases/s; cross-tab median of 5 %v; projection %.1f MiB\n",
		what, open.Round(time.Millisecond), n, float64(n)/open.Seconds(), times[len(times)/2].Round(10*time.Microsecond),
		float64(db.ProjectionBytes())/(1<<20))
	report(what)
	if memprofile != "" {
		f, err := os.Create(memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.WriteHeapProfile(f)
	}
	return nil
}

// report prints the process's resident memory after a GC (VmHWM is the
// peak; RssAnon is memory the process owns, RssFile the pages of the store's
// files it has mapped and read, which the kernel may drop), then again after
// the Go runtime returned its free memory to the system.
func report(what string) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStatus("VmHWM", "VmRSS", "RssAnon", "RssFile")
	fmt.Printf("%s: peak RSS %s, RSS after GC %s (anonymous %s, file-backed %s; Go heap in use %.0f MiB, Go total from the OS %.0f MiB)\n",
		what, st["VmHWM"], st["VmRSS"], st["RssAnon"], st["RssFile"], float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	debug.FreeOSMemory()
	st = procStatus("VmRSS", "RssAnon", "RssFile")
	fmt.Printf("%s: RSS after returning free memory to the OS %s (anonymous %s, file-backed %s)\n",
		what, st["VmRSS"], st["RssAnon"], st["RssFile"])
}

// procStatus reads the given fields of /proc/self/status, in MiB.
func procStatus(keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		out[k] = "n/a"
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
			out[k] = fmt.Sprintf("%.0f MiB", float64(kb)/1024)
		}
	}
	return out
}
