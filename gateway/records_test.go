package gateway

import "testing"

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
