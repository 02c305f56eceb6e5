package privacy

import (
	"math"
	"math/bits"
)

// fft transforms a in place (length a power of two): a[k] ← Σ_j a[j]·e^(−2πi·jk/n).
func fft(a []complex128) {
	n := len(a)
	if n <= 1 {
		return
	}
	shift := 64 - uint(bits.Len(uint(n))-1)
	for i := range a {
		j := int(bits.Reverse64(uint64(i)) >> shift)
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half := size / 2
		step := -2 * math.Pi / float64(size)
		for k := 0; k < half; k++ {
			s, c := math.Sincos(step * float64(k))
			w := complex(c, s)
			for start := 0; start < n; start += size {
				u := a[start+k]
				v := a[start+k+half] * w
				a[start+k] = u + v
				a[start+k+half] = u - v
			}
		}
	}
}
