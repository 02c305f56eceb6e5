package federation

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

func BenchmarkFederatedQuery20(b *testing.B)  { benchmarkFederatedQuery(b, 20) }
func BenchmarkFederatedQuery100(b *testing.B) { benchmarkFederatedQuery(b, 100) }

// benchmarkFederatedQuery measures one federated query (count by gender ×
// exploitation type) across n contributors on loopback, real libp2p over
// TCP, connections already open, each node answering with the fake
// answerer. It runs at least minSamples queries whatever b.N, and reports
// the median and 99th percentile latency and the process's peak resident
// memory.
func benchmarkFederatedQuery(b *testing.B, n int) {
	const minSamples = 50
	f := newTestFed(b)
	hqID := mustIdentity(b)
	f.admit(b, hqID, "HQ", "CHE", node.RoleQuerier)
	ids := make([]*Identity, n)
	for i := range ids {
		ids[i] = mustIdentity(b)
		f.admit(b, ids[i], "Org "+strconv.Itoa(i), "THA", node.RoleContributor)
	}
	hq := mustOpenNode(b, f, hqID, nil)
	nodes := make([]*Node, n)
	for i, id := range ids {
		nodes[i] = mustOpenNode(b, f, id, func(nd *Node) { nd.Answerer = &fakeAnswerer{mode: modeAnswer} })
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hq.Connect(context.Background(), nd.Addrs()[0]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	c := NewCoordinator(hq)
	req := &node.QueryRequest{Query: testQuery(b), Epsilon: 0.5, Purpose: "benchmark"}
	ask := func() time.Duration {
		start := time.Now()
		r := *req
		res, err := c.Query(context.Background(), &r, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if res.Answered != n {
			b.Fatalf("got %d answers, want %d", res.Answered, n)
		}
		return time.Since(start)
	}
	for range 3 {
		ask() // warm up: the streams' protocol negotiation, the combiner's tables
	}
	samples := max(b.N, minSamples)
	lat := make([]time.Duration, 0, samples)
	b.ResetTimer()
	for range samples {
		lat = append(lat, ask())
	}
	b.StopTimer()
	if os.Getenv("CTFED_BENCH_DUMP") != "" {
		b.Log(lat)
	}
	slices.Sort(lat)
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(len(lat)), "ns/op")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// peakRSS returns the process's peak resident memory in bytes, or 0 where
// /proc does not tell.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
