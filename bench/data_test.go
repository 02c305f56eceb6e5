package bench_test

import (
	"context"
	"testing"

	"github.com/ctfed/ctfed/bench"
)

// TestEnginesAgree loads a small caseload into both engines and checks
// that every DuckDB shape gives ctfed's count in every cell.
func TestEnginesAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
	}{
		{"OneCase", 1},
		{"FiveProfiles", 5},
		{"Thousands", 20_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := bench.Load(context.Background(), tc.n, 7, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := d.Table.Len(); got != tc.n {
				t.Fatalf("got %d cases in the table, want %d", got, tc.n)
			}
			if err := d.Verify(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDiff checks that Diff finds cells missing on either side and cells
// whose counts differ.
func TestDiff(t *testing.T) {
	a := bench.Counts{{"THA", "sexual"}: 3, {"MMR", "forced_labour"}: 2}
	for _, tc := range []struct {
		name string
		b    bench.Counts
		want int
	}{
		{"Equal", bench.Counts{{"THA", "sexual"}: 3, {"MMR", "forced_labour"}: 2}, 0},
		{"Differs", bench.Counts{{"THA", "sexual"}: 4, {"MMR", "forced_labour"}: 2}, 1},
		{"Missing", bench.Counts{{"THA", "sexual"}: 3}, 1},
		{"Extra", bench.Counts{{"THA", "sexual"}: 3, {"MMR", "forced_labour"}: 2, {"LAO", "other"}: 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := bench.Diff(a, tc.b); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
