package casefile_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/casefile"
	"github.com/ctfed/ctfed/node/synth"
)

const benchCases = 20000

func genCSV(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	if err := synth.WriteCSV(&buf, benchCases, 1, "default"); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkReadCSV measures reading, normalising and validating generated
// cases in ctfed's shape.
func BenchmarkReadCSV(b *testing.B) {
	data := genCSV(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := casefile.Scan(bytes.NewReader(data), "bench.csv", casefile.ReadOptions{}, func(int, *node.Case) error { return nil })
		if err != nil || res.Valid != benchCases {
			b.Fatalf("got %v valid, %v", res.Valid, err)
		}
	}
	b.ReportMetric(float64(benchCases*b.N)/b.Elapsed().Seconds(), "cases/s")
}

// BenchmarkReadCTDC measures reading the CTDC shape, with its derived codes.
func BenchmarkReadCTDC(b *testing.B) {
	seq, err := synth.Generate(benchCases, 1, "default")
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := casefile.WriteCSV(&buf, seq, casefile.WriteOptions{Format: casefile.FormatCTDC}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	key := bytes.Repeat([]byte{1}, 32)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := casefile.Scan(bytes.NewReader(data), "bench.csv", casefile.ReadOptions{HMACKey: key}, nil)
		if err != nil || res.Valid != benchCases {
			b.Fatalf("got %v valid, %v", res.Valid, err)
		}
	}
	b.ReportMetric(float64(benchCases*b.N)/b.Elapsed().Seconds(), "cases/s")
}

// BenchmarkWriteCSV measures writing cases in ctfed's shape.
func BenchmarkWriteCSV(b *testing.B) {
	res, err := casefile.Read(bytes.NewReader(genCSV(b)), "bench.csv", casefile.ReadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w, err := casefile.NewWriter(io.Discard, casefile.WriteOptions{IncludeIdentity: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range res.Cases {
			w.Write(c)
		}
		w.Close()
	}
	b.ReportMetric(float64(benchCases*b.N)/b.Elapsed().Seconds(), "cases/s")
}
