package storage

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

// BenchmarkPutCases imports 100 000 cases in batches of MaxBatch into a new
// store with the production settings (synced commits, default memtables)
// and reports cases/s. Cases are built outside the timer, one batch at a
// time. "WithIdentity" cases carry fake identity fields (sealed per case);
// "CTDC" cases carry none, like rows of a CTDC file.
func BenchmarkPutCases(b *testing.B) {
	for _, bb := range []struct {
		name     string
		identity bool
	}{{"WithIdentity", true}, {"CTDC", false}} {
		b.Run(bb.name, func(b *testing.B) {
			const total = 100_000
			ctx := context.Background()
			var elapsedCases int
			var cpu time.Duration
			for range b.N {
				b.StopTimer()
				dir, err := os.MkdirTemp("", "ctfed-bench")
				if err != nil {
					b.Fatal(err)
				}
				kr, _, err := CreateKeyring(dir, testPassphrase, false)
				if err != nil {
					b.Fatal(err)
				}
				db := NewDB(dir, kr)
				if err := db.Open(ctx); err != nil {
					b.Fatal(err)
				}
				for from := 0; from < total; from += MaxBatch {
					b.StopTimer()
					cases := testCases(from, from+MaxBatch)
					if !bb.identity {
						for _, c := range cases {
							c.Identity = node.Identity{}
						}
					}
					b.StartTimer()
					before := cpuTime()
					res, err := db.PutCases(ctx, cases, node.CreateOnly, "bench")
					cpu += cpuTime() - before
					if err != nil {
						b.Fatal(err)
					}
					if res.Created != MaxBatch {
						b.Fatalf("got %+v, want %d created", res, MaxBatch)
					}
				}
				b.StopTimer()
				elapsedCases += total
				if err := db.Close(ctx); err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(dir)
			}
			b.ReportMetric(float64(elapsedCases)/b.Elapsed().Seconds(), "cases/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(elapsedCases), "cpu-µs/case")
			var ru syscall.Rusage
			if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
				b.ReportMetric(float64(ru.Maxrss)/1024, "MB-peak-rss")
			}
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system. It
// counts every goroutine, badger's included; background compaction running
// during a call is counted too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForEachCase reads 100 000 stored cases without identity, as the
// projection rebuild at Open does, and with identity, as an export does.
func BenchmarkForEachCase(b *testing.B) {
	const total = 100_000
	ctx := context.Background()
	db := MustOpenDB(b)
	for from := 0; from < total; from += 1000 {
		if _, err := db.PutCases(ctx, testCases(from, from+1000), node.CreateOnly, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	for _, withIdentity := range []bool{false, true} {
		name := "NoIdentity"
		if withIdentity {
			name = "WithIdentity"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				n := 0
				err := db.ForEachCase(ctx, withIdentity, func(*node.Case) error { n++; return nil })
				if err != nil || n != total {
					b.Fatalf("got %d cases, %v; want %d", n, err, total)
				}
			}
			b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "cases/s")
		})
	}
}
