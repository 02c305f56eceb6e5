package casefile_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/casefile"
	"github.com/ctfed/ctfed/node/synth"
	"github.com/ctfed/ctfed/storage"
)

// BenchmarkImport100k imports 100 000 generated cases (ctfed gen --cases
// 100000 --seed 1 --profile sea-ngo) from a CSV file into a fresh store the
// way ctfed import does: every row checked before anything is written, then
// atomic batches of casefile.DefaultBatchSize, validated and encrypted by a
// real storage.DB with its default settings (fsync on every commit), and
// the audit entry. Creating the store and closing it are not timed, as
// ctfed import's own figure leaves them out.
func BenchmarkImport100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, "cases.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := synth.WriteCSV(f, n, 1, "sea-ngo"); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	check := func(res *casefile.Result) error {
		if len(res.Rejected) > 0 {
			return res.Err()
		}
		return nil
	}

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		nodeDir := filepath.Join(dir, fmt.Sprintf("node%d", i))
		kr, _, err := storage.CreateKeyring(nodeDir, nil, true)
		if err != nil {
			b.Fatal(err)
		}
		db := storage.NewDB(nodeDir, kr)
		if err := db.Open(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		ropt := casefile.ReadOptions{Codebook: node.DefaultCodebook(), HMACKey: kr.HMACKey()}
		done := 0
		iopt := casefile.ImportOptions{Mode: node.CreateOnly, By: "bench", Progress: func(d, _ int) { done = d }}
		res, put, err := casefile.ImportFile(ctx, db, open, path, ropt, iopt, check)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Append(ctx, &node.AuditEntry{Actor: "bench", Action: "case.import",
			Detail: fmt.Sprintf("%s shape, %d rows: %d created", res.Format, res.RowCount, put.Created)}); err != nil {
			b.Fatal(err)
		}
		if put.Created != n || done != n {
			b.Fatalf("created %d, progress %d: want %d", put.Created, done, n)
		}

		b.StopTimer()
		if err := db.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(nodeDir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "cases/s")
}
