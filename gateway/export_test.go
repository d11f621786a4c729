package gateway

import "time"

// ForTest exposes internals to the tests of package gateway_test.
type ForTest struct{ s *Server }

// ForTest returns the test handle of s.
func (s *Server) ForTest() ForTest { return ForTest{s} }

// RestoreContentFormat switches the T6 hook on or off.
func (f ForTest) RestoreContentFormat(on bool) { f.s.restoreCF.Store(on) }

// CheckExpiry runs go-coap's expiry checks now, on the server's clock,
// as its periodic runner does every few seconds.
func (f ForTest) CheckExpiry() {
	f.s.expiryMu.Lock()
	checks := append([]func(time.Time) bool(nil), f.s.expiry...)
	f.s.expiryMu.Unlock()
	for _, check := range checks {
		check(f.s.now())
	}
}

// Sessions returns the number of DTLS sessions held.
func (f ForTest) Sessions() int64 { return f.s.sessions.Load() }

// Digests returns the number of cached auth_id_digest values.
func (f ForTest) Digests() int { return int(f.s.flows.Load()) }

// PendingHandshakes returns the number of DTLS handshakes in progress.
func (f ForTest) PendingHandshakes() int64 { return f.s.pending.Load() }

// ListenerForTest exposes a listener's internals to the tests.
type ListenerForTest struct{ l *DTLSListener }

// ForTest returns the test handle of l.
func (l *DTLSListener) ForTest() ListenerForTest { return ListenerForTest{l} }

// Datagrams returns the number of datagrams the listener has sorted
// (delivered to a session or dropped).
func (f ListenerForTest) Datagrams() int64 { return f.l.datagrams.Load() }

// Peers returns the number of peer connections open: established
// sessions and handshakes, accepted or not.
func (f ListenerForTest) Peers() int {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	return f.l.open
}

// KeysFetched is closed when the fetch of AM's keys that Authenticate
// starts has ended, so that tests can count AM calls without it.
func (f ForTest) KeysFetched() <-chan struct{} { return f.s.keysFetched }

// Handshaking returns the number of handshakes the listener has under way.
func (f ListenerForTest) Handshaking() int {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	return f.l.handshaking
}

// Released returns the number of sessions whose pion reader has let go of
// its read buffer: maxReleased errReleased wait for their Read.
func (f ListenerForTest) Released() int {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	n := 0
	for _, p := range f.l.peers {
		p.inMu.Lock()
		if p.out == maxReleased {
			n++
		}
		p.inMu.Unlock()
	}
	return n
}

// WaitingReads returns the number of sessions whose pion reader waits in
// ReadFrom, holding its read buffer.
func (f ListenerForTest) WaitingReads() int {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	n := 0
	for _, p := range f.l.peers {
		if p.waiting.Load() {
			n++
		}
	}
	return n
}
