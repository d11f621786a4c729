//go:build !linux

package gateway

import "net"

// readBufferSize is not read outside Linux.
func readBufferSize(*net.UDPConn) (int, bool) { return 0, false }
