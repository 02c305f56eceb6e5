package federation_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage"
)

// BenchmarkFederatedRealNodes20 is DESIGN.md's federated latency target
// (median under 50 ms) over 20 real contributors.
func BenchmarkFederatedRealNodes20(b *testing.B) { benchmarkRealNodes(b, 20, 50) }

// BenchmarkFederatedRealNodes100 is the same target across 100 real
// contributors (median under 1 s).
func BenchmarkFederatedRealNodes100(b *testing.B) { benchmarkRealNodes(b, 100, 30) }

// realNodeCases is the number of synthetic cases each contributor holds.
const realNodeCases = 10000

// realNodeStore gives each of the benchmark's many stores badger's smallest
// sane settings: one 8 MiB memtable (a transaction may use 15% of it, which
// the e2e loader's batches fit), 1 MiB value-log files (badger's least) and
// 256 KiB caches. A node holding 10 000 cases answers from its in-memory
// projection; badger only takes the ledger's charges and the replies kept.
func realNodeStore(db *storage.DB) {
	db.MemTableSize = 8 << 20
	db.NumMemtables = 1
	db.ValueLogFileSize = 1 << 20
	db.BlockCacheSize = 256 << 10
	db.IndexCacheSize = 256 << 10
}

// benchmarkRealNodes measures the whole federated answer path end to end:
// n contributors in this process, each a real storage.DB holding
// realNodeCases synthetic cases (the five synth profiles in turn) behind a
// real node.QueryService, its libp2p host on 127.0.0.1, and one querier
// asking count by gender × exploitation type through the Coordinator with
// every connection already open. Each query moves every node's clock one
// answer-cache epoch on, so that no node answers from its cache: every
// sample charges the ledger, aggregates, draws the noise, keeps the reply,
// audits, signs and sends it, and the querier checks and combines n tables.
//
// It measures twice, at least minSamples queries each whatever b.N: first
// with the stores as loaded, writing without fsync (nosync-p50-ms,
// nosync-p99-ms: the network and the answer path without the disk), then
// with every store reopened with SyncWrites, as ctfed runs a node, each
// answer's four commits (charge, cached answer, kept reply, audit entry)
// synced before it leaves (p50-ms, p99-ms, ns/op). Here all n nodes share
// one disk, where a federation's members each have their own. It reports
// the process's peak resident memory, building the nodes included.
func benchmarkRealNodes(b *testing.B, n, minSamples int) {
	const eps = 0.5
	start := time.Now()
	profiles := []string{"default", "sea-ngo", "ee-gov", "gulf-mission", "wa-ngo"}
	countries := []string{"CHE", "THA", "ROU", "ETH", "NGA"}
	specs := make([]e2eSpec, n)
	for i := range specs {
		specs[i] = e2eSpec{
			org:     fmt.Sprintf("Org %03d", i),
			country: countries[i%len(countries)],
			profile: profiles[i%len(profiles)],
			cases:   realNodeCases,
			seed:    uint64(1000 + i),
			store:   realNodeStore,
		}
	}
	f := newE2EFed(b, specs)
	var epochs atomic.Int64
	for _, m := range f.members {
		epoch := m.svc.Policy.Epoch
		m.svc.Now = func() time.Time { return time.Now().Add(time.Duration(epochs.Load()) * epoch) }
	}
	built := time.Since(start)

	// Open every connection before timing, as a running federation has them.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, m := range f.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.querier.Connect(context.Background(), m.n.Addrs()[0]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	q, err := node.ParseSQL(node.DefaultCodebook(), "SELECT COUNT(*) FROM cases GROUP BY gender, exploitation_type")
	if err != nil {
		b.Fatal(err)
	}
	ask := func() time.Duration {
		epochs.Add(1)
		t0 := time.Now()
		res, err := f.coord.Query(context.Background(), &node.QueryRequest{Query: q, Epsilon: eps, Purpose: "benchmark"}, e2eTimeout)
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if res.Answered != n {
			b.Fatalf("got %d answers, want %d", res.Answered, n)
		}
		for _, c := range res.Coverage {
			if c.ChargedEpsilon != eps {
				b.Fatalf("%s: got charged ε %v, want %v (an answer from the cache?)", c.Org, c.ChargedEpsilon, eps)
			}
		}
		return d
	}
	samples := max(b.N, minSamples)
	measure := func() []time.Duration {
		lat := make([]time.Duration, 0, samples)
		for range samples {
			lat = append(lat, ask())
		}
		slices.Sort(lat)
		return lat
	}
	for range 2 {
		ask() // warm up: the streams' protocol negotiation, the combiner's tables for n nodes
	}
	runtime.GC() // the loading's garbage is not the queries'
	b.Logf("%d nodes × %d cases built in %v; %s", n, realNodeCases, built.Round(time.Millisecond), memoryLine())

	b.ResetTimer()
	b.StopTimer()
	nosync := measure()
	b.Logf("without fsync, %d queries: median %v, min %v, max %v", len(nosync), nosync[len(nosync)/2], nosync[0], nosync[len(nosync)-1])

	reopened := time.Now()
	for _, m := range f.members {
		if err := m.db.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		m.db.SyncWrites = true
		if err := m.db.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("stores reopened with SyncWrites in %v", time.Since(reopened).Round(time.Millisecond))
	ask()
	runtime.GC()
	b.StartTimer()
	synced := measure()
	b.StopTimer()
	var total time.Duration
	for _, d := range synced {
		total += d
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(len(synced)), "ns/op")
	b.ReportMetric(millis(percentile(synced, 50)), "p50-ms")
	b.ReportMetric(millis(percentile(synced, 99)), "p99-ms")
	b.ReportMetric(millis(percentile(nosync, 50)), "nosync-p50-ms")
	b.ReportMetric(millis(percentile(nosync, 99)), "nosync-p99-ms")
	if hwm := procStatusMiB("VmHWM"); hwm > 0 {
		b.ReportMetric(hwm, "peak-rss-MiB")
	}
	runtime.GC()
	b.Logf("synced, %d queries: median %v, min %v, max %v; after GC %s", len(synced), synced[len(synced)/2], synced[0], synced[len(synced)-1], memoryLine())
}

// percentile returns the p-th percentile of the sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// memoryLine says where the process's resident memory is: anonymous
// (mostly the Go heap) and file-backed (badger's mapped files), and the
// Go heap in use.
func memoryLine() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("RSS %.0f MiB (anonymous %.0f, file-backed %.0f), Go heap in use %.0f MiB",
		procStatusMiB("VmRSS"), procStatusMiB("RssAnon"), procStatusMiB("RssFile"), float64(ms.HeapInuse)/(1<<20))
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// procStatusMiB returns the field of /proc/self/status (a size in kB) in
// MiB, or 0 where /proc does not tell.
func procStatusMiB(field string) float64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return float64(kb) / 1024
		}
	}
	return 0
}
