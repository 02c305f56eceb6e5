package storage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/storage"
)

// BenchmarkDPAnswer1M measures the private answer of the cross-tab
// over 1 000 000 cases: QueryService.Answer (charge on disk, bounded
// aggregation over the projection, noise on every cell of the domain, the
// answer cached) of
//
//	SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2015 AND 2024
//	GROUP BY citizenship, exploitation_type
//
// with caps it never reaches and a new epoch per iteration, so that no
// answer comes from the cache. It reports ns/op and noised cells per
// second. The store is built once, outside the timer, through
// DB.PutCases in batches of storage.MaxBatch, with unsynced writes.
func BenchmarkDPAnswer1M(b *testing.B) {
	const total = 1_000_000
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ctfed-dpanswer")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	kr, _, err := storage.CreateKeyring(dir, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	db := storage.NewDB(dir, kr)
	db.SyncWrites = false
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(ctx); err != nil {
			b.Error(err)
		}
	})
	g := newBenchGen(1)
	batch := make([]*node.Case, 0, storage.MaxBatch)
	for i := range total {
		batch = append(batch, g.next(i))
		if len(batch) == storage.MaxBatch || i == total-1 {
			if _, err := db.PutCases(ctx, batch, node.CreateOnly, "bench"); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if n, err := db.CaseCount(ctx); err != nil || n != total {
		b.Fatalf("got %d cases (%v), want %d", n, err, total)
	}

	p := statPolicy()
	clk := newTestClock(p.Epoch)
	s := newAnswerService(db, p, clk)
	q := mustQuery(b, "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2015 AND 2024 GROUP BY citizenship, exploitation_type")
	cells := q.CellCount(db.Codebook)
	for b.Loop() {
		a, err := s.Answer(ctx, &node.AnswerRequest{Query: q})
		if err != nil {
			b.Fatal(err)
		}
		if a.Cached || len(a.Table.Cells) != cells {
			b.Fatalf("got cached %v with %d cells, want a new answer of %d cells", a.Cached, len(a.Table.Cells), cells)
		}
		clk.Advance(p.Epoch)
	}
	b.ReportMetric(float64(cells)*float64(b.N)/b.Elapsed().Seconds(), "cells/s")
}

// benchGen builds fictitious consenting cases deterministically, skewed like
// a caseload: most cases in a dozen corridors and in recent years, one to
// three exploitation types, up to four means of control. No identity.
type benchGen struct {
	r         *rand.Rand
	countries []string
	exploit   []string
	means     []string
	genders   []string
}

func newBenchGen(seed uint64) *benchGen {
	cb := node.DefaultCodebook()
	return &benchGen{
		r:         rand.New(rand.NewPCG(seed, 0x5eed)),
		countries: cb.Countries.Values(),
		exploit:   node.ListExploitation.Values()[:9], // without none_recorded
		means:     node.ListMeans.Values()[:9],
		genders:   []string{"woman", "woman", "woman", "man", "man", "trans_nonconforming", ""},
	}
}

func (g *benchGen) pickSome(from []string, most int) []string {
	n := g.r.IntN(most + 1)
	out := make([]string, 0, n)
	for _, i := range g.r.Perm(len(from))[:n] {
		out = append(out, from[i])
	}
	return out
}

func (g *benchGen) next(i int) *node.Case {
	r := g.r
	year := 2025 - int(r.ExpFloat64()*4)%14
	country := g.countries[r.IntN(12)*7%len(g.countries)]
	if r.IntN(5) == 0 {
		country = g.countries[r.IntN(len(g.countries))]
	}
	c := &node.Case{
		Code:              fmt.Sprintf("B%07d", i),
		RegistrationDate:  node.Date(fmt.Sprintf("%d-%02d-%02d", year, 1+r.IntN(12), 1+r.IntN(28))),
		Gender:            g.genders[r.IntN(len(g.genders))],
		Age:               node.IntPtr(8 + r.IntN(50)),
		Citizenship:       country,
		ExploitationTypes: g.pickSome(g.exploit, 3),
		MeansOfControl:    g.pickSome(g.means, 4),
		Consent:           "yes",
	}
	if r.IntN(10) == 0 {
		c.Consent = "no"
	}
	return c
}
