package gateway

// ForTest exposes internals to the tests of package gateway_test.
type ForTest struct{ s *Server }

// ForTest returns the test handle of s.
func (s *Server) ForTest() ForTest { return ForTest{s} }

// RestoreContentFormat switches the T6 hook on or off.
func (f ForTest) RestoreContentFormat(on bool) { f.s.restoreCF.Store(on) }

// Sessions returns the number of DTLS sessions held.
func (f ForTest) Sessions() int64 { return f.s.sessions.Load() }

// Digests returns the number of cached auth_id_digest values.
func (f ForTest) Digests() int { return f.s.digests.len() }

// PendingHandshakes returns the number of DTLS handshakes in progress.
func (f ForTest) PendingHandshakes() int64 { return f.s.pending.Load() }
