package amclient

// Nonce returns the request nonce the session's next signed request will use.
func (s *Session) Nonce() int64 { return s.nonce.Load() }
