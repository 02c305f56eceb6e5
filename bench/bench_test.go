package bench_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ctfed/ctfed/bench"
	"github.com/ctfed/ctfed/bench/caseload"
	"github.com/ctfed/ctfed/storage/columnar"
)

// The 1M-case data, loaded once per process for every benchmark.
var data1M struct {
	once sync.Once
	d    *bench.Data
	err  error
}

func load1M(b *testing.B) *bench.Data {
	b.Helper()
	data1M.once.Do(func() {
		d, err := bench.Load(context.Background(), caseload.DefaultCases, 1, 2)
		if err == nil {
			err = d.Verify(context.Background())
		}
		data1M.d, data1M.err = d, err
	})
	if data1M.err != nil {
		b.Fatal(data1M.err)
	}
	return data1M.d
}

// BenchmarkCrossTabCtfed is the exact cross-tab of citizenship ×
// exploitation type with a year range over 1 000 000 synthetic cases in
// ctfed's columnar projection (no contribution bounding).
func BenchmarkCrossTabCtfed(b *testing.B) {
	d := load1M(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Table.Aggregate(d.Query, columnar.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(d.N)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
}

// BenchmarkCrossTabDuckDB is the same cross-tab in DuckDB (threads=2, a
// warm prepared statement, every row of the answer read), one sub-benchmark
// per data shape (see bench.Data.Shapes).
func BenchmarkCrossTabDuckDB(b *testing.B) {
	d := load1M(b)
	ctx := context.Background()
	for _, s := range d.Shapes {
		b.Run(s.Name, func(b *testing.B) {
			if err := s.Run(ctx, nil); err != nil { // warm
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Run(ctx, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(d.N)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
		})
	}
}
