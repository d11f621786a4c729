package gateway

import "time"

// Parked returns the number of parked DTLS sessions.
func (f ForTest) Parked() int64 { return f.s.parked.Load() }

// Handshakes returns the number of DTLS handshakes the listener has
// started (ClientHellos admitted).
func (f ListenerForTest) Handshakes() int64 { return f.l.handshakes.Load() }

// Resumptions returns the number of parked sessions the listener has
// resumed.
func (f ListenerForTest) Resumptions() int64 { return f.l.resumes.Load() }

// SetMemoryRelease makes the server return parked sessions' memory after
// min of them, quiet after the last one, by calling free.
func (f ForTest) SetMemoryRelease(min int, quiet time.Duration, free func()) {
	f.s.release.mu.Lock()
	defer f.s.release.mu.Unlock()
	f.s.release.min, f.s.release.quiet, f.s.release.free = min, quiet, free
}

// PendingRelease returns the sessions parked since the last release and
// whether a release is armed.
func (f ForTest) PendingRelease() (parked int, armed bool) {
	f.s.release.mu.Lock()
	defer f.s.release.mu.Unlock()
	return f.s.release.parked, f.s.release.timer != nil
}
