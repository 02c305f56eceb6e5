package columnar_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage/columnar"
)

const benchCases = 1_000_000

// The 1M-case table, built once per process.
var bench1M struct {
	once sync.Once
	tab  *columnar.Table
}

func benchCode(i int) string { return fmt.Sprintf("BENCH-%07d", i) }

func table1M(b *testing.B) *columnar.Table {
	b.Helper()
	bench1M.once.Do(func() {
		t := columnar.New(node.DefaultCodebook())
		t.Grow(benchCases, len(benchCode(0)))
		g := newGen(42)
		c := &node.Case{}
		for i := range benchCases {
			g.fill(c, benchCode(i))
			t.Upsert(c)
		}
		bench1M.tab = t
	})
	return bench1M.tab
}

// crossTabSQL is the query of the DuckDB comparison: a 2-dimension
// cross-tab with a year range.
const crossTabSQL = "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2015 AND 2020 GROUP BY citizenship, exploitation_type"

func benchAggregate(b *testing.B, opt columnar.Options) {
	tab := table1M(b)
	q, err := node.ParseSQL(node.DefaultCodebook(), crossTabSQL)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := tab.Aggregate(q, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(benchCases)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
}

// BenchmarkCrossTab1M is the exact cross-tab of citizenship × exploitation
// type over 1 000 000 cases with a year range (DuckDB: about 12 ms).
func BenchmarkCrossTab1M(b *testing.B) { benchAggregate(b, columnar.Options{}) }

// BenchmarkCrossTab1MBounded is the same with contribution bounding.
func BenchmarkCrossTab1MBounded(b *testing.B) { benchAggregate(b, columnar.Options{Bound: true}) }

// BenchmarkBuild1M upserts 1 000 000 cases into an empty table and reports
// the table's memory per case.
func BenchmarkBuild1M(b *testing.B) {
	b.Run("Append", func(b *testing.B) { benchBuild(b, false) })
	b.Run("Grow", func(b *testing.B) { benchBuild(b, true) })
}

func benchBuild(b *testing.B, grow bool) {
	const pool = 1 << 10 // small enough to stay in cache, as a freshly decoded case is
	g := newGen(43)
	cases := make([]node.Case, pool)
	for i := range cases {
		g.fill(&cases[i], "")
	}
	codes := make([]string, benchCases)
	for i := range codes {
		codes[i] = benchCode(i)
	}
	var tab *columnar.Table
	var heap uint64
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tab = nil
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := cpuTime()
		tab = columnar.New(node.DefaultCodebook())
		if grow {
			tab.Grow(len(codes), len(codes[0]))
		}
		for i, code := range codes {
			c := &cases[i%pool]
			c.Code = code
			tab.Upsert(c)
		}
		cpu += cpuTime() - start
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchCases)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchCases), "cpu-ns/case")
	b.ReportMetric(float64(tab.Bytes())/float64(tab.Len()), "bytes/case")
	b.ReportMetric(float64(heap)/float64(tab.Len()), "heap-bytes/case")
	runtime.KeepAlive(tab)
}

// BenchmarkSmallTable measures the fixed cost of one query: 1 000 cases.
func BenchmarkSmallTable(b *testing.B) {
	tab := columnar.New(node.DefaultCodebook())
	g := newGen(44)
	c := &node.Case{}
	for i := range 1000 {
		g.fill(c, benchCode(i))
		tab.Upsert(c)
	}
	q, err := node.ParseSQL(node.DefaultCodebook(), crossTabSQL)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tab.Aggregate(q, columnar.Options{Bound: true}); err != nil {
			b.Fatal(err)
		}
	}
}
