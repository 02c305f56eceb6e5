// Command rss measures the resident memory of a ctfed node holding many
// cases (DESIGN.md "Targets": 1 000 000 cases under 500 MB).
//
// It creates a node directory with an insecure keyring (a benchmark's
// throwaway node), loads synthetic cases through storage.DB.PutCases in
// batches of storage.MaxBatch with unsynced writes, closes the store and
// opens it again, which rebuilds the columnar projection from the encrypted
// records; then runs the exact cross-tab and reports the open time and the
// process's peak (VmHWM) and current (VmRSS) resident memory after a
// runtime.GC. It then runs itself as a child that only opens the same
// directory and queries it: that child's figures are the memory of a node
// holding the cases, without the loading's.
//
//	go run ./cmd/rss [-n 1000000] [-dir DIR] [-keep]
//	go run ./cmd/rss -reopen-only -dir DIR [-memprofile FILE]   # a kept node again
//
// It prints times and sizes only, never a case or a count.
//
// rss imports node, storage and bench/caseload: not DuckDB.
package main
