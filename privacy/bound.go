package privacy

import (
	crand "crypto/rand"
	"math/bits"
	"math/rand/v2"
)

// Bound applies contribution bounding to one case's codes in a multi-valued
// dimension: if it has more than l0 codes, it keeps a uniformly random
// subset of l0 of them. It reorders codes in place (a partial
// Fisher–Yates shuffle) and returns the kept prefix, so it allocates
// nothing; pass a scratch copy if the order matters. l0 < 1 keeps nothing.
// The subset is drawn afresh on every call: the caller draws it once per
// case per query and uses it for every cell of that answer.
func Bound[T any](codes []T, l0 int, r *rand.Rand) []T {
	if l0 < 0 {
		l0 = 0
	}
	n := len(codes)
	if n <= l0 {
		return codes
	}
	for i := range l0 {
		j := i + r.IntN(n-i)
		codes[i], codes[j] = codes[j], codes[i]
	}
	return codes[:l0]
}

// BoundMask is Bound for codes held as the set bits of a mask (code i is
// bit i): it returns a uniformly random subset of at most l0 of the set
// bits.
func BoundMask(mask uint64, l0 int, r *rand.Rand) uint64 {
	n := bits.OnesCount64(mask)
	if n <= l0 {
		return mask
	}
	var kept uint64
	for range max(l0, 0) {
		// pick the k-th set bit of what is left, uniformly
		k := r.IntN(n)
		m := mask
		for range k {
			m &= m - 1
		}
		bit := m & -m
		kept |= bit
		mask &^= bit
		n--
	}
	return kept
}

// NewRand returns a fast generator (ChaCha8) seeded from crypto/rand, for
// contribution bounding. Bounding's randomness need not be secret for the
// privacy guarantee, which holds for any choice of kept codes; a fresh seed
// per query keeps the subsets independent across queries.
func NewRand() *rand.Rand {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go ≥ 1.24).
		panic("privacy: crypto/rand failed: " + err.Error())
	}
	return rand.New(rand.NewChaCha8(seed))
}
