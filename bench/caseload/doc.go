// Package caseload generates the synthetic caseload of ctfed's benchmarks
// and holds the cross-tab they run, so that the commands that measure ctfed
// alone (cmd/rss) do not link DuckDB.
//
// caseload imports node and node/synth only.
package caseload
