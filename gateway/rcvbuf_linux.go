package gateway

import (
	"net"
	"syscall"
)

// readBufferSize is the socket's SO_RCVBUF as the kernel reports it.
func readBufferSize(udp *net.UDPConn) (int, bool) {
	rc, err := udp.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		n, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || gerr != nil {
		return 0, false
	}
	return n, true
}
