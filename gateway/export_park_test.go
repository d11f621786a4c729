package gateway

// Parked returns the number of parked DTLS sessions.
func (f ForTest) Parked() int64 { return f.s.parked.Load() }

// Handshakes returns the number of DTLS handshakes the listener has
// started (ClientHellos admitted).
func (f ListenerForTest) Handshakes() int64 { return f.l.handshakes.Load() }

// Resumptions returns the number of parked sessions the listener has
// resumed.
func (f ListenerForTest) Resumptions() int64 { return f.l.resumes.Load() }
