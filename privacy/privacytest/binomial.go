package privacytest

import "math"

// kl is the Kullback–Leibler divergence between Bernoulli(p) and
// Bernoulli(q).
func kl(p, q float64) float64 {
	var d float64
	if p > 0 {
		d += p * math.Log(p/q)
	}
	if p < 1 {
		d += (1 - p) * math.Log((1-p)/(1-q))
	}
	return d
}

// BinomialInterval returns a confidence interval for the success probability
// p of n independent trials with k successes, holding p with probability at
// least 1 − alpha: by the Chernoff bound P(p̂ ≥ a) ≤ exp(−n·KL(a‖p)) for
// a > p (and symmetrically below), the interval is
// {p : n·KL(p̂‖p) ≤ ln(2/alpha)}.
func BinomialInterval(k, n int, alpha float64) (lo, hi float64) {
	return Lower(k, n, alpha/2), Upper(k, n, alpha/2)
}

// Lower returns a lower confidence bound for p from k successes in n trials,
// wrong with probability at most alpha.
func Lower(k, n int, alpha float64) float64 {
	ph := float64(k) / float64(n)
	if k == 0 {
		return 0
	}
	c := math.Log(1/alpha) / float64(n)
	a, b := 0.0, ph // kl(ph, a) > c ≥ kl(ph, b)
	if kl(ph, 1e-300) <= c {
		return 0
	}
	for range 100 {
		m := (a + b) / 2
		if kl(ph, m) > c {
			a = m
		} else {
			b = m
		}
	}
	return a
}

// Upper returns an upper confidence bound for p from k successes in n
// trials, wrong with probability at most alpha.
func Upper(k, n int, alpha float64) float64 {
	return 1 - Lower(n-k, n, alpha)
}
