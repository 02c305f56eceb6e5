package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctfed/ctfed/bench"
	"github.com/ctfed/ctfed/bench/caseload"
	"github.com/ctfed/ctfed/storage/columnar"
)

func main() {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	n := fs.Int("n", caseload.DefaultCases, "cases")
	iters := fs.Int("iters", 30, "measured runs per engine")
	threads := fs.Int("threads", 2, "DuckDB threads (ctfed uses GOMAXPROCS)")
	seed := fs.Uint64("seed", 1, "seed of the synthetic cases")
	_ = fs.Parse(os.Args[1:])
	if err := run(context.Background(), *n, *iters, *threads, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type result struct {
	name, desc string
	perCase    bool
	times      []time.Duration
}

func run(ctx context.Context, n, iters, threads int, seed uint64) error {
	start := time.Now()
	d, err := bench.Load(ctx, n, seed, threads)
	if err != nil {
		return err
	}
	defer d.Close()
	got, err := d.Threads(ctx)
	if err != nil {
		return err
	}
	version, err := d.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("loaded %d cases into ctfed and DuckDB %s in %v; GOMAXPROCS %d, DuckDB threads %d, %d CPUs, load average %s\n",
		n, version, time.Since(start).Round(time.Millisecond), runtime.GOMAXPROCS(0), got, runtime.NumCPU(), loadAverage())
	if err := d.Verify(ctx); err != nil {
		return err
	}
	fmt.Printf("every cell agrees between ctfed and each DuckDB shape (%d shapes)\n", len(d.Shapes))
	fmt.Printf("query: %s\n", caseload.CrossTabSQL)
	fmt.Printf("each engine in turn, 3 warm rounds then %d measured; DuckDB: a prepared statement, every row read\n\n", iters)

	runtime.GC()
	res := []result{{name: "ctfed", desc: "storage/columnar Table.Aggregate, exact, no bounding"}}
	fs := []func() error{func() error {
		_, err := d.Table.Aggregate(d.Query, columnar.Options{})
		return err
	}}
	for _, s := range d.Shapes {
		res = append(res, result{name: "duckdb/" + s.Name, desc: s.Desc, perCase: s.PerCase})
		fs = append(fs, func() error { return s.Run(ctx, nil) })
	}
	times, err := bench.Interleave(3, iters, fs...)
	if err != nil {
		return err
	}
	for i := range res {
		res[i].times = times[i]
	}
	ctfed := bench.Median(res[0].times)
	var best, bestPerCase result
	for _, r := range res[1:] {
		m := bench.Median(r.times)
		if best.times == nil || m < bench.Median(best.times) {
			best = r
		}
		if r.perCase && (bestPerCase.times == nil || m < bench.Median(bestPerCase.times)) {
			bestPerCase = r
		}
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "engine\tmedian\tmin\tmax\tctfed / this\tshape\n")
	for _, r := range res {
		m := bench.Median(r.times)
		ratio := "-"
		if r.name != "ctfed" {
			ratio = fmt.Sprintf("%.2f", float64(ctfed)/float64(m))
		}
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%s\t%s\n", r.name, round(m), round(r.times[0]), round(r.times[len(r.times)-1]), ratio, r.desc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("\nratio ctfed / DuckDB's fastest shape (%s): %v / %v = %.2f (target <= 1.00, floor 2.00)\n",
		best.name, round(ctfed), round(bench.Median(best.times)), float64(ctfed)/float64(bench.Median(best.times)))
	fmt.Printf("ratio ctfed / DuckDB's fastest one-row-per-case shape (%s): %.2f\n",
		bestPerCase.name, float64(ctfed)/float64(bench.Median(bestPerCase.times)))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

// loadAverage returns the machine's 1-minute load average, or "n/a".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}
