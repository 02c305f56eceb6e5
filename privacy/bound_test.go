package privacy

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t.Run("Short", func(t *testing.T) {
		codes := []int{3, 5}
		if got := Bound(codes, 3, r); !slices.Equal(got, []int{3, 5}) {
			t.Fatalf("got %v, want [3 5]", got)
		}
		if got := Bound(codes, 0, r); len(got) != 0 {
			t.Fatalf("l0 0: got %v, want nothing", got)
		}
	})
	t.Run("Uniform", func(t *testing.T) {
		// Every 2-subset of 5 codes is kept about equally often.
		counts := map[[2]int]int{}
		const n = 100_000
		codes := make([]int, 5)
		for range n {
			for i := range codes {
				codes[i] = i
			}
			got := Bound(codes, 2, r)
			if len(got) != 2 || got[0] == got[1] {
				t.Fatalf("got %v, want 2 distinct codes", got)
			}
			k := [2]int{min(got[0], got[1]), max(got[0], got[1])}
			counts[k]++
		}
		if len(counts) != 10 {
			t.Fatalf("got %d subsets, want 10", len(counts))
		}
		for k, c := range counts {
			if c < n/10-600 || c > n/10+600 { // ±6.3 sd, seeded
				t.Errorf("subset %v kept %d times of %d, want about %d", k, c, n, n/10)
			}
		}
	})
	t.Run("NoAllocation", func(t *testing.T) {
		codes := []uint16{1, 2, 3, 4, 5, 6}
		if a := testing.AllocsPerRun(100, func() { Bound(codes, 3, r) }); a != 0 {
			t.Fatalf("got %v allocations, want 0", a)
		}
	})
}

func TestBoundMask(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	if got := BoundMask(0b1010, 3, r); got != 0b1010 {
		t.Fatalf("short mask: got %b, want 1010", got)
	}
	mask := uint64(0b1011_0110)
	counts := map[uint64]int{}
	for range 60_000 {
		got := BoundMask(mask, 2, r)
		if bits.OnesCount64(got) != 2 || got&^mask != 0 {
			t.Fatalf("got %b, want 2 bits of %b", got, mask)
		}
		counts[got]++
	}
	if len(counts) != 10 {
		t.Fatalf("got %d subsets, want 10", len(counts))
	}
	for k, c := range counts {
		if c < 6000-500 || c > 6000+500 {
			t.Errorf("subset %b kept %d times, want about 6000", k, c)
		}
	}
	if got := BoundMask(mask, 0, r); got != 0 {
		t.Fatalf("l0 0: got %b, want 0", got)
	}
}

func TestNewRand(t *testing.T) {
	a, b := NewRand(), NewRand()
	if a.Uint64() == b.Uint64() {
		t.Fatal("two generators gave the same first number")
	}
}
