// Package bench holds ctfed's benchmarks against outside references: the
// exact cross-tab of the columnar projection next to DuckDB's GROUP BY on the
// same synthetic cases, and the tools behind `make bench` (cmd/compare prints
// the two side by side, cmd/rss measures the resident memory of a node of a
// million cases).
//
// bench is its own Go module so that DuckDB, a cgo library, is never linked
// into ctfed: only this module's go.mod names it, and the root module's
// `go build ./...`, `go vet ./...` and `go test ./...` do not descend here.
// The cases are synthetic (node/synth): no real personal data, and nothing
// here prints a case or an exact count, only times, sizes and whether the two
// engines agree.
//
// bench may import node, storage/columnar, bench/caseload and DuckDB.
package bench
