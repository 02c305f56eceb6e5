// Command compare loads the same synthetic cases into ctfed's columnar
// projection and into DuckDB, checks that both give the same count in every
// cell of the cross-tab (citizenship × exploitation type, one year range),
// then times both and prints the medians and the ratio ctfed / DuckDB
// (DESIGN.md "Targets": at most 1.0).
//
//	go run ./cmd/compare [-n 1000000] [-iters 30] [-threads 2]
//
// It prints times only, never a case or a count.
//
// compare imports bench and bench/caseload.
package main
