package caseload

import (
	"iter"

	"github.com/ctfed/ctfed/node"
	"github.com/ctfed/ctfed/node/synth"
)

// The cross-tab every engine runs: cases per citizenship × exploitation
// type, registrations from FromYear to ToYear.
const (
	FromYear = 2015
	ToYear   = 2024
	// CrossTabSQL is the query in ctfed's SQL subset. A case with several
	// exploitation types counts in each of their cells, one with none in
	// none_recorded.
	CrossTabSQL = "SELECT COUNT(*) FROM cases WHERE registration_year BETWEEN 2015 AND 2024 GROUP BY citizenship, exploitation_type"
)

// DefaultCases is the size of the benchmarks' caseload.
const DefaultCases = 1_000_000

// Cases returns n synthetic cases from every profile of node/synth in turn
// (the mixed default one and the four regional ones), as a network of
// several organisations would hold them. Case codes are unique: each profile
// has its own prefix. The same n and seed give the same cases.
func Cases(n int, seed uint64) (iter.Seq[*node.Case], error) {
	profiles := synth.Profiles()
	per := (n + len(profiles) - 1) / len(profiles)
	seqs := make([]iter.Seq[*node.Case], len(profiles))
	for i, p := range profiles {
		s, err := synth.Generate(per, seed+uint64(i), p.Name)
		if err != nil {
			return nil, err
		}
		seqs[i] = s
	}
	return func(yield func(*node.Case) bool) {
		nexts := make([]func() (*node.Case, bool), len(seqs))
		for i, s := range seqs {
			next, stop := iter.Pull(s)
			defer stop()
			nexts[i] = next
		}
		for i := range n {
			c, ok := nexts[i%len(nexts)]()
			if !ok || !yield(c) {
				return
			}
		}
	}, nil
}

// CrossTabQuery returns CrossTabSQL parsed against the default codebook.
func CrossTabQuery() (*node.Query, error) {
	return node.ParseSQL(node.DefaultCodebook(), CrossTabSQL)
}
