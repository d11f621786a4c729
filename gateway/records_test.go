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
// drops the stray counts and lets ReadFrom hand out another. A datagram
// ends the quiet; with a read deadline set, nothing is released.
func TestReleaseAccounting(t *testing.T) {
	p := &peerConn{recordIn: make(chan struct{}, 1), inReady: make(chan struct{}, 1), closed: make(chan struct{})}
	take := func() (bool, bool) {
		_, ok, release := p.take()
		return ok, release
	}
	datagram := func() {
		p.deliver(netip.AddrPortFrom(netip.IPv4Unspecified(), 1), []byte{1})
	}
	state := func(what string, out, unpaid int, records int64) {
		t.Helper()
		if p.out != out || p.unpaid != unpaid || p.records.Load() != records {
			t.Fatalf("%s: out %d, unpaid %d, records %d; want %d, %d, %d", what, p.out, p.unpaid, p.records.Load(), out, unpaid, records)
		}
	}
	if _, release := take(); release {
		t.Fatal("released before the session was quiet")
	}
	p.records.Store(3) // counts that yielded nothing
	p.setQuiet()
	for i := range maxReleased {
		if _, release := take(); !release {
			t.Fatalf("errReleased %d not handed out", i+1)
		}
	}
	if ok, release := take(); ok || release {
		t.Fatalf("a third take: ok %v, release %v; want neither", ok, release)
	}
	// Read takes one before any datagram: it was not counted, and the
	// counts left yielded nothing.
	p.tookReleased()
	state("Read took one before a datagram", 1, 1, 0)
	if _, release := take(); !release {
		t.Fatal("no errReleased after Read took one")
	}
	datagram()
	state("after a datagram", 2, 0, 2)
	if ok, release := take(); !ok || release {
		t.Fatalf("after the datagram: ok %v, release %v; want the datagram", ok, release)
	}
	p.records.Add(1) // ReadFrom counts the datagram it hands pion
	if _, release := take(); release {
		t.Fatal("released again after a datagram, before the session was quiet again")
	}
	// Read takes the two counted ones and the datagram's data.
	for range 3 {
		p.records.Add(-1)
	}
	p.tookReleased()
	p.tookReleased()
	state("after Read took them", 0, 0, 0)

	// One counted and one not: taking the counted one leaves the other
	// uncounted, and the next datagram counts it.
	p.setQuiet()
	take()
	datagram()
	take()           // the datagram
	p.records.Add(1) // counted by ReadFrom
	p.setQuiet()
	take()
	state("one counted, one not", 2, 1, 2)
	p.records.Add(-1) // Read's count for the first errReleased
	p.tookReleased()
	state("Read took the counted one", 1, 1, 1)
	datagram()
	state("the next datagram", 1, 0, 2)

	p.inQ = nil
	p.setQuiet()
	p.out, p.unpaid = 0, 0
	p.holdBuffer.Store(true)
	if _, release := take(); release {
		t.Fatal("released with a read deadline set")
	}
}
