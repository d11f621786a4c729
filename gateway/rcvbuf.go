package gateway

import "net"

// UDPReadBuffer is the receive buffer the gateway asks for on its UDP
// socket. A burst of datagrams for many sessions at once (things waking
// together, or closing together) can come faster than the one reader
// takes them while thousands of sessions wake; with the kernel's default
// (about 200 KiB, a few hundred small datagrams) the rest is dropped and
// the things must send again. Linux grants at most net.core.rmem_max;
// "gateway serving" logs what it granted (udp_read_buffer).
const UDPReadBuffer = 4 << 20

// growReadBuffer asks for UDPReadBuffer on udp and returns the receive
// buffer it has, in bytes (0 where it cannot be read).
func growReadBuffer(udp *net.UDPConn) int {
	_ = udp.SetReadBuffer(UDPReadBuffer)
	got, ok := readBufferSize(udp)
	if !ok {
		return 0
	}
	// Linux reports twice what it grants for data, the rest being for its
	// own bookkeeping.
	return got / 2
}

// readBufferOf is l's UDP receive buffer, 0 for a listener that is not a
// DTLSListener or where it is not known.
func readBufferOf(l Listener) int {
	if d, ok := l.(*DTLSListener); ok {
		return d.readBuffer
	}
	return 0
}
