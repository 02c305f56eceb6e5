package web

import (
	"sync"
	"time"
)

// loginLimiter counts failed sign-ins per user name and per remote address
// in fixed windows, and refuses further attempts from a key that reached
// its limit until its window ends. It is kept in memory: a restart forgets
// it. It holds at most maxKeys keys; when full, failures of new keys share
// one overflow count, so that a flood of names or addresses cannot make it
// forget the keys it tracks or grow without bound.
type loginLimiter struct {
	mu                   sync.Mutex
	userLimit, addrLimit int
	window               time.Duration
	maxKeys              int
	m                    map[string]*failures
}

type failures struct {
	n     int
	reset time.Time
}

const overflowKey = "\x00overflow"

func newLoginLimiter(userLimit, addrLimit int, window time.Duration) *loginLimiter {
	return &loginLimiter{userLimit: userLimit, addrLimit: addrLimit, window: window, maxKeys: 10000, m: map[string]*failures{}}
}

func userKey(name string) string { return "u\x00" + name }
func addrKey(addr string) string { return "a\x00" + addr }

func (l *loginLimiter) limit(key string) int {
	if len(key) > 0 && key[0] == 'u' {
		return l.userLimit
	}
	return l.addrLimit
}

// lookup returns key's live count (nil if none); the caller holds l.mu.
func (l *loginLimiter) lookup(key string, now time.Time) *failures {
	f := l.m[key]
	if f != nil && !now.Before(f.reset) {
		delete(l.m, key)
		return nil
	}
	return f
}

// blocked reports whether any of keys reached its limit at now, and when
// the latest of their windows ends.
func (l *loginLimiter) blocked(now time.Time, keys ...string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		f, lim := l.lookup(k, now), l.limit(k)
		if f == nil && len(l.m) >= l.maxKeys {
			f, lim = l.lookup(overflowKey, now), l.userLimit
		}
		if f != nil && f.n >= lim && f.reset.After(until) {
			until = f.reset
		}
	}
	return !until.IsZero(), until
}

// fail counts one failed sign-in for each of keys at now.
func (l *loginLimiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		f := l.lookup(k, now)
		if f == nil {
			if len(l.m) >= l.maxKeys {
				l.prune(now)
			}
			if len(l.m) >= l.maxKeys {
				k = overflowKey
				f = l.lookup(k, now)
			}
		}
		if f == nil {
			f = &failures{reset: now.Add(l.window)}
			l.m[k] = f
		}
		f.n++
	}
}

// forget drops the count of key (after a successful sign-in).
func (l *loginLimiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// prune drops every ended window; the caller holds l.mu.
func (l *loginLimiter) prune(now time.Time) {
	for k, f := range l.m {
		if !now.Before(f.reset) {
			delete(l.m, k)
		}
	}
}
