package gateway

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// record returns a DTLS record header of content type typ with a body of
// n bytes; a tls12_cid one carries a connection ID of cidLength bytes.
func record(typ byte, n int) []byte {
	h := []byte{typ, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1}
	if typ == recordCID {
		h = append(h, make([]byte, cidLength)...)
	}
	h = append(h, byte(n>>8), byte(n))
	return append(h, make([]byte, n)...)
}

func TestCountRecords(t *testing.T) {
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"one application data record", record(23, 40), 1},
		{"three records", cat(record(23, 40), record(21, 2), record(23, 300)), 3},
		{"a connection ID record then another", cat(record(recordCID, 33), record(23, 5)), 2},
		{"a truncated second record", cat(record(23, 40), record(23, 40)[:20]), 2},
		{"a record longer than the datagram", record(23, 40)[:30], 1},
		{"a header only", record(23, 0), 1},
		{"trailing bytes", cat(record(23, 4), []byte{1, 2}), 2},
		{"less than a header", []byte{23, 0xfe}, 1},
		{"empty", nil, 1},
	} {
		if got := countRecords(tc.b); got != tc.want {
			t.Errorf("%s: countRecords = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// waitRecord returns once a counted record has come, or when told to
// stop, or when the packet flow ends; not before.
func TestWaitRecord(t *testing.T) {
	p := &peerConn{recordIn: make(chan struct{}, 1), closed: make(chan struct{})}
	var stop atomic.Bool
	p.waitRecord(&stop) // not counting yet: at once
	p.counting.Store(true)
	returned := make(chan struct{})
	signal := func() {
		select {
		case p.recordIn <- struct{}{}:
		default: // one is pending already
		}
	}
	wait := func() {
		go func() { p.waitRecord(&stop); returned <- struct{}{} }()
	}
	blocked := func(what string) {
		t.Helper()
		select {
		case <-returned:
			t.Fatalf("waitRecord returned %s", what)
		default:
		}
	}
	done := func(what string) {
		t.Helper()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatalf("waitRecord did not return %s", what)
		}
	}

	wait()
	blocked("before any record")
	p.records.Add(2)
	signal()
	done("for a record")
	wait()
	done("for the second record of a datagram")
	if n := p.records.Load(); n != 0 {
		t.Fatalf("records left = %d, want 0", n)
	}
	wait()
	signal() // a signal without a record (taken by another read) does not end the wait
	blocked("for a signal without a record")
	stop.Store(true)
	signal()
	done("when told to stop")
	stop.Store(false)
	wait()
	close(p.closed)
	done("when the packet flow ended")
}

// A quiet session's reader is handed errReleased until maxReleased are
// out; the next datagram counts those not yet counted as records, and
// Read taking one before that (a record counted earlier yielded nothing)
// lets ReadFrom hand out another. With a read deadline set, none.
func TestReleaseAccounting(t *testing.T) {
	p := &peerConn{recordIn: make(chan struct{}, 1), inReady: make(chan struct{}, 1), closed: make(chan struct{})}
	take := func() (bool, bool) {
		_, ok, release := p.take()
		return ok, release
	}
	if _, release := take(); release {
		t.Fatal("released before the session was quiet")
	}
	p.setQuiet()
	for i := range maxReleased {
		if _, release := take(); !release {
			t.Fatalf("errReleased %d not handed out", i+1)
		}
	}
	if ok, release := take(); ok || release {
		t.Fatalf("a third take: ok %v, release %v; want neither", ok, release)
	}
	// Read takes one before any datagram: it was not counted.
	p.tookReleased()
	if p.out != 1 || p.unpaid != 1 {
		t.Fatalf("after Read took one: out %d, unpaid %d; want 1, 1", p.out, p.unpaid)
	}
	if _, release := take(); !release {
		t.Fatal("no errReleased after Read took one")
	}
	p.deliver(netip.AddrPortFrom(netip.IPv4Unspecified(), 1), []byte{1})
	if n := p.records.Load(); n != maxReleased {
		t.Fatalf("records after the datagram = %d, want %d", n, maxReleased)
	}
	if ok, release := take(); !ok || release {
		t.Fatalf("after the datagram: ok %v, release %v; want the datagram", ok, release)
	}
	// Read takes the two counted ones: nothing is left uncounted.
	p.tookReleased()
	p.tookReleased()
	if p.out != 0 || p.unpaid != 0 {
		t.Fatalf("after Read took them: out %d, unpaid %d; want 0, 0", p.out, p.unpaid)
	}
	p.setQuiet()
	p.holdBuffer.Store(true)
	if _, release := take(); release {
		t.Fatal("released with a read deadline set")
	}
}
