package privacy

import (
	"os"
	"testing"
)

// alpha is the false-failure probability of each statistical check in this
// package. There are at most 16 such checks (4 noise fits, 2 neighbouring
// dataset checks and their 2 power checks, 1 release rate, 4 phantom rates,
// 3 coverage checks), so the package fails by chance with probability below
// 16·alpha < 1e-4.
const alpha = 5e-6

// draws returns n, times 10 when CTFED_DP_AUDIT is set (make dp-audit).
func draws(n int) int {
	if os.Getenv("CTFED_DP_AUDIT") != "" {
		return 10 * n
	}
	return n
}

// mustSpec fails t unless s is valid.
func mustSpec(tb testing.TB, s Spec) Spec {
	tb.Helper()
	if err := s.Validate(); err != nil {
		tb.Fatalf("spec %+v: %v", s, err)
	}
	return s
}
