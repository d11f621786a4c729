package gateway

import (
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
