package storage

import (
	"fmt"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func TestCodeFilter(t *testing.T) {
	f := newCodeFilter(10000)
	for i := range 10000 {
		f.add(fmt.Sprintf("IN-%d", i))
	}
	for i := range 10000 {
		if !f.mayHave(fmt.Sprintf("IN-%d", i)) {
			t.Fatalf("code %d: got absent, want present (no false negatives)", i)
		}
	}
	fp := 0
	for i := range 100000 {
		if f.mayHave(fmt.Sprintf("OUT-%d", i)) {
			fp++
		}
	}
	// The filter holds 10 000 codes with room for 65 536: far below 1%.
	if fp > 1000 {
		t.Fatalf("got %d false positives in 100 000, want at most 1%%", fp)
	}
}

func TestPutCases_CodeFilterGrows(t *testing.T) {
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 10)...)
	// Pretend the filter is nearly full: the next batch rebuilds it.
	db.codes.capacity = db.codes.n + 5
	MustPut(t, db, node.CreateOnly, testCases(10, 20)...)
	if db.codes.full() || db.codes.n != 20 {
		t.Fatalf("got a filter of %d codes (full %v), want a rebuilt one of 20", db.codes.n, db.codes.full())
	}
	res := MustPut(t, db, node.CreateOnly, testCases(0, 25)...)
	if got := (node.PutResult{Created: 5, Unchanged: 20}); res != got {
		t.Fatalf("got %+v, want %+v", res, got)
	}
}
