package amtest

import (
	"net"
	"strings"
	"sync"
	"time"
)

// Sign-in throttling of the web pages (the device verification pages'
// sign-in): failures are counted per user name (as typed, in its realm)
// and per client address; past the limit, sign-in is refused, even with
// the right password, until the window has passed. The refusal is the same
// whether the user exists or not.
const (
	signinWindow      = 15 * time.Minute
	signinUserLimit   = 5  // failures per user name per window
	signinClientLimit = 20 // failures per client address per window
	signinMaxKeys     = 10000
)

// signinLimiter counts failed sign-ins.
type signinLimiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time // key → failure times within the window, oldest first
}

func signinUserKey(realm, user string) string {
	return "user\x00" + realm + "\x00" + strings.ToLower(user)
}

func signinClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return "client\x00" + host
}

// locked says until when sign-in for keys is refused (zero if it is not).
func (l *signinLimiter) locked(now time.Time, keys map[string]int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for k, limit := range keys {
		f := l.recentLocked(k, now)
		if len(f) >= limit {
			if u := f[len(f)-limit].Add(signinWindow); u.After(until) {
				until = u
			}
		}
	}
	return until
}

// fail counts a failure for keys.
func (l *signinLimiter) fail(now time.Time, keys map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == nil {
		l.failures = map[string][]time.Time{}
	}
	if len(l.failures) >= signinMaxKeys {
		for k := range l.failures { // bounded: drop what has expired, else anything
			if len(l.recentLocked(k, now)) == 0 || len(l.failures) >= signinMaxKeys {
				delete(l.failures, k)
			}
			if len(l.failures) < signinMaxKeys/2 {
				break
			}
		}
	}
	for k := range keys {
		l.failures[k] = append(l.recentLocked(k, now), now)
	}
}

// succeed forgets the failures of a user name.
func (l *signinLimiter) succeed(userKey string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, userKey)
}

// recentLocked drops key's failures older than the window; with l.mu held.
func (l *signinLimiter) recentLocked(key string, now time.Time) []time.Time {
	f := l.failures[key]
	i := 0
	for i < len(f) && !f[i].After(now.Add(-signinWindow)) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = f
	return f
}
